"""咨询 and 投诉: registers that are not cases but are counted, and (投诉) handled, like them.

A consultation is recorded in seconds without opening a case: what was asked about (an item or
a free topic), by which channel, the short answer given, optionally who asked. An advice-only
item at a village ends as a recorded 咨询, not as nothing.

A complaint names a case or a staff member, has an owner (the org handling it), a handling
deadline and a result; it may be forwarded up like a case (``complaint.forwarded``) and ends
with ``complaint.answered``. Its fold follows the same rules as cases: any replica holding the
same events computes the same complaint, and a violation becomes a conflict.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from schema import events as K
from schema.case import Conflict
from schema.errors import TransitionError, UserError
from schema.events import Event
from schema.org import Level, OrgCode
from schema.rules.base import STAFF, Actor, effective_at
from schema.rules.fold import Who, claimed


class Channel(enum.StrEnum):
    WINDOW = "window"
    PHONE = "phone"
    ONLINE = "online"
    LETTER = "letter"

    @property
    def label(self) -> str:
        return {"window": "窗口", "phone": "电话", "online": "网上", "letter": "来信"}[self.value]


CHANNEL_CHOICES = tuple((c.value, c.label) for c in Channel)


def check_consultation(body: dict[str, Any]) -> list[str]:
    """What is wrong with a ``consult.recorded`` body (empty: nothing)."""
    problems = []
    if not isinstance(body.get("answer"), str) or not body["answer"].strip():
        problems.append("咨询记录须写明答复内容")
    if not (isinstance(body.get("topic"), str) and body["topic"].strip()) and not body.get("item_code"):
        problems.append("咨询记录须写明咨询的事项或问题")
    if body.get("channel") not in Channel._value2member_map_:
        problems.append("咨询渠道无效")
    return problems


class ComplaintState(enum.StrEnum):
    OPEN = "open"
    FORWARDED = "forwarded"  # sent up, the receiving level handles it
    ANSWERED = "answered"

    @property
    def label(self) -> str:
        return {"open": "处理中", "forwarded": "已转上级", "answered": "已办结"}[self.value]


class About(enum.StrEnum):
    CASE = "case"
    STAFF = "staff"
    OTHER = "other"

    @property
    def label(self) -> str:
        return {"case": "办件", "staff": "工作人员", "other": "其他"}[self.value]


@dataclass(slots=True)
class ComplaintView:
    complaint_id: str
    complaint_no: str
    about: str
    case_no: str
    staff: str  # the user id complained about, or their name as given
    content: str
    channel: str
    complainant: dict[str, Any]
    filed_at: str
    filed_org: str
    owner_org: str
    owner_level: str
    due: str
    state: ComplaintState = ComplaintState.OPEN
    path: list[str] = field(default_factory=list)
    result: str = ""
    closed_at: str | None = None
    conflicts: list[Conflict] = field(default_factory=list)
    events: int = 0
    last_at: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["state"] = self.state.value
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ComplaintView:
        d = {k: v for k, v in d.items() if k in _FIELDS}
        d["state"] = ComplaintState(d["state"])
        d["conflicts"] = [Conflict(**c) for c in d.get("conflicts", [])]
        return cls(**d)


_FIELDS = frozenset(f.name for f in fields(ComplaintView))
COMPLAINT_KINDS = frozenset({K.COMPLAINT_FILED, K.COMPLAINT_FORWARDED, K.COMPLAINT_ANSWERED})


def _text(body: dict[str, Any], key: str, what: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value.strip():
        raise TransitionError(f"请填写{what}")
    return value.strip()


def apply_complaint(view: ComplaintView | None, ev: Event, who: Who = claimed) -> ComplaintView:
    actor: Actor = who(ev)
    b, at = ev.body, effective_at(ev)
    if actor.role not in STAFF:
        raise TransitionError(f"{actor.role.label}不能办理投诉")
    if ev.kind == K.COMPLAINT_FILED:
        if view is not None:
            raise TransitionError("该投诉已登记")
        about = b.get("about")
        if about not in About._value2member_map_:
            raise TransitionError("请选择投诉对象（办件、工作人员或其他）")
        if about == About.CASE and not b.get("case_no"):
            raise TransitionError("投诉办件须写明办件编号")
        if about == About.STAFF and not b.get("staff"):
            raise TransitionError("投诉工作人员须写明被投诉人")
        content = _text(b, "content", "投诉内容")
        due = b.get("due")
        if not isinstance(due, str) or len(due) != 10:
            raise TransitionError("投诉须有办理期限")
        view = ComplaintView(
            complaint_id=ev.subject, complaint_no=str(b.get("complaint_no") or ev.subject), about=about,
            case_no=str(b.get("case_no") or ""), staff=str(b.get("staff") or ""), content=content,
            channel=str(b.get("channel") or ""),
            complainant=dict(b["complainant"]) if isinstance(b.get("complainant"), dict) else {},
            filed_at=at, filed_org=actor.org, owner_org=actor.org, owner_level=actor.level.value, due=due,
        )
        return _touch(view, ev)
    if view is None:
        raise TransitionError("尚未收到该投诉的登记信息")
    if view.state is ComplaintState.ANSWERED:
        raise TransitionError("投诉已办结")
    if actor.org != view.owner_org:
        raise TransitionError(f"该投诉由{view.owner_org}办理")
    if ev.kind == K.COMPLAINT_FORWARDED:
        parent = Level(view.owner_level).parent
        if parent is None:
            raise TransitionError("县级不能再上转投诉")
        _text(b, "opinion", "上转理由")
        view.path.append(view.owner_org)
        view.owner_org = OrgCode(view.owner_org).ancestor(parent)
        view.owner_level = parent.value
        view.state = ComplaintState.FORWARDED
    elif ev.kind == K.COMPLAINT_ANSWERED:
        view.result = _text(b, "result", "处理结果")
        view.state = ComplaintState.ANSWERED
        view.closed_at = at
    else:
        raise TransitionError(f"未知的投诉事件类型 {ev.kind}")
    return _touch(view, ev)


def _touch(view: ComplaintView, ev: Event) -> ComplaintView:
    view.events += 1
    view.last_at = ev.at
    return view


def fold_complaint(events: Iterable[Event], who: Who = claimed) -> ComplaintView | None:
    view: ComplaintView | None = None
    for ev in sorted(events, key=lambda e: e.order):
        try:
            view = apply_complaint(view, ev, who)
        except (UserError, ValueError, TypeError, KeyError, AttributeError) as e:
            if view is not None:
                reason = e.message if isinstance(e, UserError) else f"事件内容无效（{type(e).__name__}）"
                view.conflicts.append(Conflict(ev.id, ev.kind, ev.at, ev.actor, reason))
                _touch(view, ev)
    return view
