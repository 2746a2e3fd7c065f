"""退回: a higher level sends the case back down to the level it came from, with the reason."""

from __future__ import annotations

from typing import Any

from schema import events as K
from schema.case import CaseView, State
from schema.org import OrgCode
from schema.rules.actions.forward import end_stage
from schema.rules.base import CLERK, REVIEWER, Action, Actor, Field, text_of


class ReturnDown(Action):
    kind = K.CASE_RETURNED
    name = "return"
    label = "退回"
    key = "t"
    done = "已退回"
    help = "退回下级补充或更正，须写明理由"
    states = frozenset({State.IN_PROGRESS, State.RETURNED, State.TRANSFERRED})
    roles = frozenset({CLERK, REVIEWER})
    fields = (Field("reason", "退回理由", required=True),)

    def precondition(self, view: CaseView, actor: Actor, at: str) -> str | None:
        if not view.path:
            return "办件在收件单位，不能再退回；如需结束请作废或不予受理"
        return None

    def check(self, view: CaseView, actor: Actor, body: dict[str, Any], at: str) -> None:
        text_of(body, "reason", "退回理由")

    def effect(self, view: CaseView, actor: Actor, body: dict[str, Any], at: str, ev) -> None:
        end_stage(view, at, "returned")
        view.holder_org = view.path.pop()
        view.holder_level = OrgCode(view.holder_org).level.value
        view.level_closures.pop(view.holder_level, None)
        view.state = State.RETURNED
        view.stage_since = at
