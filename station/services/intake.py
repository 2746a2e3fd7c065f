"""收件 (intake) helpers for the terminal UI: the 办事指南 of an item, a preview of what each
decision would mean (promised completion date, 补正 deadline, what is missing), and one call
that registers a case and takes the chosen decision in the same transaction.

Plain functions: the UI shows what they return and never decides a rule itself. The rules
themselves are the objects of :mod:`schema.rules` (checked again when the events are recorded).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date

from schema import events as K
from schema import rules
from schema.case import CaseView, MaterialStatus, State
from schema.catalog import CaseType, Item
from schema.errors import TransitionError, ValidationError
from schema.identity import DocType, parse_document
from schema.org import Level, OrgCode
from schema.rules import snapshot_item
from schema.validation import check_length, check_person_name, normalize_mobile
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
    CONSULT = "consult"  # 仅咨询: recorded as a 咨询, no case

    @property
    def label(self) -> str:
        return {"accept": "受理", "notify": "一次性告知", "refuse": "不予受理", "immediate": "即办",
                "consult": "登记为咨询"}[self.value]


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
    """What each decision would do with the materials as ticked now (the rule objects decide)."""

    advice_only: bool
    missing_required: list[str]  # required, ticked 缺 (or 容缺 where the catalog does not allow it)
    rongque: list[str]  # ticked 容缺 and allowed
    missing_optional: list[str]
    promised: Deadline
    supplement_deadline: date
    immediate_item: bool
    rongque_due: date | None = None  # the date a 容缺 promise would name by default
    blockers: dict[str, str] = field(default_factory=dict)  # decision value -> why it is not possible

    def allowed(self, decision: Decision | str) -> bool:
        return Decision(decision).value not in self.blockers

    @property
    def promised_label(self) -> str:
        return self.promised.date.isoformat() + ("（预计）" if self.promised.estimated else "")


def draft_view(session: Session, item: Item, materials: dict[str, str]) -> CaseView:
    """The case a registration would create now (nothing is written)."""
    org = session.actor.org
    level = OrgCode(org).level.value
    statuses = {m.name: MaterialStatus.RECEIVED.value if materials.get(m.name) == MaterialStatus.RECEIVED
                else MaterialStatus.MISSING.value for m in item.materials}
    return CaseView(case_id="", case_no="", item=snapshot_item(item, catalogs.current_policy(session)),
                    applicant={}, materials=statuses, state=State.RECEIVED, intake_org=org, intake_level=level,
                    holder_org=org, holder_level=level, registered_at=clock.iso(clock.now()),
                    registered_by=session.actor.user_id)


def _why_not(action, view: CaseView, actor, at: str, body: dict | None = None) -> str | None:
    why = action.refusal(view, actor, at)
    if why is None and body is not None:
        try:
            action.check(view, actor, body, at)
        except TransitionError as e:
            why = e.message
    return why


def preview(session: Session, item: Item, materials: dict[str, str]) -> Preview:
    """Which decisions are possible for ``item`` with ``materials`` (name -> MaterialStatus value),
    asked of the same rule objects the fold applies (schema.rules)."""
    advice = advice_only_here(item, session.config.org)
    view = draft_view(session, item, materials)
    actor, at = session.author, clock.iso(clock.now())
    allowed = {m.name for m in item.materials if m.rongque}
    rongque = [m for m, s in materials.items() if s == MaterialStatus.RONGQUE and m in allowed]
    missing_req = [m for m in view.missing_required if m not in rongque]
    required = {m.name for m in item.materials if m.required}
    missing_opt = [m for m, s in view.materials.items() if s == MaterialStatus.MISSING and m not in required]
    env = cases.env(session)
    rongque_due = None
    blockers: dict[str, str] = {}
    if advice:
        reason = f"村级仅可咨询，请登记为咨询，并告知申请人到{item.decide_level.label}窗口办理"
        blockers = {d.value: reason for d in Decision if d is not Decision.CONSULT}
    else:
        accept = rules.ACTIONS[K.CASE_ACCEPTED]
        body = accept.prepare(view, {"rongque": rongque, "promise": "（承诺）"}, env)
        if rongque:
            rongque_due = date.fromisoformat(body["rongque_due"])
        why = _why_not(accept, view, actor, at, body)
        if why:
            blockers[Decision.ACCEPT] = why
        if not view.missing_required:
            blockers[Decision.NOTIFY] = "必需材料已齐全，无需一次性告知"
        why = _why_not(rules.ACTIONS[K.CASE_REFUSED], view, actor, at)
        if why:
            blockers[Decision.REFUSE] = why
        if item.case_type is not CaseType.IMMEDIATE:
            blockers[Decision.IMMEDIATE] = f"本事项是{item.case_type.label}，不能即办"
        elif view.missing_required:
            blockers[Decision.IMMEDIATE] = "即办须材料齐全"
        else:
            done = draft_view(session, item, materials)
            done.state, done.accepted_at = State.IN_PROGRESS, at
            why = _why_not(rules.ACTIONS[K.CASE_DECIDED], done, actor, at)
            if why:
                blockers[Decision.IMMEDIATE] = why
        blockers[Decision.CONSULT] = "可以受理的事项请登记办件；只咨询不办理时请在“咨询”中记录"
    return Preview(
        advice_only=advice,
        missing_required=missing_req,
        rongque=rongque,
        missing_optional=missing_opt,
        promised=promised_date(session, item),
        supplement_deadline=supplement_deadline(session, item),
        immediate_item=item.case_type is CaseType.IMMEDIATE,
        rongque_due=rongque_due,
        blockers=blockers,
    )


# -- registering and deciding in one go ------------------------------------------------------


@dataclass(frozen=True)
class Applicant:
    name: str
    id_number: str
    phone: str
    doc_type: str = DocType.RESIDENT_ID.value


def check_applicant(name: str, id_number: str, phone: str, doc_type: str | None = None) -> Applicant:
    """The applicant as stored, or a ValidationError naming the field (name, id_number, phone)."""
    checked_name = check_person_name(name, label="申请人姓名", field="name")
    doc = parse_document(doc_type, id_number, today=clock.today())
    mobile = normalize_mobile(phone) if (phone or "").strip() else ""
    return Applicant(checked_name, doc.number, mobile, doc.doc_type.value)


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
    doc_type: str | None = None,
    proxy: dict | None = None,
    promise: str = "",
    rongque_due: str | None = None,
    answer: str = "",
) -> CaseView | None:
    """Register the case and take ``decision`` on it, in one transaction.

    Either both events are in the log or neither is: a refused decision (材料不齐 …) leaves no
    half-done 待受理 case behind, and the agent can fix the form and try again. ``CONSULT``
    records a 咨询 instead (advice-only items at a village) and returns None.
    """
    decision = Decision(decision)
    item = catalogs.get(item_code, session)
    if decision is Decision.CONSULT:
        from station.services import registers

        registers.record_consultation(session, answer=answer or f"告知到{item.decide_level.label}窗口办理",
                                      item_code=item.impl_code, name=name or None, phone=phone or None)
        return None
    applicant = check_applicant(name, id_number, phone, doc_type)
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
            doc_type=applicant.doc_type,
            phone=applicant.phone,
            received=received,
            proxy=proxy,
        )
        ref = view.case_id
        if decision is Decision.ACCEPT:
            return cases.act(session, ref, "accept", {"rongque": rongque, "promise": promise,
                                                      "rongque_due": rongque_due, "opinion": opinion})
        if decision is Decision.NOTIFY:
            return cases.act(session, ref, "notify-missing", {"opinion": opinion})
        if decision is Decision.REFUSE:
            return cases.act(session, ref, "refuse", {"reason": reason})
        return cases.complete_at_once(session, ref, opinion=opinion)
