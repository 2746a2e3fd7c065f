"""The case rules (schema.rules), one action at a time, with pure sealed events.

Each practice rule of a county (即办 only where granted, 公示 from the catalog, 特别程序 with days,
容缺 with a written promise, 联办 by each department, 作废 approved above, 好差评 by the
applicant, 接件 at the receiving level …) has its test here; docs/case-rules.md lists them.
"""

from __future__ import annotations

import pytest

from schema import events as K
from schema import rules
from schema.case import CaseView, MaterialStatus, ResultCode, State
from schema.errors import TransitionError
from schema.org import Level
from tests.helpers import (
    ADMIN,
    ADMIN_ELSEWHERE,
    AGENT,
    AGENT2,
    BIRTH,
    CLERK,
    CLERK2,
    COUNTY,
    DIBAO,
    DISABLED_SUBSIDY,
    HOMESTEAD,
    ID_CARD,
    LAND,
    MEDICAL,
    PENSION,
    REVIEWER,
    TOWN,
    VILLAGE,
    CaseSim,
    Chains,
    Who,
    material_names,
    registration_body,
    rongque_names,
)

BANK = "本人银行账户（存折或银行卡）复印件"  # the 容缺 material of 低保
APPLICATION = "低保申请书"
PROMISE = dict(promise="本人承诺10个工作日内补交", rongque_due="2026-03-16")
DISABLED_FED = Who("reviewer", COUNTY, "cdpf-1", department="县残疾人联合会")
LAND_OFFICE = Who("clerk", TOWN, "land-1", department="乡镇自然资源所")
FARM_OFFICE = Who("clerk", TOWN, "farm-1", department="乡镇农业农村办")
BUILD_OFFICE = Who("clerk", TOWN, "build-1", department="乡镇村镇建设办")
PEOPLE = (DISABLED_FED, LAND_OFFICE, FARM_OFFICE, BUILD_OFFICE)


@pytest.fixture
def chains():
    return Chains()


def case(chains, code=PENSION, who=AGENT, received=None):
    return CaseSim(chains, code, who=who, received=received, people=PEOPLE)


def accepted(chains, code=PENSION, who=AGENT, **body):
    c = case(chains, code, who)
    c.do(K.CASE_ACCEPTED, who, **body)
    return c


def up(c: CaseSim, *whos: Who) -> CaseSim:
    """Forward the case, and 接件 at each level it reaches."""
    for sender, receiver in zip(whos, whos[1:], strict=False):
        c.do(K.CASE_FORWARDED, sender)
        c.do(K.CASE_RECEIVED, receiver)
    return c


def at_county(chains, code=DIBAO):
    """A village case forwarded village → township → county and taken in there."""
    return up(accepted(chains, code), AGENT, CLERK, REVIEWER)


def publicized(c: CaseSim, who: Who) -> CaseSim:
    c.do(K.CASE_PUBLICITY_STARTED, who, until="2026-03-10")
    c.do(K.CASE_PUBLICITY_ENDED, who, at="2026-03-11T09:00:00+08:00", objection=False, result="公示期内无异议")
    return c


# -- registration ---------------------------------------------------------------------------------------


def test_registration_creates_a_received_case_held_where_it_was_taken(chains):
    c = case(chains, received=material_names(PENSION)[:1])
    v = c.view
    assert v.state is State.RECEIVED
    assert (v.intake_org, v.holder_org, v.intake_level, v.holder_level) == (VILLAGE, VILLAGE, "village", "village")
    assert v.path == [] and v.accepted_at is None and v.result_code is None
    names = material_names(PENSION)
    assert v.materials == {names[0]: "received", names[1]: "missing", names[2]: "missing"}
    assert v.events == 1 and v.conflicts == []
    assert v.first_responder == AGENT.actor  # 首问负责人: who first received the applicant


def test_registration_records_the_first_responder_and_the_proxy(chains):
    body = {**registration_body(PENSION), "first_responder": "agent-9",
            "proxy": {"name": "王小明", "relation": "子女", "doc_type": "resident_id",
                      "doc_number": "330522198001011237"}}
    v = rules.apply(None, chains.build(K.CASE_REGISTERED, "c", body, AGENT))
    assert v.first_responder == "agent-9" and v.proxy["relation"] == "子女"


def test_admin_cannot_register(chains):
    ev = chains.build(K.CASE_REGISTERED, "c", registration_body(PENSION), ADMIN)
    with pytest.raises(TransitionError, match="管理员不能登记办件"):
        rules.apply(None, ev)


def test_registration_needs_case_number_and_item(chains):
    body = registration_body(PENSION)
    del body["case_no"]
    with pytest.raises(TransitionError, match="缺少办件编号或事项"):
        rules.apply(None, chains.build(K.CASE_REGISTERED, "c", body, AGENT))


def test_registering_twice_and_acting_before_registration_are_refused(chains):
    c = case(chains)
    with pytest.raises(TransitionError, match="已登记"):
        rules.apply(c.view, c.event(K.CASE_REGISTERED, AGENT, **registration_body(PENSION)))
    stray = chains.build(K.CASE_ACCEPTED, "unknown-case", {}, AGENT)
    with pytest.raises(TransitionError, match="尚未收到该办件的登记信息"):
        rules.apply(None, stray)


def test_unknown_event_kind_is_refused(chains):
    c = case(chains)
    assert "未知的办件事件类型" in c.refused("case.teleported", AGENT)


def test_village_registration_of_an_advice_only_item_is_kept_as_a_conflict(chains):
    c = case(chains, ID_CARD)
    assert c.view.state is State.RECEIVED
    assert [x.reason for x in c.view.conflicts] == ["该事项村级仅可咨询，不能在村级登记办件"]
    assert "村级仅可咨询" in c.refused(K.CASE_ACCEPTED, AGENT)


