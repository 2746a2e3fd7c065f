"""Who may claim what: the org, role and user an event names must be ones its station can hold.

A signature proves which station sent an event; this module says whether that station had
the authority for what the event claims. The county (at ingest), a township (relaying a
village's segments) and every station (pulling pages and return files) call the same
:class:`Ledger`; the case fold calls :func:`claim_problem` with the enrolled org of the
event's station (docs/security.md, "Authority and clocks").

- A station of each level holds these roles (:data:`LEVEL_ROLES`): village → 代办员、管理员;
  township → 窗口人员、管理员; county → 审批人员、管理员. A village or township 管理员 is a
  local administrator (that station's users only); the county 管理员 is the admin role on a
  county-level station.
- An event's ``org`` equals its station's enrolled org, its ``role`` is one that level holds.
- Its ``actor`` is a user the station added earlier in its own chain (``user.added``), with
  that role, not disabled earlier in that chain.
- A case action is one that role may ever take (the rule objects' ``roles``, ``schema.rules``):
  an agent never returns a case, an admin never decides one; whether it may take it on
  this case now is business validity, folded as a conflict, never refused here. Bootstrap: a chain starts with
  ``station.initialised`` (seq 1) and the ``user.added`` of the user who made it (seq 2).
- ``user.added`` adds a NEW user id, with the station's org and a role of its level.
  ``user.disabled`` and ``user.pin_reset`` target a user of the same station — or come from a
  管理员 of a county-level station, who may act on any user of the county. The acting role
  must outrank the account's role (resetting one's own PIN excepted), so in practice only a
  管理员 manages accounts.

County-published events (the county's own chain) are not judged here: only the county's own
chain may carry them, which the sync layer checks.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from schema import events as K
from schema.errors import ValidationError
from schema.org import Level, OrgCode, Role

LEVEL_ROLES: dict[Level, tuple[Role, ...]] = {
    Level.VILLAGE: (Role.AGENT, Role.ADMIN),
    Level.TOWNSHIP: (Role.CLERK, Role.ADMIN),
    Level.COUNTY: (Role.REVIEWER, Role.ADMIN),
}
USER_KINDS = frozenset({K.USER_ADDED, K.USER_DISABLED, K.USER_PIN_RESET})
REGISTER_KINDS = frozenset({K.CONSULT_RECORDED, K.COMPLAINT_FILED, K.COMPLAINT_FORWARDED, K.COMPLAINT_ANSWERED})


def roles_at(level: Level) -> tuple[Role, ...]:
    return LEVEL_ROLES[level]


def _labels(level: Level) -> str:
    return "、".join(r.label for r in LEVEL_ROLES[level])


def check_role_at(role: Role, org: str) -> None:
    """Raise (Chinese) unless a station of ``org`` may hold ``role``."""
    level = OrgCode(org).level
    if role not in LEVEL_ROLES[level]:
        raise ValidationError(
            f"{level.label}工作站只能设置这些角色：{_labels(level)}；{role.label}不能在{level.label}工作站使用",
            field="role",
        )


def _role(value: Any) -> Role | None:
    try:
        return Role(value)
    except ValueError:
        return None


def _label(value: Any) -> str:
    role = _role(value)
    return role.label if role else f"“{str(value)[:20]}”"


def _short(text: Any) -> str:
    return str(text)[:40]


def _action_problem(kind: str, role: Role) -> str | None:
    """A role that may never take this case action, whatever the case (the rule objects say who)."""
    from schema import rules  # the rule objects import nothing of this module

    if kind in rules.CASE_KINDS and role not in rules.roles_for(kind):
        label = rules.ACTIONS[kind].label if kind in rules.ACTIONS else kind
        return f"{role.label}不能执行“{label}”"
    if kind in REGISTER_KINDS and role is Role.ADMIN:
        return f"{role.label}不办理咨询和投诉"
    return None


def claim_problem(ev: Any, org: str) -> str | None:
    """Why ``ev`` could not come from a station enrolled as ``org``: its org or its role (Chinese), or None."""
    try:
        level = OrgCode(org).level
    except ValidationError:
        return f"工作站登记的单位代码 {_short(org)} 无效"
    if ev.org != org:
        return f"以单位 {_short(ev.org)} 的名义办理，但该工作站登记的单位是 {org}"
    if _role(ev.role) not in LEVEL_ROLES[level]:
        return f"角色{_label(ev.role)}不是{level.label}工作站可以有的角色（只能是{_labels(level)}）"
    return None


@dataclass(frozen=True, slots=True)
class Account:
    """A user as the authority rules see it."""

    user_id: str
    station: str  # the station whose chain added it
    role: str
    added_seq: int
    disabled_seq: int | None = None  # its own station's ``user.disabled`` (a county 管理员's does not count)


def target_of(ev: Any) -> str | None:
    """The user a ``user.*`` event acts on: its subject, which must equal ``body.user_id``."""
    body = ev.body if isinstance(ev.body, dict) else {}
    uid = body.get("user_id")
    return uid if isinstance(uid, str) and uid == ev.subject else None


def referenced_users(events: Iterable[Any]) -> set[str]:
    """Every user id the checks of ``events`` look up (to load them in one query)."""
    out: set[str] = set()
    for ev in events:
        out.add(ev.actor)
        if ev.kind in USER_KINDS:
            out.add(ev.subject)
    return out


class Ledger:
    """The accounts known so far, judging a stream of events and learning from those it admits.

    Load it with the accounts the events refer to (:func:`referenced_users`), then call
    :meth:`admit` for each event in its station's chain order (events of several stations may
    interleave, in the order the county stored them).
    """

    def __init__(self, accounts: Iterable[Account] = ()) -> None:
        self.accounts: dict[str, Account] = {a.user_id: a for a in accounts}
        # (station org, claimed org, claimed role) → (reason, (level, role)): a segment repeats them
        self._claims: dict[tuple[str, str, str], tuple[str | None, tuple[Level, Role] | None]] = {}

    def admit(self, ev: Any, org: str) -> str | None:
        """Why ``ev`` (from a station enrolled as ``org``) is refused, or None — then it is learned."""
        reason = self.problem(ev, org)
        if reason is None:
            self._learn(ev)
        return reason

    def problem(self, ev: Any, org: str) -> str | None:
        key = (org, ev.org, ev.role)
        claim = self._claims.get(key)
        if claim is None:
            reason = claim_problem(ev, org)
            claim = self._claims[key] = (reason, None if reason else (OrgCode(org).level, Role(ev.role)))
        reason, level_role = claim
        if level_role is None:
            return reason
        level, role = level_role
        if ev.seq == 1:
            return None if ev.kind == K.STATION_INITIALISED else "工作站的第1条记录应为工作站初始化记录"
        if ev.kind == K.STATION_INITIALISED:
            return "工作站初始化记录只能是工作站的第1条记录"
        if ev.seq == 2 and ev.kind == K.USER_ADDED and ev.actor == ev.subject:
            return self._added_problem(ev, level, org, role, bootstrap=True)  # the first user adds itself
        reason = self._actor_problem(ev) or _action_problem(ev.kind, role)
        if reason is not None:
            return reason
        if ev.kind == K.USER_ADDED:
            return self._added_problem(ev, level, org, role, bootstrap=False)
        if ev.kind in (K.USER_DISABLED, K.USER_PIN_RESET):
            return self._target_problem(ev, level, role)
        return None

    def _actor_problem(self, ev: Any) -> str | None:
        acc = self.accounts.get(ev.actor)
        who = f"操作人 {_short(ev.actor)}"
        if acc is None or acc.station != ev.station or acc.added_seq >= ev.seq:
            if acc is not None and acc.station != ev.station:
                return f"{who}是其他工作站的用户，不能在本工作站办理"
            return f"{who}不是本工作站添加的用户"
        if acc.role != ev.role:
            return f"{who}的角色是{_label(acc.role)}，记录中写的却是{_label(ev.role)}"
        if acc.disabled_seq is not None and acc.disabled_seq < ev.seq:
            return f"{who}已在本工作站第{acc.disabled_seq}条记录中停用"
        return None

    def _added_problem(self, ev: Any, level: Level, org: str, role: Role, *, bootstrap: bool) -> str | None:
        uid = target_of(ev)
        if uid is None:
            return "添加用户记录的对象与内容中的用户编号不符"
        existing = self.accounts.get(uid)
        if existing is not None and (existing.station, existing.added_seq) != (ev.station, ev.seq):
            return f"用户编号 {_short(uid)} 已经存在，不能再次添加（每个用户只能由一个工作站添加一次）"
        body = ev.body if isinstance(ev.body, dict) else {}
        if body.get("org") != org:
            return f"新用户的单位应为本工作站的单位 {org}"
        new = _role(body.get("role"))
        if new not in LEVEL_ROLES[level]:
            return f"新用户的角色{_label(body.get('role'))}不是{level.label}工作站可以有的角色（只能是{_labels(level)}）"
        if bootstrap:
            return None if new is role else "工作站第一个用户的角色与其添加记录中的角色不符"
        if not role.outranks(new):
            return f"{role.label}不能添加{new.label}账号"
        return None

    def _target_problem(self, ev: Any, level: Level, role: Role) -> str | None:
        what = "停用" if ev.kind == K.USER_DISABLED else "重置PIN"
        uid = target_of(ev)
        if uid is None:
            return f"{what}记录的对象与内容中的用户编号不符"
        target = self.accounts.get(uid)
        if target is None or (target.station == ev.station and target.added_seq >= ev.seq):
            return f"要{what}的用户 {_short(uid)} 不是本县已添加的用户"
        if target.station != ev.station:
            if level is Level.COUNTY and role is Role.ADMIN:
                return None  # the county admin may act on any user of the county
            return f"只能{what}本工作站的用户；其他工作站的用户只能由县级管理员处理"
        if ev.kind == K.USER_PIN_RESET and uid == ev.actor:
            return None
        target_role = _role(target.role)
        if target_role is None or not role.outranks(target_role):
            return f"{role.label}不能{what}{_label(target.role)}账号"
        return None

    def _learn(self, ev: Any) -> None:
        if ev.kind == K.USER_ADDED:
            uid = ev.subject
            if uid not in self.accounts:
                self.accounts[uid] = Account(uid, ev.station, str(ev.body["role"]), ev.seq)
        elif ev.kind == K.USER_DISABLED:
            target = self.accounts.get(ev.subject)
            if target is not None and target.station == ev.station:
                if target.disabled_seq is None or ev.seq < target.disabled_seq:
                    self.accounts[ev.subject] = replace(target, disabled_seq=ev.seq)
