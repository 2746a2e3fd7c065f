"""补正: materials handed in later (after a 一次性告知, or 容缺 materials promised at 受理)."""

from __future__ import annotations

from typing import Any

from schema import events as K
from schema.case import CaseView, MaterialStatus, State
from schema.rules.base import (
    OPEN,
    Action,
    Actor,
    Field,
    Kind,
    Where,
    end_pause,
    fail,
    known_materials,
    material_choices,
    names_of,
)


class Supplement(Action):
    kind = K.CASE_SUPPLEMENTED
    name = "supplement"
    label = "补正"
    key = "b"
    done = "已登记补正材料"
    help = "登记申请人补交的材料；一次性告知的材料补齐后自动恢复办理"
    states = OPEN
    where = Where.EITHER
    fields = (
        Field("materials", "补交的材料", Kind.MULTI, required=True,
              choices=material_choices(MaterialStatus.MISSING.value, MaterialStatus.RONGQUE.value)),
    )

    def precondition(self, view: CaseView, actor: Actor, at: str) -> str | None:
        if all(s == MaterialStatus.RECEIVED for s in view.materials.values()):
            return "材料已全部收齐，没有需要补正的材料"
        return None

    def check(self, view: CaseView, actor: Actor, body: dict[str, Any], at: str) -> None:
        supplied = names_of(body, "materials")
        if not supplied:
            fail("请选择补交的材料")
        known_materials(view, supplied)

    def effect(self, view: CaseView, actor: Actor, body: dict[str, Any], at: str, ev) -> None:
        for m in names_of(body, "materials"):
            view.materials[m] = MaterialStatus.RECEIVED.value
        if view.rongque_promise and not view.outstanding_rongque:
            view.rongque_promise = {**view.rongque_promise, "fulfilled_at": at}
        if view.state is State.AWAITING_SUPPLEMENT and not view.still_missing:
            view.state = State(view.resume_state or State.RECEIVED)
            view.resume_state = None
            view.supplement_deadline = None
            view.missing_notice = []
            end_pause(view, at)

    def describe(self, body: dict[str, Any]) -> str:
        return "补交：" + "、".join(map(str, body.get("materials") or []))
