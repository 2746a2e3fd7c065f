"""受理: the case is accepted and its promised-time clock starts (容缺 on a written promise)."""

from __future__ import annotations

from typing import Any

from schema import events as K
from schema.case import CaseView, MaterialStatus, State
from schema.org import Level
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
)
from schema.workdays import TimeUnit

DEFAULT_RONGQUE_DAYS = 10  # working days, when the catalog sets none


def rongque_allowed(view: CaseView) -> set[str]:
    return {m["name"] for m in view.item.get("materials", []) if isinstance(m, dict) and m.get("rongque")}


def _rongque_choices(view: CaseView) -> list[tuple[str, str]]:
    allowed = rongque_allowed(view)
    return [(m, label) for m, label in material_choices(MaterialStatus.MISSING.value)(view) if m in allowed]


class Accept(Action):
    kind = K.CASE_ACCEPTED
    name = "accept"
    label = "受理"
    key = "a"
    done = "已受理"
    help = "受理办件，开始计算承诺时限；缺少可容缺的材料时，申请人书面承诺后可容缺受理"
    states = frozenset({State.RECEIVED, State.AWAITING_SUPPLEMENT})
    fields = (
        Field("rongque", "容缺受理的材料", Kind.MULTI, choices=_rongque_choices,
              help="申请人承诺补交、先予受理的材料（仅限目录允许容缺的材料）"),
        Field("promise", "容缺承诺内容", help="申请人书面承诺的内容，如“本人承诺10个工作日内补交银行账户复印件”",
              max_len=300),
        Field("rongque_due", "容缺材料补交期限", Kind.DATE, help="申请人承诺补交的日期（默认按目录规定的天数）"),
        Field("opinion", "受理意见"),
    )

    def precondition(self, view: CaseView, actor: Actor, at: str) -> str | None:
        if view.state is State.AWAITING_SUPPLEMENT and view.resume_state != State.RECEIVED:
            return "办件已受理，材料补齐后会自动恢复办理"
        if view.holder_level == Level.VILLAGE and not view.item.get("village_may_accept", True):
            return "该事项村级仅可咨询，不能在村级受理"
        uncovered = [m for m in view.missing_required if m not in rongque_allowed(view)]
        if uncovered:
            return "材料不齐，不能受理，缺：" + "、".join(uncovered) + "（请先一次性告知）"
        return None

    def check(self, view: CaseView, actor: Actor, body: dict[str, Any], at: str) -> None:
        rongque = names_of(body, "rongque")
        known_materials(view, rongque)
        allowed = rongque_allowed(view)
        for m in rongque:
            if m not in allowed:
                fail(f"材料“{m}”不允许容缺受理")
        missing = [m for m in view.missing_required if m not in rongque]
        if missing:
            fail("材料不齐，不能受理，缺：" + "、".join(missing) + "（可容缺的材料请勾选容缺，其余请先一次性告知）")
        if rongque:
            promise = body.get("promise")
            if not isinstance(promise, str) or not promise.strip():
                fail("容缺受理须有申请人的书面承诺（请填写承诺内容）")
            due = date_of(body, "rongque_due", "容缺材料补交期限")
            if due < at[:10]:
                fail(f"容缺材料补交期限（{due}）不能早于受理日期")

    def effect(self, view: CaseView, actor: Actor, body: dict[str, Any], at: str, ev) -> None:
        rongque = names_of(body, "rongque")
        for m in rongque:
            if view.materials[m] == MaterialStatus.MISSING:
                view.materials[m] = MaterialStatus.RONGQUE.value
        if rongque:
            view.rongque_promise = {"materials": rongque, "promise": body["promise"].strip(),
                                    "due": body["rongque_due"], "at": at}
        view.state = State.IN_PROGRESS
        view.resume_state, view.supplement_deadline, view.missing_notice = None, None, []
        view.accepted_at = at
        view.stage_since = at

    def prepare(self, view: CaseView, values: dict[str, Any], env: Env) -> dict[str, Any]:
        rongque = list(values.get("rongque") or [])
        body: dict[str, Any] = {"rongque": rongque, "opinion": values.get("opinion") or ""}
        if rongque:
            body["promise"] = values.get("promise") or ""
            due = values.get("rongque_due")
            if not due:
                days = int(view.item.get("rongque_days") or DEFAULT_RONGQUE_DAYS)
                due = env.calendar.add(env.today, days, TimeUnit.WORKDAY).date.isoformat()
            body["rongque_due"] = due
        return body

    def describe(self, body: dict[str, Any]) -> str:
        rongque = body.get("rongque") or []
        if not rongque:
            return str(body.get("opinion") or "")
        return f"容缺：{'、'.join(map(str, rongque))}，承诺{body.get('rongque_due', '')}前补交"
