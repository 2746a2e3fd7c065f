"""接件: the level a case was forwarded to takes it in (its stage limit already counts from arrival)."""

from __future__ import annotations

from schema import events as K
from schema.case import State
from schema.rules.base import CLERK, REVIEWER, Action, Field


class Receive(Action):
    kind = K.CASE_RECEIVED
    name = "receive"
    label = "接件"
    key = "j"
    done = "已接件"
    help = "接收下级转报的办件，开始本级办理（也可直接退回下级）"
    states = frozenset({State.TRANSFERRED})
    roles = frozenset({CLERK, REVIEWER})
    fields = (Field("opinion", "接件意见"),)

    def effect(self, view, actor, body, at, ev) -> None:
        view.state = State.IN_PROGRESS
