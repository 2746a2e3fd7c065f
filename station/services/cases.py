"""Case operations: what the CLI and the UI call. No rule lives here twice:
each function shapes the input into an event body and the store checks it
against :mod:`schema.lifecycle` before appending.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from schema import events as K
from schema.case import CaseView, MaterialStatus, Outcome, Special, State
from schema.choices import parse_choice
from schema.errors import NotFoundError, ValidationError
from schema.ids import new_id
from schema.lifecycle import snapshot_item
from schema.org import Level, OrgCode
from schema.validation import check_length, check_person_name, normalize_mobile, parse_id_number
from schema.workdays import TimeUnit
from station import clock
from station.services import catalog as catalogs
from station.session import Session


def case_number(org: str, day: date, station_no: int, n: int) -> str:
    """办件编号: region code, date, station, daily sequence — unique without a server."""
    return f"{org}-{day:%Y%m%d}-{station_no:02d}-{n:04d}"


def _when(at: str | datetime | None) -> tuple[datetime, dict[str, Any]]:
    """The event time, and for 补录 of paper records the effective time in the body."""
    now = clock.now()
    if at is None:
        return now, {}
    when = clock.parse_iso(at) if isinstance(at, str) else at
    if when > now:
        raise ValidationError("补录时间不能晚于现在", field="at")
    return now, {"effective_at": clock.iso(when)}


def get(session: Session, ref: str) -> CaseView:
    ref = ref.strip()
    db = session.db
    rows = db.execute_sql("SELECT case_id FROM case_view WHERE case_no = ? OR case_id = ? LIMIT 2",
                          (ref, ref)).fetchall()
    if not rows:
        raise NotFoundError(f"没有找到办件“{ref}”，请核对办件编号")
    if len(rows) > 1:
        raise ValidationError(f"办件编号“{ref}”对应多件办件（工作站编号重复），请改用办件ID：{rows[0][0]}、{rows[1][0]}")
    view = session.store.cases.load(rows[0][0])
    assert view is not None
    return view


def _act(session: Session, ref: str, kind: str, body: dict[str, Any], at=None) -> CaseView:
    view = get(session, ref)
    now, extra = _when(at)
    session.store.record(session.actor, kind, view.case_id, {**body, **extra}, at=now)
    return session.store.cases.load(view.case_id)  # type: ignore[return-value]


def register(
    session: Session,
    *,
    item_code: str,
    name: str,
    id_number: str,
    phone: str | None = None,
    received: list[str] | None = None,
    received_at: str | None = None,
    note: str = "",
) -> CaseView:
    item = catalogs.get(item_code, session)
    level = OrgCode(session.config.org).level
    if level is Level.VILLAGE and not item.village_may_accept:
        raise ValidationError(f"“{item.name}”村级仅可咨询，请告知申请人到{item.decide_level.label}窗口办理")
    name = check_person_name(name, label="申请人姓名")
    ident = parse_id_number(id_number, today=clock.today())
    mobile = normalize_mobile(phone) if phone else ""
    note = check_length(note or "", "备注", 500)
    names = [m.name for m in item.materials]
    received = list(received or [])
    for m in received:
        if m not in names:
            raise ValidationError(f"材料“{m}”不在“{item.name}”的材料清单中，可选：{'、'.join(names)}")
    now, extra = _when(received_at)
    body = {
        "item": snapshot_item(item),
        "applicant": {"name": name, "id_number": ident.number, "gender": ident.gender,
                      "birth_date": ident.birth_date.isoformat(), "phone": mobile},
        "materials": {m: (MaterialStatus.RECEIVED if m in received else MaterialStatus.MISSING).value
                      for m in names},
        "received_at": extra.get("effective_at", clock.iso(now)),
        "note": note,
        **extra,
    }
    store = session.store
    with store.writing():
        day = clock.parse_iso(body["received_at"]).date()
        # A number already taken is skipped: a replacement PC (same org and station number) pulls
        # the old PC's cases, whose numbers its fresh counter would otherwise hand out again.
        while True:
            n = store.next_counter(f"case_no:{day:%Y%m%d}")
            body["case_no"] = case_number(session.config.org, day, session.config.station_no, n)
            if not store.db.execute_sql("SELECT 1 FROM case_view WHERE case_no = ?", (body["case_no"],)).fetchone():
                break
        ev = store.record(session.actor, K.CASE_REGISTERED, new_id(clock.ms(now)), body, at=now)
    return store.cases.load(ev.subject)  # type: ignore[return-value]


def accept(session: Session, ref: str, *, rongque: list[str] | None = None, opinion: str = "", at=None) -> CaseView:
    return _act(session, ref, K.CASE_ACCEPTED, {"rongque": list(rongque or []), "opinion": opinion}, at)


def complete_at_once(session: Session, ref: str, *, opinion: str = "", certificate: str = "") -> CaseView:
    """即办: accepted and decided on the spot, as one transaction."""
    with session.store.writing():
        accept(session, ref, opinion=opinion)
        return decide(session, ref, outcome="approved", opinion=opinion or "即办", certificate=certificate)


def supplement_deadline(session: Session, view: CaseView, start: date) -> str:
    days = int(view.item.get("supplement_days") or 30)
    unit = TimeUnit(view.item.get("supplement_unit") or "natural")
    return session.store.cases.calendar().add(start, days, unit).date.isoformat()


def notify_missing(session: Session, ref: str, *, missing: list[str] | None = None, opinion: str = "", at=None):
    """一次性告知: every missing material at once (default: all still missing)."""
    view = get(session, ref)
    if missing is None:  # every missing required material, all at once (一次性)
        required = {m["name"] for m in view.item.get("materials", []) if m.get("required", True)}
        missing = [m for m, s in view.materials.items() if s == MaterialStatus.MISSING and m in required]
    _, extra = _when(at)
    start = clock.parse_iso(extra["effective_at"]).date() if extra else clock.today()
    body = {"missing": missing, "opinion": opinion, "deadline": supplement_deadline(session, view, start)}
    return _act(session, ref, K.CASE_NOTIFIED_MISSING, body, at)


def supplement(session: Session, ref: str, materials: list[str], *, at=None) -> CaseView:
    return _act(session, ref, K.CASE_SUPPLEMENTED, {"materials": list(materials)}, at)


def lapse(session: Session, ref: str, *, opinion: str = "", at=None) -> CaseView:
    return _act(session, ref, K.CASE_LAPSED, {"opinion": opinion}, at)


def refuse(session: Session, ref: str, reason: str, *, at=None) -> CaseView:
    return _act(session, ref, K.CASE_REFUSED, {"reason": check_length(reason, "理由", 500)}, at)


def forward(session: Session, ref: str, *, opinion: str = "", at=None) -> CaseView:
    return _act(session, ref, K.CASE_FORWARDED, {"opinion": check_length(opinion, "意见", 500)}, at)


def return_down(session: Session, ref: str, reason: str, *, at=None) -> CaseView:
    return _act(session, ref, K.CASE_RETURNED, {"reason": check_length(reason, "理由", 500)}, at)


def start_special(session: Session, ref: str, procedure: str, reason: str, *, days: int | None = None, at=None):
    proc = _parse_special(procedure)
    return _act(session, ref, K.CASE_SPECIAL_STARTED,
                {"procedure": proc.value, "reason": check_length(reason, "理由", 500), "days": days}, at)


def end_special(session: Session, ref: str, *, result: str = "", at=None) -> CaseView:
    return _act(session, ref, K.CASE_SPECIAL_ENDED, {"result": check_length(result, "结果", 500)}, at)


def co_opinion(session: Session, ref: str, department: str, agree: bool, opinion: str = "", *, at=None):
    return _act(session, ref, K.CASE_CO_OPINION, {"department": department, "agree": agree, "opinion": opinion}, at)


def decide(session: Session, ref: str, outcome: str, *, opinion: str = "", certificate: str = "", at=None):
    return _act(session, ref, K.CASE_DECIDED,
                {"outcome": _parse_outcome(outcome).value, "opinion": check_length(opinion, "意见", 500),
                 "certificate": check_length(certificate, "证照编号", 100)}, at)


DELIVERY_METHODS = ("窗口领取", "村代办员代领", "邮寄", "电子送达")


def deliver(session: Session, ref: str, method: str = "窗口领取", *, at=None) -> CaseView:
    if method not in DELIVERY_METHODS:
        raise ValidationError("送达方式可选：" + "、".join(DELIVERY_METHODS), field="method")
    return _act(session, ref, K.CASE_DELIVERED, {"method": method}, at)


def rate(session: Session, ref: str, level: int, *, comment: str = "", at=None) -> CaseView:
    return _act(session, ref, K.CASE_RATED, {"level": level, "comment": check_length(comment, "评价内容", 500)}, at)


def void(session: Session, ref: str, reason: str, *, entry_error: bool = False, at=None) -> CaseView:
    return _act(session, ref, K.CASE_VOIDED,
                {"reason": check_length(reason, "作废原因", 500), "entry_error": entry_error}, at)


def reveal_id_number(session: Session, ref: str) -> str:
    """Show a full ID number; the viewing itself is an audited event (DESIGN.md §6)."""
    view = get(session, ref)
    session.store.record(session.actor, K.CASE_ID_VIEWED, view.case_id, {"case_no": view.case_no})
    return view.applicant.get("id_number", "")


def _parse_outcome(text: str) -> Outcome:
    aliases = dict.fromkeys(("通过", "准予许可", "同意"), Outcome.APPROVED)
    return parse_choice(Outcome, text, unknown="未知的决定结果", field="outcome", aliases=aliases)


def _parse_special(text: str) -> Special:
    aliases = {s.label.replace("审批", ""): s for s in Special}  # 延长 for 延长审批
    return parse_choice(Special, text, unknown="未知的特别程序种类", field="procedure", aliases=aliases)


def states_for(text: str | None) -> list[str] | None:
    return None if not text else [State.parse(text).value]
