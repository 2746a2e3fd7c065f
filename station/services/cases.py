"""Case operations: what the CLI and the UI call. No rule lives here: an action's inputs are
parsed by its fields, shaped into an event body by the action itself (schema.rules) and the
store checks it against the same rule object before appending.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from schema import events as K
from schema import rules
from schema.case import CaseView, Channel, MaterialStatus, State
from schema.errors import NotFoundError, TransitionError, ValidationError
from schema.identity import parse_document
from schema.ids import new_id
from schema.org import Level, OrgCode
from schema.rules import Action, snapshot_item
from schema.validation import check_length, check_person_name, normalize_mobile
from schema.workdays import WorkCalendar
from station import clock
from station.services import catalog as catalogs
from station.session import Session

PROXY_RELATIONS = ("子女", "配偶", "父母", "其他亲属", "监护人", "受托人")


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


@dataclass(frozen=True)
class StationEnv:
    """What an action needs from the station to build its event body (schema.rules.Env)."""

    today: date
    calendar: WorkCalendar
    actor: rules.Actor


def env(session: Session) -> StationEnv:
    return StationEnv(clock.today(), session.store.cases.calendar(), session.author)


def action_named(name: str) -> Action:
    action = rules.BY_NAME.get(name) or rules.ACTIONS.get(name)
    if action is None:
        raise NotFoundError(f"没有“{name}”这个办件操作")
    return action


def act(session: Session, ref: str, name: str, values: dict[str, Any] | None = None, *, at=None,
        onsite: bool = False) -> CaseView:
    """Take the action ``name`` (``accept``, ``decide`` … or its event kind) on case ``ref``.

    ``values`` are what a person typed or picked, by field name; ``at`` the paper date of a 补录
    entry. ``onsite``: the applicant pressed the keys on the rating screen — the only way a 现场
    评价 is recorded; staff never type a rating in for the applicant.
    """
    action = action_named(name)
    view = get(session, ref)
    now, extra = _when(at)
    # May this person take it at all? Said before any input is questioned (the store checks again).
    why = action.refusal(view, session.author, extra.get("effective_at") or clock.iso(now))
    if why:
        raise TransitionError(why)
    parsed = action.parse(values or {}, view)
    if action.kind == K.CASE_RATED and parsed.get("channel") == Channel.ONSITE and not onsite:
        raise ValidationError("现场评价须由申请人在评价屏上自己按键，不能由工作人员代为录入", field="channel")
    body = action.prepare(view, parsed, env(session))
    session.store.record(session.actor, action.kind, view.case_id, {**body, **extra}, at=now)
    return session.store.cases.load(view.case_id)  # type: ignore[return-value]


def check_proxy(proxy: dict[str, Any] | None) -> dict[str, Any] | None:
    """代办人/委托人 acting for the applicant: name, relation, their document (checked), phone."""
    if not proxy or not any(str(v or "").strip() for v in proxy.values()):
        return None
    name = check_person_name(proxy.get("name") or "", label="代办人姓名", field="proxy_name")
    relation = str(proxy.get("relation") or "").strip()
    if relation not in PROXY_RELATIONS:
        raise ValidationError("代办人与申请人的关系可选：" + "、".join(PROXY_RELATIONS), field="proxy_relation")
    doc = parse_document(proxy.get("doc_type"), str(proxy.get("doc_number") or ""), today=clock.today())
    phone = normalize_mobile(proxy["phone"]) if str(proxy.get("phone") or "").strip() else ""
    return {"name": name, "relation": relation, "doc_type": doc.doc_type.value, "doc_number": doc.number,
            "phone": phone}


def register(
    session: Session,
    *,
    item_code: str,
    name: str,
    id_number: str,
    doc_type: str | None = None,
    phone: str | None = None,
    received: list[str] | None = None,
    received_at: str | None = None,
    note: str = "",
    proxy: dict[str, Any] | None = None,
    first_responder: str | None = None,
) -> CaseView:
    item = catalogs.get(item_code, session)
    level = OrgCode(session.config.org).level
    if level is Level.VILLAGE and not item.village_may_accept:
        raise ValidationError(f"“{item.name}”村级仅可咨询，请登记为咨询，并告知申请人到{item.decide_level.label}窗口办理")
    name = check_person_name(name, label="申请人姓名")
    doc = parse_document(doc_type, id_number, today=clock.today())
    mobile = normalize_mobile(phone) if phone else ""
    note = check_length(note or "", "备注", 500)
    names = [m.name for m in item.materials]
    received = list(received or [])
    for m in received:
        if m not in names:
            raise ValidationError(f"材料“{m}”不在“{item.name}”的材料清单中，可选：{'、'.join(names)}")
    now, extra = _when(received_at)
    body = {
        "item": snapshot_item(item, catalogs.current_policy(session)),
        "applicant": {"name": name, "doc_type": doc.doc_type.value, "id_number": doc.number, "gender": doc.gender,
                      "birth_date": doc.birth_date.isoformat() if doc.birth_date else "", "phone": mobile},
        "materials": {m: (MaterialStatus.RECEIVED if m in received else MaterialStatus.MISSING).value
                      for m in names},
        "received_at": extra.get("effective_at", clock.iso(now)),
        "first_responder": first_responder or session.actor.user_id,
        "note": note,
        **extra,
    }
    checked_proxy = check_proxy(proxy)
    if checked_proxy:
        body["proxy"] = checked_proxy
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


def complete_at_once(session: Session, ref: str, *, opinion: str = "", certificate: str = "") -> CaseView:
    """即办: accepted and decided on the spot, as one transaction (where the catalog allows it)."""
    with session.store.writing():
        act(session, ref, "accept", {"opinion": opinion})
        return act(session, ref, "decide", {"outcome": "approved", "opinion": opinion or "即办",
                                            "certificate": certificate})


def reveal_id_number(session: Session, ref: str) -> str:
    """Show a full ID number; the viewing itself is an audited event (DESIGN.md §6)."""
    view = get(session, ref)
    session.store.record(session.actor, K.CASE_ID_VIEWED, view.case_id, {"case_no": view.case_no})
    return view.applicant.get("id_number", "")


def states_for(text: str | None) -> list[str] | None:
    return None if not text else [State.parse(text).value]