# -- actor checks shared by every rule -----------------------------------------------------------------------


def test_role_not_allowed(chains):
    c = case(chains)
    assert c.refused(K.CASE_ACCEPTED, ADMIN) == "管理员不能对办件执行“受理”"
    c.do(K.CASE_ACCEPTED, AGENT)
    assert c.refused(K.CASE_FORWARDED, Who("reviewer", VILLAGE, "r")) == "审批人员不能对办件执行“转报”"
    assert c.refused(K.CASE_RETURNED, AGENT, reason="不对") == "代办员不能对办件执行“退回”"


def test_only_the_holder_may_act(chains):
    c = case(chains)
    msg = c.refused(K.CASE_ACCEPTED, AGENT2)
    assert msg.startswith("只有当前经办单位可以受理此办件") and VILLAGE in msg
    assert "只有当前经办单位" in c.refused(K.CASE_ACCEPTED, CLERK)


def test_wrong_state(chains):
    c = accepted(chains)
    assert c.refused(K.CASE_ACCEPTED, AGENT) == "办件当前状态为“办理中”，不能受理"
    assert c.refused(K.CASE_DELIVERED, AGENT) == "办件当前状态为“办理中”，不能送达"
    assert "不能好差评" in c.refused(K.CASE_RATED, AGENT, level=5, channel="onsite")


def test_invalid_role_or_org_in_the_envelope(chains):
    c = case(chains)
    assert c.refused(K.CASE_ACCEPTED, Who("janitor", VILLAGE, "x")) == "操作人的角色或单位无效"
    assert c.refused(K.CASE_ACCEPTED, Who("agent", "12345", "x")) == "操作人的角色或单位无效"


def test_the_fold_uses_the_resolved_author_not_the_claim(chains):
    """A resolver (the station registry) decides who an event is from: an event the village's
    station recorded claiming the township clerk's org is held to the village's org."""
    c = accepted(chains, DIBAO)
    c.do(K.CASE_FORWARDED, AGENT)
    forged = chains.build(K.CASE_RECEIVED, c.case_id, {}, CLERK, station="st-" + VILLAGE)
    stations = {"st-" + VILLAGE: (VILLAGE, Level.VILLAGE), "st-" + TOWN: (TOWN, Level.TOWNSHIP)}

    def registry(ev):
        org, level = stations[ev.station]
        return rules.Actor(ev.actor, rules.claimed(ev).role, org, level)

    assert rules.apply(CaseView.from_dict(c.view.to_dict()), forged).state is State.IN_PROGRESS  # as claimed
    with pytest.raises(TransitionError, match="只有当前经办单位"):
        rules.apply(c.view, forged, registry)
    honest = chains.build(K.CASE_RECEIVED, c.case_id, {}, CLERK)
    assert rules.apply(c.view, honest, registry).state is State.IN_PROGRESS


# -- 受理 and 容缺 ----------------------------------------------------------------------------------------------


def test_accept_sets_accepted_at_and_starts_the_clock(chains):
    c = case(chains)
    ev = c.event(K.CASE_ACCEPTED, AGENT)
    rules.apply(c.view, ev)
    assert c.view.state is State.IN_PROGRESS
    assert c.view.accepted_at == ev.at == c.view.stage_since


def test_accept_uses_the_paper_date_for_backfilled_entries(chains):
    c = CaseSim(chains, PENSION, received_at="2026-02-26T10:00:00+08:00")
    c.do(K.CASE_ACCEPTED, AGENT, effective_at="2026-02-27T15:00:00+08:00")
    assert c.view.accepted_at == "2026-02-27T15:00:00+08:00"


def test_backfilled_action_cannot_predate_the_registration(chains):
    c = case(chains)
    msg = c.refused(K.CASE_ACCEPTED, AGENT, effective_at="2025-01-01T09:00:00+08:00")
    assert "不能早于收件时间" in msg


def test_accept_with_missing_materials_lists_them(chains):
    names = material_names(PENSION)
    c = case(chains, received=names[:1])
    msg = c.refused(K.CASE_ACCEPTED, AGENT)
    assert msg == f"材料不齐，不能受理，缺：{names[1]}、{names[2]}（请先一次性告知）"
    assert K.CASE_ACCEPTED not in c.offered(AGENT)  # the menu agrees


def test_rongque_only_for_rongque_materials(chains):
    received = [m for m in material_names(DIBAO) if m != BANK and m != APPLICATION]
    c = case(chains, DIBAO, received=received)
    assert K.CASE_ACCEPTED not in c.offered(AGENT)  # the application itself cannot be 容缺
    assert APPLICATION in c.refused(K.CASE_ACCEPTED, AGENT, rongque=[BANK], **PROMISE)
    c.do(K.CASE_SUPPLEMENTED, AGENT, materials=[APPLICATION])
    assert c.refused(K.CASE_ACCEPTED, AGENT, rongque=["结婚证"], **PROMISE) == "材料“结婚证”不在该事项的材料清单中"
    c.do(K.CASE_ACCEPTED, AGENT, rongque=[BANK], **PROMISE)
    assert c.view.state is State.IN_PROGRESS
    assert c.view.materials[BANK] == MaterialStatus.RONGQUE
    assert c.view.outstanding_rongque == [BANK]


