"""公示: for items whose catalog entry has a 公示期 (低保, 特困, 宅基地 …), approval needs a
completed 公示. It starts with the catalog's period (the clock pauses, and resumes on its own
at the end date) and is ended with its outcome once the period has run."""

from __future__ import annotations

from typing import Any

from schema import events as K
from schema.case import CaseView, Special, State
from schema.rules.base import Action, Actor, Env, Field, Kind, date_of, end_pause, fail, open_pause, text_of
from schema.workdays import TimeUnit


def has_publicity(view: CaseView) -> bool:
    return bool(view.item.get("publicity_days"))


def publicity_done(view: CaseView) -> bool:
    p = view.publicity
    return bool(p and p.get("ended_at") and not p.get("objection"))


class PublicityStart(Action):
    kind = K.CASE_PUBLICITY_STARTED
    name = "publicity"
    label = "公示"
    key = "p"
    done = "已开始公示"
    help = "按事项目录规定的公示期开始公示（暂停计时，公示期满自动恢复）"
    states = frozenset({State.IN_PROGRESS})
    fields = (Field("note", "公示地点与方式", help="如“村务公开栏、乡镇政务公开栏”"),)

    def precondition(self, view: CaseView, actor: Actor, at: str) -> str | None:
        if not has_publicity(view):
            return "该事项目录未规定公示期，无需公示"
        if publicity_done(view):
            return "已公示且无异议，无需再次公示"
        return None

    def check(self, view: CaseView, actor: Actor, body: dict[str, Any], at: str) -> None:
        until = date_of(body, "until", "公示截止日期")
        if until < at[:10]:
            fail("公示截止日期不能早于开始日期")

    def effect(self, view: CaseView, actor: Actor, body: dict[str, Any], at: str, ev) -> None:
        view.publicity = {"started_at": at, "days": view.item.get("publicity_days"),
                          "unit": view.item.get("publicity_unit"), "until": body["until"],
                          "note": str(body.get("note") or ""), "ended_at": None, "objection": None, "result": ""}
        view.special = {"procedure": Special.PUBLICITY.value, "reason": "公示", "days": view.item.get("publicity_days"),
                        "until": body["until"], "started_at": at}
        view.resume_state = view.state.value
        open_pause(view, at, Special.PUBLICITY.label, body["until"])
        view.state = State.SUSPENDED

    def prepare(self, view: CaseView, values: dict[str, Any], env: Env) -> dict[str, Any]:
        days = int(view.item.get("publicity_days") or 0)
        unit = TimeUnit(view.item.get("publicity_unit") or "natural")
        return {"note": values.get("note") or "", "until": env.calendar.add(env.today, days, unit).date.isoformat()}

    def describe(self, body: dict[str, Any]) -> str:
        where = f"，{body['note']}" if body.get("note") else ""
        return f"公示至{body.get('until', '')}{where}"


class PublicityEnd(Action):
    kind = K.CASE_PUBLICITY_ENDED
    name = "publicity-end"
    label = "结束公示"
    key = "q"
    done = "已结束公示"
    help = "公示期满后登记公示结果：无异议，或有异议（须核实后重新公示或不予批准）"
    states = frozenset({State.SUSPENDED})
    fields = (
        Field("objection", "是否有异议", Kind.BOOL, help="有异议时不能直接准予"),
        Field("result", "公示结果", required=True, help="如“公示期内无异议”"),
    )

    def precondition(self, view: CaseView, actor: Actor, at: str) -> str | None:
        if not view.special or view.special.get("procedure") != Special.PUBLICITY:
            return "办件不在公示中"
        until = (view.publicity or {}).get("until") or ""
        if at[:10] < until:
            return f"公示期至{until}，期满后才能结束公示"
        return None

    def check(self, view: CaseView, actor: Actor, body: dict[str, Any], at: str) -> None:
        text_of(body, "result", "公示结果")

    def effect(self, view: CaseView, actor: Actor, body: dict[str, Any], at: str, ev) -> None:
        assert view.publicity is not None
        view.publicity = {**view.publicity, "ended_at": at, "objection": bool(body.get("objection")),
                          "result": body["result"]}
        view.special = None
        end_pause(view, at)
        view.state = State(view.resume_state or State.IN_PROGRESS)
        view.resume_state = None

    def describe(self, body: dict[str, Any]) -> str:
        return ("有异议：" if body.get("objection") else "无异议：") + str(body.get("result") or "")
