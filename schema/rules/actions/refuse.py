"""不予受理: the application is outside what may be accepted; the reason is given in writing."""

from __future__ import annotations

from typing import Any

from schema import events as K
from schema.case import CaseView, ResultCode, State
from schema.rules.base import Action, Actor, Field, close, text_of


class Refuse(Action):
    kind = K.CASE_REFUSED
    name = "refuse"
    label = "不予受理"
    key = "x"
    done = "已不予受理"
    help = "不予受理，须写明理由（将出具不予受理告知书）"
    states = frozenset({State.RECEIVED, State.AWAITING_SUPPLEMENT})
    fields = (Field("reason", "不予受理的理由", required=True),)

    def precondition(self, view: CaseView, actor: Actor, at: str) -> str | None:
        if view.accepted_at is not None:  # awaiting 补正 after 受理: it ends by a decision or 补正不来
            return "办件已受理，不能再不予受理；材料补不来时请按补正不来办结"
        return None

    def check(self, view: CaseView, actor: Actor, body: dict[str, Any], at: str) -> None:
        text_of(body, "reason", "不予受理的理由")

    def effect(self, view, actor, body, at, ev) -> None:
        close(view, State.REFUSED, ResultCode.RETURNED, at)
