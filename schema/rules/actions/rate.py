"""好差评: the applicant rates the service — on the station's rating screen (现场, the villager
presses the keys), or in a 回访 call by an org that did not handle the case. One rating and one
追评 per case. A 差评 (不满意 or 非常不满意) opens a 整改 task for the level that closed the case."""

from __future__ import annotations

from typing import Any

from schema import events as K
from schema.case import BAD_RATING, RATING_LABELS, RATING_REASONS, CaseView, Channel
from schema.org import OrgCode
from schema.rules.base import (
    ADMIN,
    CLOSED_RESULTS,
    STAFF,
    Action,
    Actor,
    Env,
    Field,
    Kind,
    Where,
    date_of,
    fail,
)
from schema.workdays import TimeUnit

MAX_RATINGS = 2  # one rating plus one follow-up (追评)
RECTIFY_VERIFY_DAYS = 1  # 核实 within 1 working day (国办发〔2019〕51号 practice)
RECTIFY_DAYS = 15  # 整改 within 15 working days unless the county's catalog says otherwise


def handled_by(view: CaseView) -> set[str]:
    """Every org that held the case."""
    return {view.intake_org, view.holder_org, *view.path}


class Rate(Action):
    kind = K.CASE_RATED
    name = "rate"
    label = "好差评"
    key = "r"
    done = "已记录评价"
    help = "申请人评价（现场评价请让申请人在评价屏上自己按键；电话回访须由未经办该件的单位进行）"
    states = CLOSED_RESULTS
    roles = frozenset({*STAFF, ADMIN})
    where = Where.ANYONE
    fields = (
        Field("level", "评价等级", Kind.CHOICE, required=True,
              choices=tuple((str(k), v) for k, v in sorted(RATING_LABELS.items(), reverse=True))),
        Field("channel", "评价渠道", Kind.CHOICE, required=True,
              choices=tuple((c.value, c.label) for c in Channel)),
        Field("reasons", "评价原因", Kind.MULTI, choices=tuple((r, r) for r in RATING_REASONS)),
        Field("comment", "文字评价", max_len=300),
    )

    def precondition(self, view: CaseView, actor: Actor, at: str) -> str | None:
        if len(view.ratings) >= MAX_RATINGS:
            return "每件办件只能评价一次并追评一次"
        return None

    def check(self, view: CaseView, actor: Actor, body: dict[str, Any], at: str) -> None:
        level = body.get("level")
        if isinstance(level, bool) or not isinstance(level, int) or not 1 <= level <= 5:
            fail("评价等级应为1到5（5为非常满意）")
        try:
            channel = Channel(body.get("channel"))
        except ValueError:
            fail("请选择评价渠道")
        if channel is Channel.ONSITE:
            if actor.org not in (view.intake_org, view.holder_org):
                fail("现场评价只能在收件或办结单位的工作站上由申请人进行")
        elif actor.org in handled_by(view) or not OrgCode(actor.org).county == OrgCode(view.intake_org).county:
            fail(f"{channel.label}须由未经办该件的单位记录（如县中心回访），经办人员不能替申请人评价")
        reasons = body.get("reasons") or []
        if not isinstance(reasons, list) or any(r not in RATING_REASONS for r in reasons):
            fail("评价原因不在可选范围内")
        if level <= BAD_RATING and view.rectify is None:
            date_of(body, "rectify_verify_due", "差评核实期限")
            date_of(body, "rectify_due", "差评整改期限")

    def effect(self, view: CaseView, actor: Actor, body: dict[str, Any], at: str, ev) -> None:
        level = body["level"]
        view.ratings.append({"level": level, "channel": body["channel"], "reasons": list(body.get("reasons") or []),
                             "comment": str(body.get("comment") or ""), "at": at,
                             "follow_up": bool(view.ratings)})
        if level <= BAD_RATING and view.rectify is None:
            view.rectify = {"org": view.holder_org, "level": view.holder_level, "opened_at": at,
                            "verify_due": body["rectify_verify_due"], "due": body["rectify_due"],
                            "verified_at": None, "finding": "", "closed_at": None, "measure": "", "result": ""}

    def prepare(self, view: CaseView, values: dict[str, Any], env: Env) -> dict[str, Any]:
        level = int(values["level"]) if values.get("level") not in (None, "") else None
        body: dict[str, Any] = {"level": level, "channel": values.get("channel"),
                                "reasons": list(values.get("reasons") or []), "comment": values.get("comment") or ""}
        if level is not None and level <= BAD_RATING and view.rectify is None:
            cal = env.calendar
            verify_days = int(view.item.get("rectify_verify_days") or RECTIFY_VERIFY_DAYS)
            days = int(view.item.get("rectify_days") or RECTIFY_DAYS)
            body["rectify_verify_due"] = cal.add(env.today, verify_days, TimeUnit.WORKDAY).date.isoformat()
            body["rectify_due"] = cal.add(env.today, days, TimeUnit.WORKDAY).date.isoformat()
        return body

    def describe(self, body: dict[str, Any]) -> str:
        level = body.get("level")
        label = RATING_LABELS.get(level, str(level)) if isinstance(level, int) else str(level)
        try:
            channel = Channel(body.get("channel")).label
        except ValueError:
            channel = ""
        reasons = "、".join(map(str, body.get("reasons") or []))
        parts = [p for p in (label, channel, reasons, str(body.get("comment") or "")) if p]
        return "，".join(parts)


