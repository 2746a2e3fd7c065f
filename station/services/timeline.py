"""A case's full history for people: who, at which level, when, what, 意见."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from schema import events as K
from schema.case import Outcome, Special
from schema.lifecycle import RULES
from schema.org import OrgCode, Role
from station.session import Session

KIND_LABELS = {K.CASE_REGISTERED: "收件登记", K.CASE_ID_VIEWED: "查看完整身份证号",
               **{k: r.label for k, r in RULES.items()}}


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


def _detail(kind: str, b: dict) -> str:
    if kind == K.CASE_NOTIFIED_MISSING:
        return "缺：" + "、".join(b.get("missing", [])) + f"；补正期限 {b.get('deadline')}"
    if kind == K.CASE_SUPPLEMENTED:
        return "补交：" + "、".join(b.get("materials", []))
    if kind == K.CASE_ACCEPTED and b.get("rongque"):
        return "容缺：" + "、".join(b["rongque"])
    if kind == K.CASE_DECIDED:
        try:
            label = Outcome(b.get("outcome")).label
        except ValueError:
            label = str(b.get("outcome"))
        return label + (f"，{b['opinion']}" if b.get("opinion") else "")
    if kind == K.CASE_SPECIAL_STARTED:
        try:
            label = Special(b.get("procedure")).label
        except ValueError:
            label = str(b.get("procedure"))
        return f"{label}：{b.get('reason', '')}"
    if kind == K.CASE_RATED:
        return f"{b.get('level')}星 {b.get('comment', '')}".strip()
    if kind == K.CASE_REGISTERED:
        return b.get("item", {}).get("name", "")
    for key in ("reason", "opinion", "method", "result"):
        if b.get(key):
            return str(b[key])
    return ""


def timeline(session: Session, case_id: str) -> list[Entry]:
    names = dict(session.db.execute_sql("SELECT user_id, name FROM user").fetchall())
    view = session.store.cases.load(case_id)
    conflicts = {c.event_id: c.reason for c in view.conflicts} if view else {}
    out = []
    for ev in session.store.case_events(case_id):
        try:
            role = Role(ev.role).label
            level = OrgCode(ev.org).level.label
        except Exception:
            role, level = ev.role, ""
        out.append(Entry(ev.body.get("effective_at") or ev.at, names.get(ev.actor, ev.actor[:8]), role, level,
                         KIND_LABELS.get(ev.kind, ev.kind), _detail(ev.kind, ev.body), conflicts.get(ev.id, "")))
    return out
