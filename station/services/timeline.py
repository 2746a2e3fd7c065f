"""A case's full history for people: who, at which level, when, what, 意见.

The words for each action are the rule object's own (``Action.describe``); who and at which
level come from the same resolver the fold uses (the registry and the staff directory), not from
what the event says about itself.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from schema import events as K
from schema import rules
from schema.errors import TransitionError
from station.session import Session

KIND_LABELS = {K.CASE_REGISTERED: "收件登记", K.CASE_ID_VIEWED: "查看完整身份证号", K.CASE_PRINTED: "打印文书",
               **{k: a.label for k, a in rules.ACTIONS.items()}}


@dataclass(frozen=True, slots=True)
class Entry:
    at: str
    actor: str
    role: str
    level: str
    action: str
    detail: str
    conflict: str = ""

    def to_dict(self) -> dict:
        return asdict(self)

    def text(self) -> str:
        s = f"{self.at[:16].replace('T', ' ')}  {self.level}{self.role} {self.actor}  {self.action}"
        if self.detail:
            s += f"：{self.detail}"
        if self.conflict:
            s += f"  【冲突：{self.conflict}】"
        return s


def _registered(body: dict[str, Any], names: dict[str, str]) -> str:
    item = body.get("item") if isinstance(body.get("item"), dict) else {}
    parts = [str(item.get("name", ""))]
    first = body.get("first_responder")
    if isinstance(first, str) and first:
        parts.append(f"首问负责人 {names.get(first, first[:8])}")
    proxy = body.get("proxy")
    if isinstance(proxy, dict) and proxy.get("name"):
        parts.append(f"代办人 {proxy['name']}（{proxy.get('relation', '')}）")
    return "，".join(p for p in parts if p)


def detail(kind: str, body: dict[str, Any], names: dict[str, str]) -> str:
    if kind == K.CASE_REGISTERED:
        return _registered(body, names)
    if kind == K.CASE_PRINTED:
        return str(body.get("title") or "") + ("（补打）" if body.get("reprint") else "")
    action = rules.ACTIONS.get(kind)
    return action.describe(body) if action is not None else ""


def timeline(session: Session, case_id: str) -> list[Entry]:
    names = dict(session.db.execute_sql("SELECT user_id, name FROM user").fetchall())
    view = session.store.cases.load(case_id)
    conflicts = {c.event_id: c.reason for c in view.conflicts} if view else {}
    who = session.store.authors
    out = []
    for ev in session.store.case_events(case_id):
        try:
            actor = who(ev)
            role, level = actor.role.label, actor.level.label
            if actor.department:
                level += f"（{actor.department}）"
        except TransitionError:
            role, level = ev.role, ""
        out.append(Entry(ev.body.get("effective_at") or ev.at, names.get(ev.actor, ev.actor[:8]), role, level,
                         KIND_LABELS.get(ev.kind, ev.kind), detail(ev.kind, ev.body, names),
                         conflicts.get(ev.id, "")))
    return out