def test_rongque_needs_a_written_promise_and_a_deadline(chains):
    c = case(chains, DIBAO, received=[m for m in material_names(DIBAO) if m != BANK])
    assert c.refused(K.CASE_ACCEPTED, AGENT, rongque=[BANK]) == "容缺受理须有申请人的书面承诺（请填写承诺内容）"
    assert c.refused(K.CASE_ACCEPTED, AGENT, rongque=[BANK], promise="会补") == "请填写容缺材料补交期限"
    msg = c.refused(K.CASE_ACCEPTED, AGENT, rongque=[BANK], promise="会补", rongque_due="2026-01-01")
    assert msg == "容缺材料补交期限（2026-01-01）不能早于受理日期"
    c.do(K.CASE_ACCEPTED, AGENT, rongque=[BANK], **PROMISE)
    assert c.view.rongque_promise == {"materials": [BANK], "promise": PROMISE["promise"],
                                      "due": "2026-03-16", "at": c.view.accepted_at}
    c.do(K.CASE_SUPPLEMENTED, AGENT, materials=[BANK])
    assert c.view.rongque_promise["fulfilled_at"] and not c.view.outstanding_rongque


def test_optional_materials_are_not_needed_to_accept(chains):
    required = [m for m in material_names(DIBAO) if m != "残疾人证或病情诊断证明"]
    c = case(chains, DIBAO, received=required)
    c.do(K.CASE_ACCEPTED, AGENT)
    assert c.view.materials["残疾人证或病情诊断证明"] == "missing"


# -- 一次性告知, 补正, 补正不来 ------------------------------------------------------------------------------------


def test_notice_before_acceptance_does_not_pause_and_supplement_returns_to_received(chains):
    names = material_names(PENSION)
    c = case(chains, received=names[:1])
    c.do(K.CASE_NOTIFIED_MISSING, AGENT, missing=names[1:], deadline="2026-04-01")
    v = c.view
    assert v.state is State.AWAITING_SUPPLEMENT
    assert (v.supplement_deadline, v.missing_notice, v.pauses) == ("2026-04-01", names[1:], [])
    c.do(K.CASE_SUPPLEMENTED, AGENT, materials=[names[1]])
    assert c.view.state is State.AWAITING_SUPPLEMENT and c.view.still_missing == [names[2]]
    c.do(K.CASE_SUPPLEMENTED, AGENT, materials=[names[2]])
    v = c.view
    assert v.state is State.RECEIVED and v.supplement_deadline is None and v.missing_notice == []
    c.do(K.CASE_ACCEPTED, AGENT)


def test_accept_while_awaiting_supplement_before_acceptance_is_容缺受理(chains):
    received = [m for m in material_names(DIBAO) if m != BANK]
    c = case(chains, DIBAO, received=received)
    c.do(K.CASE_NOTIFIED_MISSING, AGENT, missing=[BANK], deadline="2026-04-01")
    assert "材料不齐" in c.refused(K.CASE_ACCEPTED, AGENT)
    c.do(K.CASE_ACCEPTED, AGENT, rongque=[BANK], **PROMISE)
    assert c.view.state is State.IN_PROGRESS and c.view.supplement_deadline is None


def test_notice_after_acceptance_pauses_the_clock_until_supplemented(chains):
    c = accepted(chains, DIBAO)
    ev = c.event(K.CASE_NOTIFIED_MISSING, AGENT, missing=[BANK], deadline="2026-04-01")
    rules.apply(c.view, ev)
    assert c.view.state is State.AWAITING_SUPPLEMENT and c.view.resume_state == "in_progress"
    assert c.view.pauses == [[ev.at, None, "补正", None]]
    assert c.refused(K.CASE_ACCEPTED, AGENT) == "办件已受理，材料补齐后会自动恢复办理"
    sup = c.event(K.CASE_SUPPLEMENTED, AGENT, materials=[BANK])
    rules.apply(c.view, sup)
    assert c.view.state is State.IN_PROGRESS
    assert c.view.pauses == [[ev.at, sup.at, "补正", None]]


def test_notice_needs_materials_of_the_item_and_a_deadline(chains):
    c = case(chains)
    assert c.refused(K.CASE_NOTIFIED_MISSING, AGENT, missing=[], deadline="2026-04-01") == "一次性告知须列出所缺的全部材料"
    assert "不在该事项的材料清单中" in c.refused(K.CASE_NOTIFIED_MISSING, AGENT, missing=["结婚证"], deadline="2026-04-01")
    assert c.refused(K.CASE_NOTIFIED_MISSING, AGENT, missing=[material_names(PENSION)[0]]) == "请填写补正期限"


def test_supplement_needs_materials_and_is_allowed_at_intake_or_holder(chains):
    c = case(chains, received=material_names(PENSION)[1:])
    assert c.refused(K.CASE_SUPPLEMENTED, AGENT, materials=[]) == "请选择补交的材料"
    assert "只有收件或当前经办单位可以补正" in c.refused(K.CASE_SUPPLEMENTED, AGENT2, materials=[material_names(PENSION)[0]])
    c.do(K.CASE_NOTIFIED_MISSING, AGENT, missing=material_names(PENSION)[:1], deadline="2026-04-01")
    c.do(K.CASE_SUPPLEMENTED, AGENT, materials=[material_names(PENSION)[0]])
    c.do(K.CASE_ACCEPTED, AGENT)
    c.do(K.CASE_NOTIFIED_MISSING, AGENT, missing=material_names(PENSION)[:1], deadline="2026-04-01")
    c.do(K.CASE_SUPPLEMENTED, AGENT, materials=[material_names(PENSION)[0]])
    c.do(K.CASE_FORWARDED, AGENT)
    c.do(K.CASE_RECEIVED, CLERK)
    c.do(K.CASE_NOTIFIED_MISSING, CLERK, missing=material_names(PENSION)[:1], deadline="2026-04-01")
    c.do(K.CASE_SUPPLEMENTED, AGENT, materials=[material_names(PENSION)[0]])  # the intake village still may
    c.do(K.CASE_NOTIFIED_MISSING, CLERK, missing=material_names(PENSION)[:1], deadline="2026-04-01")
    c.do(K.CASE_SUPPLEMENTED, CLERK, materials=[material_names(PENSION)[0]])  # and so may the holder


