"""特别程序: 延长审批 adds days to the promised time (capped by the 法定时限); 实地核查, 听证,
检验检测, 鉴定 … pause the clock for a stated number of days and resume on their own at the
stated date (行政许可法 Art. 42, 45). A pause still running past its date shows as overdue."""

from __future__ import annotations

from typing import Any

from schema import events as K
from schema.case import CaseView, Special, State
from schema.rules.base import Action, Actor, Env, Field, Kind, date_of, end_pause, fail, open_pause, text_of
from schema.workdays import TimeUnit

MAX_PAUSE_DAYS = 60  # a pause longer than this is a mistake unless the 法定时限 is longer

CHOICES = tuple((s.value, s.label) for s in Special if s is not Special.PUBLICITY)


def promise_unit(view: CaseView) -> TimeUnit:
    return TimeUnit(view.item.get("promise_unit") or "workday")


def extension_room(view: CaseView) -> int:
    """How many more days 延长审批 may add: up to the 法定时限 (same unit), else the promise again."""
    promise = int(view.item.get("promise_days") or 0)
    used = sum(int(e.get("days") or 0) for e in view.extensions)
    legal = view.item.get("legal_days")
    if legal is not None and (view.item.get("legal_unit") or "workday") == promise_unit(view).value:
        return max(0, int(legal) - promise - used)
    return max(0, promise - used)


def pause_cap(view: CaseView) -> int:
    legal = view.item.get("legal_days")
    return max(MAX_PAUSE_DAYS, int(legal)) if legal is not None else MAX_PAUSE_DAYS


class SpecialStart(Action):
    kind = K.CASE_SPECIAL_STARTED
    name = "special"
    label = "特别程序"
    key = "s"
    done = "已启动特别程序"
    help = "延长审批（在法定时限内延长承诺时限），或实地核查、听证、检验检测、鉴定等（暂停计时，到期自动恢复）"
    states = frozenset({State.IN_PROGRESS})
    fields = (
        Field("procedure", "特别程序种类", Kind.CHOICE, required=True, choices=CHOICES),
        Field("days", "天数", Kind.INT, required=True, min_value=1, max_value=365,
              help="延长审批：延长的天数；其他：暂停计时的天数（与承诺时限同一单位）"),
        Field("reason", "启动理由或依据", required=True),
    )

    def check(self, view: CaseView, actor: Actor, body: dict[str, Any], at: str) -> None:
        try:
            proc = Special(body.get("procedure"))
        except ValueError:
            fail("请选择特别程序种类（" + "、".join(label for _, label in CHOICES) + "）")
        if proc is Special.PUBLICITY:
            fail("公示按事项目录规定的公示期启动，请使用“公示”")
        text_of(body, "reason", "特别程序的启动理由")
        days = body.get("days")
        if isinstance(days, bool) or not isinstance(days, int) or days < 1:
            fail("请填写特别程序的天数（1天以上的整数）")
        if proc is Special.EXTENSION:
            room = extension_room(view)
            if days > room:
                fail(f"延长后将超过法定时限：最多还能延长{room}天" if room else "已达到法定时限，不能再延长")
            return
        if days > pause_cap(view):
            fail(f"暂停计时最多{pause_cap(view)}天")
        until = date_of(body, "until", "恢复计时日期")
        if until < at[:10]:
            fail("恢复计时日期不能早于启动日期")

    def effect(self, view: CaseView, actor: Actor, body: dict[str, Any], at: str, ev) -> None:
        proc = Special(body["procedure"])
        if proc is Special.EXTENSION:
            view.extensions.append({"days": body["days"], "unit": promise_unit(view).value, "at": at,
                                    "reason": body["reason"]})
            return
        view.special = {"procedure": proc.value, "reason": body["reason"], "days": body["days"],
                        "until": body["until"], "started_at": at}
        view.resume_state = view.state.value
        open_pause(view, at, proc.label, body["until"])
        view.state = State.SUSPENDED

    def prepare(self, view: CaseView, values: dict[str, Any], env: Env) -> dict[str, Any]:
        body = {k: values.get(k) for k in ("procedure", "days", "reason")}
        if body["procedure"] != Special.EXTENSION and isinstance(body["days"], int):
            body["until"] = env.calendar.add(env.today, body["days"], promise_unit(view)).date.isoformat()
        return body

    def describe(self, body: dict[str, Any]) -> str:
        try:
            label = Special(body.get("procedure")).label
        except ValueError:
            label = str(body.get("procedure"))
        if body.get("procedure") == Special.EXTENSION:
            return f"{label}{body.get('days')}天：{body.get('reason', '')}"
        return f"{label}，暂停计时至{body.get('until', '')}：{body.get('reason', '')}"


class SpecialEnd(Action):
    kind = K.CASE_SPECIAL_ENDED
    name = "special-end"
    label = "结束特别程序"
    key = "e"
    done = "已结束特别程序"
    help = "特别程序结束，登记结果（核查、听证、检测、鉴定等结果），恢复计时"
    states = frozenset({State.SUSPENDED})
    fields = (Field("result", "特别程序结果", required=True),)

    def precondition(self, view: CaseView, actor: Actor, at: str) -> str | None:
        if view.special and view.special.get("procedure") == Special.PUBLICITY:
            return "正在公示，请用“结束公示”"
        return None

    def check(self, view: CaseView, actor: Actor, body: dict[str, Any], at: str) -> None:
        text_of(body, "result", "特别程序的结果")

    def effect(self, view: CaseView, actor: Actor, body: dict[str, Any], at: str, ev) -> None:
        view.special = None
        end_pause(view, at)
        view.state = State(view.resume_state or State.IN_PROGRESS)
        view.resume_state = None