class RectifyVerify(Action):
    kind = K.CASE_RECTIFY_VERIFIED
    name = "rectify-verify"
    label = "差评核实"
    key = "k"
    done = "已登记差评核实情况"
    help = "差评后由负责单位回访核实情况（1个工作日内）"
    states = CLOSED_RESULTS
    where = Where.ANYONE
    fields = (Field("finding", "核实情况", required=True),)

    def precondition(self, view: CaseView, actor: Actor, at: str) -> str | None:
        r = view.rectify
        if not r or r.get("verified_at"):
            return "没有待核实的差评"
        if actor.org != r["org"]:
            return f"差评由{r['org']}负责核实整改"
        return None

    def check(self, view: CaseView, actor: Actor, body: dict[str, Any], at: str) -> None:
        if not isinstance(body.get("finding"), str) or not body["finding"].strip():
            fail("请填写核实情况")

    def effect(self, view: CaseView, actor: Actor, body: dict[str, Any], at: str, ev) -> None:
        assert view.rectify is not None
        view.rectify = {**view.rectify, "verified_at": at, "finding": body["finding"]}


MEASURES = (("immediate", "立行立改"), ("deadline", "限期整改"), ("explain", "解释说明"), ("appeal", "申诉复核"))


class RectifyClose(Action):
    kind = K.CASE_RECTIFY_CLOSED
    name = "rectify-close"
    label = "差评整改"
    key = "m"
    done = "已登记整改结果"
    help = "登记差评的整改结果（立行立改、限期整改、解释说明或申诉复核），整改任务关闭"
    states = CLOSED_RESULTS
    where = Where.ANYONE
    fields = (
        Field("measure", "整改方式", Kind.CHOICE, required=True, choices=MEASURES),
        Field("result", "整改结果", required=True),
    )

    def precondition(self, view: CaseView, actor: Actor, at: str) -> str | None:
        r = view.rectify
        if not r or r.get("closed_at"):
            return "没有待整改的差评"
        if not r.get("verified_at"):
            return "请先核实差评情况"
        if actor.org != r["org"]:
            return f"差评由{r['org']}负责核实整改"
        return None

    def check(self, view: CaseView, actor: Actor, body: dict[str, Any], at: str) -> None:
        if body.get("measure") not in dict(MEASURES):
            fail("请选择整改方式")
        if not isinstance(body.get("result"), str) or not body["result"].strip():
            fail("请填写整改结果")

    def effect(self, view: CaseView, actor: Actor, body: dict[str, Any], at: str, ev) -> None:
        assert view.rectify is not None
        view.rectify = {**view.rectify, "closed_at": at, "measure": body["measure"], "result": body["result"]}

    def describe(self, body: dict[str, Any]) -> str:
        return f"{dict(MEASURES).get(str(body.get('measure')), '')}：{body.get('result', '')}"
