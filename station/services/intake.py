"""收件 (intake) helpers for the terminal UI: the 办事指南 of an item, a preview of what each
decision would mean (promised completion date, 补正 deadline, what is missing), and one call
that registers a case and takes the chosen decision in the same transaction.

Plain functions: the UI shows what they return and never decides a rule itself. The rules
themselves stay in :mod:`schema.lifecycle` (checked again when the events are recorded).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date

from schema.case import CaseView, MaterialStatus
from schema.catalog import CaseType, Item
from schema.errors import ValidationError
from schema.org import Level, OrgCode
from schema.validation import check_length, check_person_name, normalize_mobile, parse_id_number
from schema.workdays import Deadline
from station import clock
from station.services import cases
from station.services import catalog as catalogs
from station.session import Session


class Decision(enum.StrEnum):
    ACCEPT = "accept"  # 受理
    NOTIFY = "notify"  # 一次性告知
    REFUSE = "refuse"  # 不予受理
    IMMEDIATE = "immediate"  # 即办

    @property
    def label(self) -> str:
        return {"accept": "受理", "notify": "一次性告知", "refuse": "不予受理", "immediate": "即办"}[
            self.value
        ]


# -- 办事指南 --------------------------------------------------------------------------------


def advice_only_here(item: Item, org: str) -> bool:
    """True if a station of ``org`` may only advise on ``item`` (村级仅可咨询)."""
    return OrgCode(org).level is Level.VILLAGE and not item.village_may_accept


def guide_lines(item: Item, org: str) -> list[str]:
    """The 办事指南 of ``item`` as plain lines, for a station of ``org`` (the item's name is shown apart)."""
    legal = item.legal_limit.label if item.legal_limit else "无"
    where = (
        "村级仅可咨询，不能收件"
        if advice_only_here(item, org)
        else ("村级可代办受理" if item.village_may_accept else "村级仅可咨询")
    )
    lines = [
        f"实施编码 {item.impl_code}",
        f"实施部门：{item.department}    {item.item_type}，{item.case_type.label}",
        f"决定：{item.decide_level.label}（{item.department}）    {where}",
        f"承诺时限：{item.promise_limit.label}    法定时限：{legal}",
        f"收费：{item.fee_label}" + (f"（{item.fee_note}）" if item.fee_note else ""),
        f"补正期限：{item.supplement_limit.label}（一次性告知之日起）",
    ]
    if item.publicity:
        lines.append(f"公示期：{item.publicity.label}")
    if item.co_departments:
        lines.append("联办部门：" + "、".join(item.co_departments))
    lines.append("申请材料：")
    for i, m in enumerate(item.materials, 1):
        flags = "必需" if m.required else "可选"
        if m.rongque:
            flags += "，可容缺"
        # No spaces inside: a terminal wraps Chinese text at spaces, which would strand "1." alone.
        lines.append(
            f" {i}.{m.name}（{m.form.label}{m.count}份，{flags}）" + (f"：{m.note}" if m.note else "")
        )
    if item.guide:
        lines.append("说明：" + item.guide)
    if item.basis:
        lines.append("依据：" + item.basis)
    return lines


# -- what a decision would mean ---------------------------------------------------------------


def promised_date(session: Session, item: Item, start: date | None = None) -> Deadline:
    """承诺办结日 if the case were accepted on ``start`` (default today), on the station's calendar."""
    start = start or clock.today()
    return session.store.cases.calendar().add(start, item.promise_limit.days, item.promise_limit.unit)


def supplement_deadline(session: Session, item: Item, start: date | None = None) -> date:
    """补正期限 written in a 一次性告知 issued on ``start`` (default today)."""
    start = start or clock.today()
    limit = item.supplement_limit
    return session.store.cases.calendar().add(start, limit.days, limit.unit).date


@dataclass(frozen=True)
class Preview:
    """What each decision would do with the materials as ticked now."""

    advice_only: bool
    missing_required: list[str]  # required, ticked 缺 (or 容缺 where the catalog does not allow it)
    rongque: list[str]  # ticked 容缺 and allowed
    missing_optional: list[str]
    promised: Deadline
    supplement_deadline: date
    immediate_item: bool
    blockers: dict[str, str] = field(default_factory=dict)  # decision value -> why it is not possible

    def allowed(self, decision: Decision | str) -> bool:
        return Decision(decision).value not in self.blockers

    @property
    def promised_label(self) -> str:
        return self.promised.date.isoformat() + ("（预计）" if self.promised.estimated else "")


def preview(session: Session, item: Item, materials: dict[str, str]) -> Preview:
    """Which decisions are possible for ``item`` with ``materials`` (name -> MaterialStatus value)."""
    advice = advice_only_here(item, session.config.org)
    missing_req, rongque, missing_opt = [], [], []
    for m in item.materials:
        status = materials.get(m.name, MaterialStatus.MISSING)
        if status == MaterialStatus.RECEIVED:
            continue
        if status == MaterialStatus.RONGQUE and m.rongque:
            rongque.append(m.name)
        elif m.required:
            missing_req.append(m.name)
        else:
            missing_opt.append(m.name)
    blockers: dict[str, str] = {}
    if advice:
        reason = f"村级仅可咨询，请告知申请人到{item.decide_level.label}窗口办理"
        blockers = {d.value: reason for d in Decision}
    else:
        if missing_req:
            blockers[Decision.ACCEPT] = "材料不齐，缺：" + "、".join(missing_req) + "（请一次性告知）"
        if not missing_req and not rongque:
            blockers[Decision.NOTIFY] = "必需材料已齐全，无需一次性告知"
        if item.case_type is not CaseType.IMMEDIATE:
            blockers[Decision.IMMEDIATE] = f"本事项是{item.case_type.label}，不能即办"
        elif missing_req or rongque:
            blockers[Decision.IMMEDIATE] = "即办须材料齐全"
    return Preview(
        advice_only=advice,
        missing_required=missing_req,
        rongque=rongque,
        missing_optional=missing_opt,
        promised=promised_date(session, item),
        supplement_deadline=supplement_deadline(session, item),
        immediate_item=item.case_type is CaseType.IMMEDIATE,
        blockers=blockers,
    )


# -- registering and deciding in one go ------------------------------------------------------


@dataclass(frozen=True)
class Applicant:
    name: str
    id_number: str
    phone: str


def check_applicant(name: str, id_number: str, phone: str) -> Applicant:
    """The applicant as stored, or a ValidationError naming the field (name, id_number, phone)."""
    checked_name = check_person_name(name, label="申请人姓名", field="name")
    ident = parse_id_number(id_number, today=clock.today())
    mobile = normalize_mobile(phone) if (phone or "").strip() else ""
    return Applicant(checked_name, ident.number, mobile)


def submit(
    session: Session,
    *,
    item_code: str,
    name: str,
    id_number: str,
    phone: str,
    materials: dict[str, str],
    decision: Decision | str,
    reason: str = "",
    opinion: str = "",
) -> CaseView:
    """Register the case and take ``decision`` on it, in one transaction.

    Either both events are in the log or neither is: a refused decision (材料不齐 …) leaves no
    half-done 待受理 case behind, and the agent can fix the form and try again.
    """
    decision = Decision(decision)
    item = catalogs.get(item_code, session)
    applicant = check_applicant(name, id_number, phone)
    if decision is Decision.REFUSE:
        reason = check_length(reason, "不予受理的理由", 500, 1, field="reason")
    known = {m.name for m in item.materials}
    for m in materials:
        if m not in known:
            raise ValidationError(f"材料“{m}”不在“{item.name}”的材料清单中", field="materials")
    received = [m for m, s in materials.items() if s == MaterialStatus.RECEIVED]
    rongque = [m for m, s in materials.items() if s == MaterialStatus.RONGQUE]
    with session.store.writing():
        view = cases.register(
            session,
            item_code=item.impl_code,
            name=applicant.name,
            id_number=applicant.id_number,
            phone=applicant.phone,
            received=received,
        )
        ref = view.case_id
        if decision is Decision.ACCEPT:
            return cases.accept(session, ref, rongque=rongque, opinion=opinion)
        if decision is Decision.NOTIFY:
            return cases.notify_missing(session, ref, opinion=opinion)
        if decision is Decision.REFUSE:
            return cases.refuse(session, ref, reason)
        return cases.complete_at_once(session, ref, opinion=opinion)