def test_nothing_to_supplement_is_not_offered(chains):
    c = case(chains)  # everything received
    assert K.CASE_SUPPLEMENTED not in c.offered(AGENT)
    assert c.refused(K.CASE_SUPPLEMENTED, AGENT, materials=[material_names(PENSION)[0]]) == "材料已全部收齐，没有需要补正的材料"


def test_lapse_only_after_the_supplement_deadline(chains):
    names = material_names(PENSION)
    c = case(chains, received=names[:1])
    c.do(K.CASE_NOTIFIED_MISSING, AGENT, missing=names[1:], deadline="2026-03-10")
    msg = c.refused(K.CASE_LAPSED, AGENT, at="2026-03-10T17:00:00+08:00")
    assert msg == "补正期限（2026-03-10）尚未届满，不能按补正不来办结"
    assert K.CASE_LAPSED not in c.offered(AGENT, at="2026-03-10T17:00:00+08:00")
    assert K.CASE_LAPSED in c.offered(AGENT, at="2026-03-11T09:00:00+08:00")
    c.do(K.CASE_LAPSED, AGENT, at="2026-03-11T09:00:00+08:00")
    v = c.view
    assert v.state is State.LAPSED and v.result_code == ResultCode.LAPSED == "5"
    assert v.closed_at == "2026-03-11T09:00:00+08:00"


def test_lapse_after_acceptance_closes_the_pause(chains):
    c = accepted(chains, DIBAO)
    c.do(K.CASE_NOTIFIED_MISSING, AGENT, missing=[BANK], deadline="2026-03-10")
    c.do(K.CASE_LAPSED, AGENT, at="2026-03-12T09:00:00+08:00")
    assert c.view.pauses[-1][1] == "2026-03-12T09:00:00+08:00"


# -- 不予受理 -------------------------------------------------------------------------------------------------------


def test_refuse_needs_a_reason_and_closes_as_returned(chains):
    c = case(chains)
    assert c.refused(K.CASE_REFUSED, AGENT, reason="  ") == "请填写不予受理的理由"
    c.do(K.CASE_REFUSED, AGENT, reason="不属于本事项受理范围")
    v = c.view
    assert v.state is State.REFUSED and v.result_code == ResultCode.RETURNED and v.closed_at
    assert v.level_closures == {"village": "1"}


def test_refuse_after_acceptance_is_not_allowed(chains):
    c = accepted(chains, DIBAO)
    assert c.refused(K.CASE_REFUSED, AGENT, reason="x") == "办件当前状态为“办理中”，不能不予受理"
    c.do(K.CASE_NOTIFIED_MISSING, AGENT, missing=[BANK], deadline="2026-04-01")
    assert "已受理" in c.refused(K.CASE_REFUSED, AGENT, reason="材料不全")


# -- 转报, 接件 and 退回 ------------------------------------------------------------------------------------------


def test_forward_moves_the_case_up_and_the_receiving_level_takes_it_in(chains):
    c = accepted(chains, DIBAO)
    c.do(K.CASE_FORWARDED, AGENT, opinion="情况属实，同意上报")
    v = c.view
    assert (v.holder_org, v.holder_level, v.path, v.state) == (TOWN, "township", [VILLAGE], State.TRANSFERRED)
    assert v.level_closures == {"village": ResultCode.FORWARDED}
    assert v.result_code is None  # the case itself stays open
    assert v.stages[-1]["org"] == VILLAGE and v.stages[-1]["result"] == "forwarded"
    assert v.stage_since == v.stages[-1]["until"]  # the township's stage counts from arrival
    assert c.offered(CLERK) == {K.CASE_RECEIVED, K.CASE_RETURNED}
    assert c.refused(K.CASE_FORWARDED, CLERK) == "办件当前状态为“待接件”，不能转报"
    c.do(K.CASE_RECEIVED, CLERK)
    assert c.view.state is State.IN_PROGRESS
    up(c, CLERK, REVIEWER)
    v = c.view
    assert (v.holder_org, v.holder_level, v.path) == (COUNTY, "county", [VILLAGE, TOWN])
    assert v.level_closures == {"village": "4", "township": "4"}


def test_forward_stops_at_the_decide_level(chains):
    c = at_county(chains)
    assert c.refused(K.CASE_FORWARDED, REVIEWER) == "审批人员不能对办件执行“转报”"
    t = accepted(chains, LAND)
    up(t, AGENT, CLERK)
    assert t.refused(K.CASE_FORWARDED, CLERK) == "该事项由乡镇级决定，本级不能再转报"


def test_forward_goes_to_the_parent_of_the_holder(chains):
    a3 = Who("agent", "330522102003", "a3")
    c = accepted(chains, DIBAO, who=a3)
    c.do(K.CASE_FORWARDED, a3)
    assert c.view.holder_org == "330522102000"
    assert "只有当前经办单位" in c.refused(K.CASE_RECEIVED, CLERK)  # not this township's case


def test_return_needs_a_reason_and_a_path(chains):
    c = accepted(chains, DIBAO, who=CLERK)  # registered at the township: nowhere to return it to
    assert c.refused(K.CASE_RETURNED, CLERK, reason="材料有误") == "办件在收件单位，不能再退回；如需结束请作废或不予受理"
    assert K.CASE_RETURNED not in c.offered(CLERK)
    c = at_county(chains)
    assert c.refused(K.CASE_RETURNED, REVIEWER, reason="") == "请填写退回理由"


