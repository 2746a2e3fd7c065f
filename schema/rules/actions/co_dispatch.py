"""联办分送: the lead department sends a 联办件 to each co-handling department, each with its own limit."""

from __future__ import annotations

from typing import Any

from schema import events as K
from schema.case import CaseView, State
from schema.org import Level
from schema.rules.actions.forward import decide_level
from schema.rules.base import CLERK, REVIEWER, Action, Actor, Env, Field, Kind, date_of, fail, names_of
from schema.workdays import TimeUnit

DEFAULT_CO_DAYS = 5  # working days for a co-department's opinion, when the catalog sets none


def co_departments(view: CaseView) -> list[str]:
    return [d for d in view.item.get("co_departments") or [] if isinstance(d, str)]


def _undispatched(view: CaseView) -> list[tuple[str, str]]:
    return [(d, d) for d in co_departments(view) if d not in view.co_dispatch]


class CoDispatch(Action):
    kind = K.CASE_CO_DISPATCHED
    name = "co-dispatch"
    label = "联办分送"
    key = "h"
    done = "已分送联办部门"
    help = "把联办件分送各联办部门征求意见，每个部门有各自的办理时限"
    states = frozenset({State.IN_PROGRESS})
    roles = frozenset({CLERK, REVIEWER})
    fields = (Field("departments", "分送的联办部门", Kind.MULTI, choices=_undispatched,
                    help="默认分送全部尚未分送的联办部门"),)

    def precondition(self, view: CaseView, actor: Actor, at: str) -> str | None:
        if not co_departments(view):
            return "该事项不是联办件"
        if Level(view.holder_level) is not decide_level(view):
            return "联办件由决定层级的牵头部门分送"
        if not _undispatched(view):
            return "已分送全部联办部门"
        return None

    def check(self, view: CaseView, actor: Actor, body: dict[str, Any], at: str) -> None:
        depts = names_of(body, "departments")
        if not depts:
            fail("请选择要分送的联办部门")
        for d in depts:
            if d not in co_departments(view):
                fail(f"“{d}”不是该事项的联办部门")
            if d in view.co_dispatch:
                fail(f"已分送过“{d}”")
        date_of(body, "due", "联办办理期限")

    def effect(self, view: CaseView, actor: Actor, body: dict[str, Any], at: str, ev) -> None:
        for d in names_of(body, "departments"):
            view.co_dispatch[d] = {"at": at, "due": body["due"]}

    def prepare(self, view: CaseView, values: dict[str, Any], env: Env) -> dict[str, Any]:
        depts = list(values.get("departments") or []) or [d for d, _ in _undispatched(view)]
        days = int(view.item.get("co_days") or DEFAULT_CO_DAYS)
        return {"departments": depts, "due": env.calendar.add(env.today, days, TimeUnit.WORKDAY).date.isoformat()}

    def describe(self, body: dict[str, Any]) -> str:
        return "分送：" + "、".join(map(str, body.get("departments") or [])) + f"，限{body.get('due', '')}前回复"
