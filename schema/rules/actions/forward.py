"""转报: the level holding the case sends it up to the next level; its own part ends (转报办结)."""

from __future__ import annotations

from typing import Any

from schema import events as K
from schema.case import CaseView, ResultCode, State
from schema.org import Level, OrgCode
from schema.rules.base import AGENT, CLERK, Action, Actor, Field


def end_stage(view: CaseView, at: str, result: str) -> None:
    """Close the holder's stage (its stage limit is watched from ``stage_since``)."""
    view.stages.append({"org": view.holder_org, "level": view.holder_level, "since": view.stage_since or at,
                        "until": at, "result": result})


def decide_level(view: CaseView) -> Level:
    return Level(view.item.get("decide_level", Level.COUNTY))


class Forward(Action):
    kind = K.CASE_FORWARDED
    name = "forward"
    label = "转报"
    key = "f"
    done = "已转报上级"
    help = "把办件转报上一级（本级以转报办结）；上级接件后继续办理"
    states = frozenset({State.IN_PROGRESS, State.RETURNED})
    roles = frozenset({AGENT, CLERK})
    fields = (Field("opinion", "转报意见", help="初审意见，如“经核实情况属实，同意上报”"),)

    def precondition(self, view: CaseView, actor: Actor, at: str) -> str | None:
        decide = decide_level(view)
        if Level(view.holder_level).rank >= decide.rank:
            return f"该事项由{decide.label}决定，本级不能再转报"
        if view.void_request:
            return "办件有待审批的作废申请，请等上级审批后再转报"
        return None

    def effect(self, view: CaseView, actor: Actor, body: dict[str, Any], at: str, ev) -> None:
        level = Level(view.holder_level)
        parent = level.parent
        assert parent is not None  # the precondition stops at the deciding level
        end_stage(view, at, "forwarded")
        view.path.append(view.holder_org)
        view.level_closures[view.holder_level] = ResultCode.FORWARDED.value
        view.holder_org = OrgCode(view.holder_org).ancestor(parent)
        view.holder_level = parent.value
        view.state = State.TRANSFERRED
        view.stage_since = at
