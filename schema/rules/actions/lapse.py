"""补正不来办结: the 补正 deadline passed and the applicant never came back."""

from __future__ import annotations

from schema import events as K
from schema.case import CaseView, ResultCode, State
from schema.rules.base import Action, Actor, Field, close, end_pause


class Lapse(Action):
    kind = K.CASE_LAPSED
    name = "lapse"
    label = "补正不来办结"
    key = "l"
    done = "已按补正不来办结"
    help = "补正期限届满申请人未补正，按补正不来办结"
    states = frozenset({State.AWAITING_SUPPLEMENT})
    fields = (Field("opinion", "说明"),)

    def precondition(self, view: CaseView, actor: Actor, at: str) -> str | None:
        if view.supplement_deadline and at[:10] <= view.supplement_deadline:
            return f"补正期限（{view.supplement_deadline}）尚未届满，不能按补正不来办结"
        return None

    def effect(self, view, actor, body, at, ev) -> None:
        end_pause(view, at)
        close(view, State.LAPSED, ResultCode.LAPSED, at)
