"""联办意见: each co-handling department gives its own opinion, by a user of that department."""

from __future__ import annotations

from typing import Any

from schema import events as K
from schema.case import CaseView, State
from schema.rules.base import CLERK, REVIEWER, Action, Actor, Field, Kind, fail, text_of

AGREE_CHOICES = (("agree", "同意"), ("disagree", "不同意"))


def _open_departments(view: CaseView) -> list[tuple[str, str]]:
    return [(d, d) for d in view.co_dispatch if d not in view.co_opinions]


class CoOpinion(Action):
    kind = K.CASE_CO_OPINION
    name = "co-opinion"
    label = "联办意见"
    key = "o"
    done = "已录入联办意见"
    help = "联办部门的经办人员出具本部门意见（同意或不同意，并写明理由）"
    states = frozenset({State.IN_PROGRESS})
    roles = frozenset({CLERK, REVIEWER})
    fields = (
        Field("department", "联办部门", Kind.CHOICE, required=True, choices=_open_departments),
        Field("decision", "本部门意见", Kind.CHOICE, required=True, choices=AGREE_CHOICES),
        Field("opinion", "意见说明", required=True),
    )

    def precondition(self, view: CaseView, actor: Actor, at: str) -> str | None:
        waiting = [d for d, _ in _open_departments(view)]
        if not waiting:
            return "没有等待意见的联办部门（请先分送）"
        if actor.department not in waiting:
            mine = actor.department or "（未设置所属部门）"
            return f"联办意见须由联办部门的人员出具，您所属的部门是{mine}"
        return None

    def check(self, view: CaseView, actor: Actor, body: dict[str, Any], at: str) -> None:
        dept = body.get("department")
        if dept not in view.co_dispatch:
            fail(f"“{dept}”不是已分送的联办部门")
        if dept in view.co_opinions:
            fail(f"“{dept}”已出具意见")
        if dept != actor.department:
            fail(f"只有“{dept}”的人员可以出具该部门的意见")
        if body.get("decision") not in ("agree", "disagree"):
            fail("请选择同意或不同意")
        text_of(body, "opinion", "联办意见说明")

    def effect(self, view: CaseView, actor: Actor, body: dict[str, Any], at: str, ev) -> None:
        view.co_opinions[body["department"]] = {"agree": body["decision"] == "agree", "opinion": body["opinion"],
                                                "at": at, "actor": actor.user}

    def prepare(self, view: CaseView, values: dict[str, Any], env) -> dict[str, Any]:
        return {"department": values.get("department") or env.actor.department, "decision": values.get("decision"),
                "opinion": values.get("opinion") or ""}

    def describe(self, body: dict[str, Any]) -> str:
        verdict = dict(AGREE_CHOICES).get(str(body.get("decision")), str(body.get("decision")))
        return f"{body.get('department', '')}：{verdict}，{body.get('opinion', '')}"
