"""一次性告知: every missing material at once, with the 补正 deadline (行政许可法 Art. 32)."""

from __future__ import annotations

from typing import Any

from schema import events as K
from schema.case import CaseView, MaterialStatus, State
from schema.rules.base import (
    Action,
    Actor,
    Env,
    Field,
    Kind,
    date_of,
    fail,
    known_materials,
    material_choices,
    names_of,
    open_pause,
)
from schema.workdays import TimeUnit


def supplement_deadline(view: CaseView, env: Env) -> str:
    """The 补正期限 a notice issued today writes (the item's 补正期限, default 30 自然日)."""
    days = int(view.item.get("supplement_days") or 30)
    unit = TimeUnit(view.item.get("supplement_unit") or "natural")
    return env.calendar.add(env.today, days, unit).date.isoformat()


class NotifyMissing(Action):
    kind = K.CASE_NOTIFIED_MISSING
    name = "notify-missing"
    label = "一次性告知"
    key = "n"
    done = "已一次性告知"
    help = "一次性告知申请人需要补正的全部材料，写明补正期限；已受理的办件暂停计时"
    states = frozenset({State.RECEIVED, State.IN_PROGRESS, State.RETURNED})
    fields = (
        Field("missing", "需要补正的材料", Kind.MULTI, choices=material_choices(),
              help="默认列出全部缺少的必需材料"),
        Field("opinion", "告知说明", help="如材料不符合法定形式的具体问题"),
    )

    def check(self, view: CaseView, actor: Actor, body: dict[str, Any], at: str) -> None:
        missing = names_of(body, "missing")
        if not missing:
            fail("一次性告知须列出所缺的全部材料")
        known_materials(view, missing)
        date_of(body, "deadline", "补正期限")

    def effect(self, view: CaseView, actor: Actor, body: dict[str, Any], at: str, ev) -> None:
        missing = names_of(body, "missing")
        for m in missing:
            view.materials[m] = MaterialStatus.MISSING.value
        view.resume_state = view.state.value
        view.missing_notice = missing
        view.supplement_deadline = body["deadline"]
        if view.state in (State.IN_PROGRESS, State.RETURNED):
            open_pause(view, at, "补正")
        view.state = State.AWAITING_SUPPLEMENT

    def prepare(self, view: CaseView, values: dict[str, Any], env: Env) -> dict[str, Any]:
        missing = list(values.get("missing") or []) or view.missing_required
        return {"missing": missing, "opinion": values.get("opinion") or "",
                "deadline": supplement_deadline(view, env)}

    def describe(self, body: dict[str, Any]) -> str:
        missing = body.get("missing") or []
        return "缺：" + "、".join(map(str, missing)) + f"；补正期限 {body.get('deadline', '')}"