def test_return_goes_back_down_the_path_even_before_receipt(chains):
    c = at_county(chains)
    c.do(K.CASE_RETURNED, REVIEWER, reason="收入证明不清楚")
    v = c.view
    assert (v.state, v.holder_org, v.holder_level, v.path) == (State.RETURNED, TOWN, "township", [VILLAGE])
    assert v.level_closures == {"village": "4"}  # the township's 转报办结 is undone
    c.do(K.CASE_FORWARDED, CLERK)
    c.do(K.CASE_RETURNED, REVIEWER, reason="仍不清楚")  # sent straight back without 接件
    c.do(K.CASE_RETURNED, CLERK, reason="请补充收入证明")
    assert (c.view.holder_org, c.view.path, c.view.level_closures) == (VILLAGE, [], {})
    c.do(K.CASE_FORWARDED, AGENT)  # corrected and sent up again
    assert c.view.state is State.TRANSFERRED and c.view.holder_org == TOWN


# -- 特别程序 and 公示 ----------------------------------------------------------------------------------------------


def test_pause_type_special_procedure_has_days_and_a_resume_date(chains):
    c = at_county(chains)
    assert c.refused(K.CASE_SPECIAL_STARTED, REVIEWER, procedure="holiday", reason="x", days=3).startswith(
        "请选择特别程序种类")
    assert c.refused(K.CASE_SPECIAL_STARTED, REVIEWER, procedure="verification", reason="", days=3) == (
        "请填写特别程序的启动理由")
    assert c.refused(K.CASE_SPECIAL_STARTED, REVIEWER, procedure="verification", reason="入户", days=None) == (
        "请填写特别程序的天数（1天以上的整数）")
    assert c.refused(K.CASE_SPECIAL_STARTED, REVIEWER, procedure="verification", reason="入户", days=3) == (
        "请填写恢复计时日期")
    start = c.event(K.CASE_SPECIAL_STARTED, REVIEWER, procedure="verification", reason="入户核查", days=3,
                    until="2026-03-09")
    rules.apply(c.view, start)
    assert c.view.state is State.SUSPENDED
    assert c.view.special == {"procedure": "verification", "reason": "入户核查", "days": 3, "until": "2026-03-09",
                              "started_at": start.at}
    assert c.view.pauses[-1] == [start.at, None, "实地核查", "2026-03-09"]
    assert c.refused(K.CASE_DECIDED, REVIEWER, outcome="approved") == "办件当前状态为“特别程序中”，不能决定"
    assert c.refused(K.CASE_SPECIAL_ENDED, REVIEWER, result="") == "请填写特别程序的结果"
    end = c.event(K.CASE_SPECIAL_ENDED, REVIEWER, result="核查属实")
    rules.apply(c.view, end)
    assert c.view.state is State.IN_PROGRESS and c.view.special is None
    assert c.view.pauses[-1][:2] == [start.at, end.at]


def test_publicity_cannot_be_chosen_as_a_special_procedure(chains):
    c = at_county(chains)
    msg = c.refused(K.CASE_SPECIAL_STARTED, REVIEWER, procedure="publicity", reason="x", days=7, until="2026-03-12")
    assert msg == "公示按事项目录规定的公示期启动，请使用“公示”"


def test_extension_adds_days_within_the_legal_limit(chains):
    c = at_county(chains)  # 低保: promise 30 workdays, legal 45 workdays
    c.do(K.CASE_SPECIAL_STARTED, REVIEWER, procedure="extension", reason="情况复杂", days=10)
    assert c.view.state is State.IN_PROGRESS  # an extension does not pause the clock
    assert [e["days"] for e in c.view.extensions] == [10]
    assert c.refused(K.CASE_SPECIAL_STARTED, REVIEWER, procedure="extension", reason="再延", days=6) == (
        "延长后将超过法定时限：最多还能延长5天")
    c.do(K.CASE_SPECIAL_STARTED, REVIEWER, procedure="extension", reason="再延", days=5)
    assert c.refused(K.CASE_SPECIAL_STARTED, REVIEWER, procedure="extension", reason="再延", days=1) == (
        "已达到法定时限，不能再延长")


def test_extension_without_a_legal_limit_may_at_most_double_the_promise(chains):
    c = at_county(chains, PENSION)  # promise 3 workdays, no legal limit
    assert c.refused(K.CASE_SPECIAL_STARTED, REVIEWER, procedure="extension", reason="x", days=4) == (
        "延长后将超过法定时限：最多还能延长3天")


def test_publicity_comes_from_the_catalog_and_is_needed_before_approval(chains):
    c = at_county(chains)  # 低保: 7 自然日 公示
    assert c.view.item["publicity_days"] == 7
    assert "须经公示" in c.refused(K.CASE_DECIDED, REVIEWER, outcome="approved")
    ev = c.event(K.CASE_PUBLICITY_STARTED, REVIEWER, until="2026-03-10", note="村务公开栏")
    rules.apply(c.view, ev)
    assert c.view.state is State.SUSPENDED and c.view.publicity["until"] == "2026-03-10"
    msg = c.refused(K.CASE_PUBLICITY_ENDED, REVIEWER, at="2026-03-09T09:00:00+08:00", result="无异议")
    assert msg == "公示期至2026-03-10，期满后才能结束公示"
    assert K.CASE_SPECIAL_ENDED not in c.offered(REVIEWER)
    c.do(K.CASE_PUBLICITY_ENDED, REVIEWER, at="2026-03-10T17:00:00+08:00", objection=True, result="有群众反映")
    assert "须经公示" in c.refused(K.CASE_DECIDED, REVIEWER, outcome="approved")  # an objection blocks approval
    publicized(c, REVIEWER)
    c.do(K.CASE_DECIDED, REVIEWER, outcome="approved")
    assert c.view.state is State.DONE


