"""咨询 and 投诉: recording a consultation in seconds, and filing, forwarding and answering complaints.

The rules are in :mod:`schema.registers`; this shapes what a person typed into event bodies.
"""

from __future__ import annotations

import json
from typing import Any

from schema import events as K
from schema.errors import NotFoundError, ValidationError
from schema.ids import new_id
from schema.registers import About, Channel, ComplaintView, check_consultation
from schema.validation import check_length, check_person_name, normalize_mobile
from schema.workdays import TimeUnit
from station import clock
from station.services import catalog as catalogs
from station.session import Session


def _person(name: str | None, phone: str | None) -> dict[str, str]:
    out = {}
    if name and name.strip():
        out["name"] = check_person_name(name, label="姓名", field="person_name")
    if phone and phone.strip():
        out["phone"] = normalize_mobile(phone)
    return out


def _channel(text: str | None) -> str:
    if not text:
        return Channel.WINDOW.value
    for c in Channel:
        if text.strip() in (c.value, c.label):
            return c.value
    raise ValidationError("渠道可选：" + "、".join(c.label for c in Channel), field="channel")


def record_consultation(session: Session, *, answer: str, item_code: str | None = None, topic: str = "",
                        channel: str | None = None, name: str | None = None, phone: str | None = None) -> str:
    """A 咨询, recorded without opening a case; returns its id."""
    body: dict[str, Any] = {"answer": check_length(answer, "答复内容", 500, 1, field="answer"),
                            "topic": check_length(topic, "咨询问题", 200, field="topic"),
                            "channel": _channel(channel), "person": _person(name, phone),
                            "first_responder": session.actor.user_id}
    if item_code:
        item = catalogs.get(item_code, session)
        body.update(item_code=item.impl_code, item_name=item.name)
    problems = check_consultation(body)
    if problems:
        raise ValidationError(problems[0])
    ev = session.store.record(session.actor, K.CONSULT_RECORDED, new_id(), body)
    return ev.subject


def file_complaint(session: Session, *, content: str, about: str, case_no: str = "", staff: str = "",
                   channel: str | None = None, name: str | None = None, phone: str | None = None) -> ComplaintView:
    try:
        about_value = next(a for a in About if about in (a.value, a.label)).value
    except StopIteration:
        raise ValidationError("投诉对象可选：办件、工作人员、其他", field="about") from None
    if about_value == About.CASE:
        from station.services.cases import get

        case_no = get(session, case_no).case_no  # must be a case this station knows
    days = catalogs.current_policy(session).complaint_days
    due = session.store.cases.calendar().add(clock.today(), days, TimeUnit.WORKDAY).date.isoformat()
    body = {"about": about_value, "case_no": case_no.strip(), "staff": staff.strip(),
            "content": check_length(content, "投诉内容", 1000, 1, field="content"), "channel": _channel(channel),
            "complainant": _person(name, phone), "due": due}
    with session.store.writing():  # the number and the complaint together: no gap in the numbers
        n = session.store.next_counter(f"complaint_no:{clock.today():%Y}")
        body["complaint_no"] = f"TS-{session.config.org}-{clock.today():%Y}-{n:04d}"
        ev = session.store.record(session.actor, K.COMPLAINT_FILED, new_id(), body)
    return complaint(session, ev.subject)


def complaint(session: Session, ref: str) -> ComplaintView:
    row = session.db.execute_sql(
        "SELECT view FROM complaint WHERE complaint_id = ? OR complaint_no = ?", (ref.strip(), ref.strip())
    ).fetchone()
    if row is None:
        raise NotFoundError(f"没有找到投诉“{ref}”")
    return ComplaintView.from_dict(json.loads(row[0]))


def forward_complaint(session: Session, ref: str, opinion: str) -> ComplaintView:
    c = complaint(session, ref)
    session.store.record(session.actor, K.COMPLAINT_FORWARDED, c.complaint_id,
                         {"opinion": check_length(opinion, "上转理由", 500, 1, field="opinion")})
    return complaint(session, c.complaint_id)


def answer_complaint(session: Session, ref: str, result: str) -> ComplaintView:
    c = complaint(session, ref)
    session.store.record(session.actor, K.COMPLAINT_ANSWERED, c.complaint_id,
                         {"result": check_length(result, "处理结果", 1000, 1, field="result")})
    return complaint(session, c.complaint_id)


def open_complaints(session: Session) -> list[ComplaintView]:
    """Complaints this org handles now, the most urgent first (home screen, 电子监察)."""
    rows = session.db.execute_sql(
        "SELECT view FROM complaint WHERE owner_org = ? AND state != 'answered' ORDER BY due",
        (session.actor.org,),
    ).fetchall()
    return [ComplaintView.from_dict(json.loads(r[0])) for r in rows]
