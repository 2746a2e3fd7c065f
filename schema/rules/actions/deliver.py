"""送达: the result is handed over (collected at a window, by the village agent, posted …)."""

from __future__ import annotations

from schema import events as K
from schema.case import State
from schema.rules.base import Action, Field, Kind, Where

DELIVERY_METHODS = ("窗口领取", "村代办员代领", "邮寄", "电子送达")


class Deliver(Action):
    kind = K.CASE_DELIVERED
    name = "deliver"
    label = "送达"
    key = "g"
    done = "已送达"
    help = "办理结果已交给申请人（窗口领取、村代办员代领、邮寄或电子送达）"
    states = frozenset({State.DONE})
    where = Where.EITHER
    fields = (Field("method", "送达方式", Kind.CHOICE, required=True, choices=tuple((m, m) for m in DELIVERY_METHODS)),)

    def effect(self, view, actor, body, at, ev) -> None:
        view.state = State.DELIVERED
        view.delivered_at = at