def test_items_without_publicity_do_not_offer_it(chains):
    c = at_county(chains, PENSION)
    assert K.CASE_PUBLICITY_STARTED not in c.offered(REVIEWER)
    assert c.refused(K.CASE_PUBLICITY_STARTED, REVIEWER, until="2026-03-10") == "该事项目录未规定公示期，无需公示"


# -- 决定 and 即办 ------------------------------------------------------------------------------------------------------


def test_decide_only_at_the_items_decide_level(chains):
    c = accepted(chains, PENSION)
    assert c.refused(K.CASE_DECIDED, AGENT, outcome="approved") == "该事项由县级决定，村级代办员不能作出决定"
    up(c, AGENT, CLERK)
    assert c.refused(K.CASE_DECIDED, CLERK, outcome="approved") == "该事项由县级决定，乡镇级窗口人员不能作出决定"
    t = up(accepted(chains, LAND), AGENT, CLERK)
    t.do(K.CASE_DECIDED, CLERK, outcome="approved")
    assert t.view.state is State.DONE and t.view.result_code == ResultCode.DONE


def test_immediate_only_where_the_catalog_grants_it(chains):
    """出生登记 is a 公安 item decided by the township: a village agent may not close it on the spot."""
    b = accepted(chains, BIRTH)
    assert b.refused(K.CASE_DECIDED, AGENT, outcome="approved", certificate="C-1") == (
        "该即办件只能在乡镇级当场办结，请转报上级")
    up(b, AGENT, CLERK)
    b.do(K.CASE_DECIDED, CLERK, outcome="approved", certificate="C-1")
    assert b.view.result_code == "0" and b.view.level_closures == {"village": "4", "township": "0"}
    m = accepted(chains, MEDICAL)  # the catalog grants villages 即办 of 医保参保登记
    m.do(K.CASE_DECIDED, AGENT, outcome="approved")
    assert m.view.state is State.DONE and m.view.result_code == "6"


def test_decide_outcome_reason_and_certificate(chains):
    c = at_county(chains, PENSION)
    assert c.refused(K.CASE_DECIDED, REVIEWER, outcome="maybe") == "请选择决定结果：准予或不予批准"
    assert c.refused(K.CASE_DECIDED, REVIEWER, outcome="denied", opinion=" ") == "请填写不予批准的理由"
    assert c.refused(K.CASE_DECIDED, REVIEWER, outcome="denied", opinion="x", certificate="Z") == (
        "不予批准不能登记证照编号")
    c.do(K.CASE_DECIDED, REVIEWER, outcome="approved", certificate="养老-2026-001")
    assert (c.view.state, c.view.outcome, c.view.result_code, c.view.certificate) == (
        State.DONE, "approved", "0", "养老-2026-001")
    assert c.view.stages[-1]["result"] == "decided"


def test_outstanding_rongque_blocks_approval_but_not_denial(chains):
    received = [m for m in material_names(DIBAO) if m != BANK]
    c = case(chains, DIBAO, received=received)
    c.do(K.CASE_ACCEPTED, AGENT, rongque=[BANK], **PROMISE)
    up(c, AGENT, CLERK, REVIEWER)
    publicized(c, REVIEWER)
    assert c.refused(K.CASE_DECIDED, REVIEWER, outcome="approved") == f"不能准予：容缺材料尚未补齐：{BANK}"
    c.do(K.CASE_SUPPLEMENTED, AGENT, materials=[BANK])  # the village collects it later
    c.do(K.CASE_DECIDED, REVIEWER, outcome="approved")


# -- 联办 ------------------------------------------------------------------------------------------------------------


def test_joint_items_are_dispatched_and_each_department_answers_itself(chains):
    c = up(accepted(chains, HOMESTEAD), AGENT, CLERK)
    depts = list(c.view.item["co_departments"])
    assert len(depts) == 3
    assert "尚未分送联办部门" in c.refused(K.CASE_DECIDED, CLERK, outcome="approved")
    assert K.CASE_CO_OPINION not in c.offered(LAND_OFFICE)  # nothing dispatched yet
    c.do(K.CASE_CO_DISPATCHED, CLERK, departments=depts, due="2026-03-13")
    assert set(c.view.co_dispatch) == set(depts)
    assert K.CASE_CO_OPINION in c.offered(LAND_OFFICE) and K.CASE_CO_OPINION not in c.offered(CLERK)
    assert c.refused(K.CASE_CO_OPINION, CLERK, department=depts[0], decision="agree", opinion="同意") == (
        "联办意见须由联办部门的人员出具，您所属的部门是（未设置所属部门）")
    assert c.refused(K.CASE_CO_OPINION, LAND_OFFICE, department=depts[1], decision="agree", opinion="x") == (
        f"只有“{depts[1]}”的人员可以出具该部门的意见")
    assert c.refused(K.CASE_CO_OPINION, LAND_OFFICE, department=depts[0], opinion="x") == "请选择同意或不同意"
    c.do(K.CASE_CO_OPINION, LAND_OFFICE, department=depts[0], decision="agree", opinion="符合规划")
    c.do(K.CASE_CO_OPINION, FARM_OFFICE, department=depts[1], decision="disagree", opinion="占用基本农田")
    assert c.refused(K.CASE_DECIDED, CLERK, outcome="approved") == (
        f"不能准予：联办部门意见未齐：{depts[2]}；联办部门不同意：{depts[1]}；该事项须经公示且无异议后才能准予")
    c.do(K.CASE_CO_OPINION, BUILD_OFFICE, department=depts[2], decision="agree", opinion="同意")
    assert c.refused(K.CASE_CO_OPINION, FARM_OFFICE, department=depts[1], decision="agree", opinion="x") == (
        "没有等待意见的联办部门（请先分送）")
    assert c.view.co_opinions[depts[0]] == {"agree": True, "opinion": "符合规划", "at": c.view.co_opinions[depts[0]]["at"],
                                            "actor": LAND_OFFICE.actor}
    c.do(K.CASE_DECIDED, CLERK, outcome="denied", opinion="联办部门不同意")  # denial needs no agreement
    assert c.view.result_code == "1"


