"""决定: the deciding level approves (准予) or denies (不予批准) — 即办 only where the catalog grants it."""

from __future__ import annotations

from typing import Any

from schema import events as K
from schema.case import CaseView, Outcome, ResultCode, State
from schema.org import Level
from schema.rules.actions.co_dispatch import co_departments
from schema.rules.actions.forward import decide_level, end_stage
from schema.rules.actions.publicity import has_publicity, publicity_done
from schema.rules.base import Action, Actor, Field, Kind, close, fail, text_of

OUTCOMES = tuple((o.value, o.label) for o in Outcome)


def immediate_levels(view: CaseView) -> list[Level]:
    """Levels that may close this 即办件 on the spot: the catalog's grant, else the deciding level."""
    levels = view.item.get("immediate_levels") or [decide_level(view).value]
    return [Level(lv) for lv in levels if lv in Level._value2member_map_]


def approval_blockers(view: CaseView) -> list[str]:
    """What stops an approval now (the same list the menu explains and the fold enforces)."""
    out = []
    if view.outstanding_rongque:
        out.append("容缺材料尚未补齐：" + "、".join(view.outstanding_rongque))
    co = co_departments(view)
    if co:
        undispatched = [d for d in co if d not in view.co_dispatch]
        pending = [d for d in co if d in view.co_dispatch and d not in view.co_opinions]
        against = [d for d in co if d in view.co_opinions and not view.co_opinions[d]["agree"]]
        if undispatched:
            out.append("尚未分送联办部门：" + "、".join(undispatched))
        if pending:
            out.append("联办部门意见未齐：" + "、".join(pending))
        if against:
            out.append("联办部门不同意：" + "、".join(against))
    if has_publicity(view) and not publicity_done(view):
        out.append("该事项须经公示且无异议后才能准予")
    return out


class Decide(Action):
    kind = K.CASE_DECIDED
    name = "decide"
    label = "决定"
    key = "d"
    done = "已作出决定"
    help = "决定层级作出决定：准予（可登记证照编号，出证办结），或不予批准（须写明理由）"
    states = frozenset({State.IN_PROGRESS})
    fields = (
        Field("outcome", "决定结果", Kind.CHOICE, required=True, choices=OUTCOMES),
        Field("opinion", "决定意见", help="不予批准时必填"),
        Field("certificate", "证照编号", max_len=100, help="准予且出具证照时填写"),
    )

    def precondition(self, view: CaseView, actor: Actor, at: str) -> str | None:
        decide = decide_level(view)
        if view.item.get("case_type") == "immediate":
            levels = immediate_levels(view)
            if actor.level not in levels:
                where = "、".join(lv.label for lv in levels)
                return f"该即办件只能在{where}当场办结，请转报上级"
        elif actor.level is not decide:
            return f"该事项由{decide.label}决定，{actor.level.label}{actor.role.label}不能作出决定"
        if view.void_request:
            return "办件有待审批的作废申请"
        return None

    def check(self, view: CaseView, actor: Actor, body: dict[str, Any], at: str) -> None:
        try:
            outcome = Outcome(body.get("outcome"))
        except ValueError:
            fail("请选择决定结果：准予或不予批准")
        if outcome is Outcome.DENIED:
            text_of(body, "opinion", "不予批准的理由")
            if body.get("certificate"):
                fail("不予批准不能登记证照编号")
            return
        blockers = approval_blockers(view)
        if blockers:
            fail("不能准予：" + "；".join(blockers))

    def effect(self, view: CaseView, actor: Actor, body: dict[str, Any], at: str, ev) -> None:
        outcome = Outcome(body["outcome"])
        view.outcome = outcome.value
        view.certificate = str(body.get("certificate") or "")
        if outcome is Outcome.DENIED:
            code = ResultCode.RETURNED
        else:
            code = ResultCode.CERTIFICATE if view.certificate else ResultCode.DONE
        end_stage(view, at, "decided")
        close(view, State.DONE, code, at)

    def describe(self, body: dict[str, Any]) -> str:
        try:
            text = Outcome(body.get("outcome")).label
        except ValueError:
            text = str(body.get("outcome"))
        if body.get("certificate"):
            text += f"，证照编号 {body['certificate']}"
        return text + (f"，{body['opinion']}" if body.get("opinion") else "")