def test_joint_item_at_the_county(chains):
    c = at_county(chains, DISABLED_SUBSIDY)
    assert K.CASE_CO_DISPATCHED in c.offered(REVIEWER)
    c.do(K.CASE_CO_DISPATCHED, REVIEWER, departments=["县残疾人联合会"], due="2026-03-13")
    c.do(K.CASE_CO_OPINION, DISABLED_FED, department="县残疾人联合会", decision="agree", opinion="已核实残疾等级")
    c.do(K.CASE_DECIDED, REVIEWER, outcome="approved")


# -- 送达, 好差评 and 整改 ------------------------------------------------------------------------------------------------


def decided(chains, code=MEDICAL):
    c = accepted(chains, code)
    c.do(K.CASE_DECIDED, AGENT, outcome="approved")
    return c


def test_deliver_at_intake_or_holder_after_decision(chains):
    c = at_county(chains, PENSION)
    c.do(K.CASE_DECIDED, REVIEWER, outcome="approved")
    assert "只有收件或当前经办单位可以送达" in c.refused(K.CASE_DELIVERED, CLERK, method="窗口领取")
    ev = c.event(K.CASE_DELIVERED, AGENT, method="村代办员代领")
    rules.apply(c.view, ev)
    assert c.view.state is State.DELIVERED and c.view.delivered_at == ev.at
    assert c.view.result_code == "6"  # delivering keeps the result


def test_rating_once_plus_one_follow_up_by_the_applicant(chains):
    c = decided(chains)
    for bad in (0, 6, "5", None, True):
        assert c.refused(K.CASE_RATED, AGENT, level=bad, channel="onsite") == "评价等级应为1到5（5为非常满意）"
    assert c.refused(K.CASE_RATED, AGENT, level=5) == "请选择评价渠道"
    c.do(K.CASE_RATED, AGENT, level=4, channel="onsite", reasons=["办事效率高"])
    c.do(K.CASE_DELIVERED, AGENT, method="窗口领取")
    c.do(K.CASE_RATED, AGENT, level=5, channel="onsite", comment="后来很快")
    assert [(r["level"], r["follow_up"], r["channel"]) for r in c.view.ratings] == [
        (4, False, "onsite"), (5, True, "onsite")]
    assert c.refused(K.CASE_RATED, AGENT, level=4, channel="onsite") == "每件办件只能评价一次并追评一次"


def test_staff_cannot_rate_their_own_cases_by_phone(chains):
    """A 回访 call is recorded by an org that did not handle the case, never by the handlers."""
    c = at_county(chains, PENSION)
    c.do(K.CASE_DECIDED, REVIEWER, outcome="approved")
    for handler in (AGENT, CLERK, REVIEWER):
        assert "经办人员不能替申请人评价" in c.refused(K.CASE_RATED, handler, level=5, channel="phone")
    assert c.refused(K.CASE_RATED, AGENT2, level=5, channel="onsite") == (
        "现场评价只能在收件或办结单位的工作站上由申请人进行")
    assert c.refused(K.CASE_RATED, ADMIN_ELSEWHERE, level=5, channel="phone").startswith("只有本县单位可以好差评")
    c.do(K.CASE_RATED, CLERK2, level=5, channel="phone")  # another township's 回访 desk
    assert c.refused(K.CASE_RATED, Who("agent", VILLAGE, "colleague"), level=5, channel="phone") == (
        "电话回访须由未经办该件的单位记录（如县中心回访），经办人员不能替申请人评价")


def test_a_bad_rating_opens_a_rectification_task_for_the_deciding_level(chains):
    c = at_county(chains, PENSION)
    c.do(K.CASE_DECIDED, REVIEWER, outcome="approved")
    assert "差评核实期限" in c.refused(K.CASE_RATED, AGENT, level=2, channel="onsite")
    c.do(K.CASE_RATED, AGENT, level=1, channel="onsite", reasons=["多次跑腿"],
         rectify_verify_due="2026-03-06", rectify_due="2026-03-26")
    r = c.view.rectify
    assert (r["org"], r["level"], r["verify_due"], r["due"], r["closed_at"]) == (
        COUNTY, "county", "2026-03-06", "2026-03-26", None)
    assert K.CASE_RECTIFY_VERIFIED in c.offered(REVIEWER) and K.CASE_RECTIFY_VERIFIED not in c.offered(AGENT)
    assert c.refused(K.CASE_RECTIFY_CLOSED, REVIEWER, measure="immediate", result="x") == "请先核实差评情况"
    c.do(K.CASE_RECTIFY_VERIFIED, REVIEWER, finding="申请人反映材料要求讲解不清")
    assert c.refused(K.CASE_RECTIFY_CLOSED, REVIEWER, measure="x", result="已改") == "请选择整改方式"
    c.do(K.CASE_RECTIFY_CLOSED, REVIEWER, measure="immediate", result="已重新讲解并修改办事指南")
    assert c.view.rectify["closed_at"] and c.view.rectify["measure"] == "immediate"
    assert not c.offered(REVIEWER) & {K.CASE_RECTIFY_VERIFIED, K.CASE_RECTIFY_CLOSED}


def test_refused_and_lapsed_cases_can_be_rated(chains):
    c = case(chains)
    c.do(K.CASE_REFUSED, AGENT, reason="不符合")
    c.do(K.CASE_RATED, AGENT, level=3, channel="onsite")
    assert len(c.view.ratings) == 1


# -- 作废 ----------------------------------------------------------------------------------------------------------


def test_void_before_acceptance_needs_a_reason_and_records_entry_errors(chains):
    c = case(chains)
    assert c.refused(K.CASE_VOIDED, AGENT, reason="") == "请填写作废原因"
    c.do(K.CASE_VOIDED, AGENT, reason="录错了事项", entry_error=True)
    assert (c.view.state, c.view.result_code) == (State.VOIDED, ResultCode.DELETED)
    d = case(chains)
    d.do(K.CASE_VOIDED, AGENT, reason="申请人撤回")
    assert d.view.result_code == ResultCode.VOIDED


def test_voiding_an_accepted_case_is_a_request_approved_above(chains):
    c = accepted(chains, DIBAO)
    assert c.refused(K.CASE_VOIDED, AGENT, reason="撤回") == "办件已受理，作废须提交作废申请，由上级审批"
    c.do(K.CASE_VOID_REQUESTED, AGENT, reason="申请人撤回申请")
    assert c.view.void_request["by"] == AGENT.actor and c.view.state is State.IN_PROGRESS
    assert c.refused(K.CASE_FORWARDED, AGENT) == "办件有待审批的作废申请，请等上级审批后再转报"
    assert c.refused(K.CASE_VOID_APPROVED, AGENT) == "代办员不能对办件执行“批准作废”"
    assert "只有上级单位可以批准作废" in c.refused(K.CASE_VOID_APPROVED, Who("clerk", VILLAGE, "x"))
    assert "只有上级单位" in c.refused(K.CASE_VOID_APPROVED, CLERK2)  # another township
    c.do(K.CASE_VOID_REJECTED, CLERK, reason="请先核实")
    assert c.view.void_request is None and c.view.state is State.IN_PROGRESS
    c.do(K.CASE_VOID_REQUESTED, AGENT, reason="申请人已死亡", entry_error=False)
    c.do(K.CASE_VOID_APPROVED, CLERK, opinion="同意")
    assert (c.view.state, c.view.result_code) == (State.VOIDED, "2")


def test_county_admin_voids_directly_anywhere_in_the_county(chains):
    c = at_county(chains)
    c.do(K.CASE_SPECIAL_STARTED, REVIEWER, procedure="verification", reason="入户核查", days=3, until="2026-03-09")
    assert c.refused(K.CASE_VOIDED, ADMIN_ELSEWHERE, reason="撤回") == "该办件不在本单位管辖范围内"
    c.do(K.CASE_VOIDED, ADMIN, reason="申请人死亡")
    v = c.view
    assert v.state is State.VOIDED and v.result_code == "2" and v.special is None
    assert all(p[1] is not None for p in v.pauses)


def test_closed_cases_cannot_be_voided(chains):
    c = decided(chains)
    assert c.refused(K.CASE_VOIDED, ADMIN, reason="x") == "办件当前状态为“已办结”，不能作废"


# -- audit events -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [K.CASE_ID_VIEWED, K.CASE_PRINTED])
def test_audit_events_are_recorded_without_changing_the_case(chains, kind):
    c = case(chains)
    before = c.view.to_dict()
    rules.apply(c.view, c.event(kind, CLERK2))
    after = c.view.to_dict()
    assert after["events"] == before["events"] + 1
    for key in ("events", "last_order", "last_at"):
        after.pop(key), before.pop(key)
    assert after == before


# -- menus ---------------------------------------------------------------------------------------------------------


def test_allowed_actions_on_a_new_village_case(chains):
    c = case(chains, received=material_names(PENSION)[:1])
    assert c.offered(AGENT) == {K.CASE_NOTIFIED_MISSING, K.CASE_SUPPLEMENTED, K.CASE_REFUSED, K.CASE_VOIDED}
    assert c.offered(AGENT2) == set() and c.offered(CLERK) == set()
    assert c.offered(ADMIN) == {K.CASE_VOIDED}
    assert c.offered(ADMIN_ELSEWHERE) == set()


def test_allowed_actions_follow_the_case_up(chains):
    c = accepted(chains, DIBAO)
    assert c.offered(AGENT) == {K.CASE_NOTIFIED_MISSING, K.CASE_FORWARDED, K.CASE_SPECIAL_STARTED,
                                K.CASE_PUBLICITY_STARTED, K.CASE_VOID_REQUESTED}  # every material is in
    up(c, AGENT, CLERK)
    assert c.offered(AGENT) == set()
    assert K.CASE_VOID_APPROVED not in c.offered(CLERK)
    up(c, CLERK, REVIEWER)
    county = c.offered(REVIEWER)
    assert K.CASE_DECIDED in county and K.CASE_FORWARDED not in county and K.CASE_RETURNED in county
    assert K.CASE_CO_DISPATCHED not in county  # 低保 has no co-departments
    assert c.offered(ADMIN) == {K.CASE_VOIDED}


def test_rongque_materials_of_the_test_items():
    # guards the fixtures above against a changed catalog
    assert rongque_names(DIBAO) == [BANK]
    assert rongque_names(PENSION) == []
