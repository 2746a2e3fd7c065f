"""The case rulebook (schema.lifecycle), one transition at a time, with pure sealed events."""

from __future__ import annotations

import pytest

from schema import events as K
from schema import lifecycle
from schema.case import MaterialStatus, ResultCode, State
from schema.errors import TransitionError
from schema.org import Role
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


@pytest.fixture
def chains():
    return Chains()


def case(chains, code=PENSION, who=AGENT, received=None):
    return CaseSim(chains, code, who=who, received=received)


def accepted(chains, code=PENSION, who=AGENT):
    c = case(chains, code, who)
    c.do(K.CASE_ACCEPTED, who)
    return c


def at_county(chains, code=DIBAO):
    """A village case forwarded village → township → county."""
    c = accepted(chains, code)
    c.do(K.CASE_FORWARDED, AGENT)
    c.do(K.CASE_FORWARDED, CLERK)
    return c


def kinds(rules):
    return {r.kind for r in rules}


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


def test_admin_cannot_register(chains):
    ev = chains.build(K.CASE_REGISTERED, "c", registration_body(PENSION), ADMIN)
    with pytest.raises(TransitionError, match="管理员不能登记办件"):
        lifecycle.apply(None, ev)


def test_registration_needs_case_number_and_item(chains):
    body = registration_body(PENSION)
    del body["case_no"]
    with pytest.raises(TransitionError, match="缺少办件编号或事项"):
        lifecycle.apply(None, chains.build(K.CASE_REGISTERED, "c", body, AGENT))


def test_registering_twice_and_acting_before_registration_are_refused(chains):
    c = case(chains)
    with pytest.raises(TransitionError, match="已登记"):
        lifecycle.apply(c.view, c.event(K.CASE_REGISTERED, AGENT, **registration_body(PENSION)))
    stray = chains.build(K.CASE_ACCEPTED, "unknown-case", {}, AGENT)
    with pytest.raises(TransitionError, match="尚未收到该办件的登记信息"):
        lifecycle.apply(None, stray)


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
    assert "不能好差评" in c.refused(K.CASE_RATED, AGENT, level=5)


def test_invalid_role_or_org_in_the_envelope(chains):
    c = case(chains)
    assert c.refused(K.CASE_ACCEPTED, Who("janitor", VILLAGE, "x")) == "操作人的角色或单位无效"
    assert c.refused(K.CASE_ACCEPTED, Who("agent", "12345", "x")) == "操作人的角色或单位无效"


# -- 受理 and 容缺 ----------------------------------------------------------------------------------------------


def test_accept_sets_accepted_at_and_starts_the_clock(chains):
    c = case(chains)
    ev = c.event(K.CASE_ACCEPTED, AGENT)
    lifecycle.apply(c.view, ev)
    assert c.view.state is State.IN_PROGRESS
    assert c.view.accepted_at == ev.at


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


def test_rongque_only_for_rongque_materials(chains):
    received = [m for m in material_names(DIBAO) if m != BANK and m != APPLICATION]
    c = case(chains, DIBAO, received=received)
    assert c.refused(K.CASE_ACCEPTED, AGENT, rongque=[APPLICATION, BANK]) == f"材料“{APPLICATION}”不允许容缺受理"
    assert c.refused(K.CASE_ACCEPTED, AGENT, rongque=["结婚证"]) == "材料“结婚证”不在该事项的材料清单中"
    # 容缺 of the bank account alone does not cover the missing application
    assert APPLICATION in c.refused(K.CASE_ACCEPTED, AGENT, rongque=[BANK])
    c.do(K.CASE_SUPPLEMENTED, AGENT, materials=[APPLICATION])
    c.do(K.CASE_ACCEPTED, AGENT, rongque=[BANK])
    assert c.view.state is State.IN_PROGRESS
    assert c.view.materials[BANK] == MaterialStatus.RONGQUE
    assert c.view.outstanding_rongque == [BANK]


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
    assert c.view.state is State.AWAITING_SUPPLEMENT  # one of two still missing
    c.do(K.CASE_SUPPLEMENTED, AGENT, materials=[names[2]])
    v = c.view
    assert v.state is State.RECEIVED and v.supplement_deadline is None and v.missing_notice == []
    c.do(K.CASE_ACCEPTED, AGENT)


def test_accept_while_awaiting_supplement_before_acceptance_is_容缺受理(chains):
    received = [m for m in material_names(DIBAO) if m != BANK]
    c = case(chains, DIBAO, received=received)
    c.do(K.CASE_NOTIFIED_MISSING, AGENT, missing=[BANK], deadline="2026-04-01")
    assert "材料不齐" in c.refused(K.CASE_ACCEPTED, AGENT)
    c.do(K.CASE_ACCEPTED, AGENT, rongque=[BANK])
    assert c.view.state is State.IN_PROGRESS and c.view.supplement_deadline is None


def test_notice_after_acceptance_pauses_the_clock_until_supplemented(chains):
    c = accepted(chains, DIBAO)
    ev = c.event(K.CASE_NOTIFIED_MISSING, AGENT, missing=[BANK], deadline="2026-04-01")
    lifecycle.apply(c.view, ev)
    assert c.view.state is State.AWAITING_SUPPLEMENT and c.view.resume_state == "in_progress"
    assert c.view.pauses == [[ev.at, None, "补正"]]
    assert c.refused(K.CASE_ACCEPTED, AGENT) == "办件已受理，材料补齐后会自动恢复办理"
    sup = c.event(K.CASE_SUPPLEMENTED, AGENT, materials=[BANK])
    lifecycle.apply(c.view, sup)
    assert c.view.state is State.IN_PROGRESS
    assert c.view.pauses == [[ev.at, sup.at, "补正"]]


def test_notice_needs_materials_of_the_item_and_a_deadline(chains):
    c = case(chains)
    assert c.refused(K.CASE_NOTIFIED_MISSING, AGENT, missing=[], deadline="2026-04-01") == "一次性告知须列出所缺的全部材料"
    assert "不在该事项的材料清单中" in c.refused(K.CASE_NOTIFIED_MISSING, AGENT, missing=["结婚证"], deadline="2026-04-01")
    assert c.refused(K.CASE_NOTIFIED_MISSING, AGENT, missing=[material_names(PENSION)[0]]) == "一次性告知须写明补正期限"


def test_supplement_needs_materials_and_is_allowed_at_intake_or_holder(chains):
    c = case(chains)
    assert c.refused(K.CASE_SUPPLEMENTED, AGENT, materials=[]) == "请选择补交的材料"
    assert "只有收件或当前经办单位可以补正" in c.refused(K.CASE_SUPPLEMENTED, AGENT2, materials=[material_names(PENSION)[0]])
    c.do(K.CASE_ACCEPTED, AGENT)
    c.do(K.CASE_FORWARDED, AGENT)
    c.do(K.CASE_SUPPLEMENTED, AGENT, materials=[material_names(PENSION)[0]])  # the intake village still may
    c.do(K.CASE_SUPPLEMENTED, CLERK, materials=[material_names(PENSION)[0]])  # and so may the holder


def test_lapse_only_after_the_supplement_deadline(chains):
    names = material_names(PENSION)
    c = case(chains, received=names[:1])
    c.do(K.CASE_NOTIFIED_MISSING, AGENT, missing=names[1:], deadline="2026-03-10")
    msg = c.refused(K.CASE_LAPSED, AGENT, at="2026-03-10T17:00:00+08:00")
    assert msg == "补正期限（2026-03-10）尚未届满，不能按补正不来办结"
    c.do(K.CASE_LAPSED, AGENT, at="2026-03-11T09:00:00+08:00")
    v = c.view
    assert v.state is State.LAPSED and v.result_code == ResultCode.LAPSED == "5"
    assert v.closed_at == "2026-03-11T09:00:00+08:00"


def test_lapse_after_acceptance_closes_the_pause(chains):
    c = accepted(chains, DIBAO)
    c.do(K.CASE_NOTIFIED_MISSING, AGENT, missing=[BANK], deadline="2026-03-10")
    c.do(K.CASE_LAPSED, AGENT, at="2026-03-12T09:00:00+08:00")
    assert c.view.pauses[-1][1] == "2026-03-12T09:00:00+08:00"


def test_lapse_needs_a_pending_notice(chains):
    c = accepted(chains)
    assert c.refused(K.CASE_LAPSED, AGENT) == "办件当前状态为“办理中”，不能补正不来办结"


# -- 不予受理 -------------------------------------------------------------------------------------------------------


def test_refuse_needs_a_reason_and_closes_as_returned(chains):
    c = case(chains)
    assert c.refused(K.CASE_REFUSED, AGENT, reason="  ") == "请填写不予受理的理由"
    c.do(K.CASE_REFUSED, AGENT, reason="不属于本事项受理范围")
    v = c.view
    assert v.state is State.REFUSED and v.result_code == ResultCode.RETURNED and v.closed_at
    assert v.level_closures == {"village": "1"}


def test_refuse_after_acceptance_is_not_allowed(chains):
    c = accepted(chains)
    assert c.refused(K.CASE_REFUSED, AGENT, reason="x") == "办件当前状态为“办理中”，不能不予受理"


def test_refuse_after_acceptance_while_awaiting_supplement_is_not_allowed(chains):
    """不予受理 ends a case that was never accepted; an accepted case ends by a decision or 补正不来."""
    c = accepted(chains, DIBAO)
    c.do(K.CASE_NOTIFIED_MISSING, AGENT, missing=[BANK], deadline="2026-04-01")
    assert "已受理" in c.refused(K.CASE_REFUSED, AGENT, reason="材料不全")


# -- 转报 and 退回 ------------------------------------------------------------------------------------------------


def test_forward_moves_the_case_up_one_level_and_closes_the_lower_level(chains):
    c = accepted(chains, DIBAO)
    c.do(K.CASE_FORWARDED, AGENT)
    v = c.view
    assert (v.holder_org, v.holder_level, v.path, v.state) == (TOWN, "township", [VILLAGE], State.IN_PROGRESS)
    assert v.level_closures == {"village": ResultCode.FORWARDED}
    assert v.result_code is None  # the case itself stays open
    c.do(K.CASE_FORWARDED, CLERK)
    v = c.view
    assert (v.holder_org, v.holder_level, v.path) == (COUNTY, "county", [VILLAGE, TOWN])
    assert v.level_closures == {"village": "4", "township": "4"}


def test_forward_stops_at_the_decide_level(chains):
    c = at_county(chains)
    assert c.refused(K.CASE_FORWARDED, REVIEWER) == "审批人员不能对办件执行“转报”"
    t = accepted(chains, LAND)
    t.do(K.CASE_FORWARDED, AGENT)
    assert t.refused(K.CASE_FORWARDED, CLERK) == "该事项由乡镇级决定，本级不能再转报"


def test_forward_goes_to_the_parent_of_the_holder(chains):
    c = accepted(chains, DIBAO, who=Who("agent", "330522102003", "a3"))
    c.do(K.CASE_FORWARDED, Who("agent", "330522102003", "a3"))
    assert c.view.holder_org == "330522102000"
    assert "只有当前经办单位" in c.refused(K.CASE_FORWARDED, CLERK)  # not this township's case


def test_return_needs_a_reason_and_a_path(chains):
    c = accepted(chains, DIBAO, who=CLERK)  # registered at the township: nowhere to return it to
    assert c.refused(K.CASE_RETURNED, CLERK, reason="") == "请填写退回理由"
    assert c.refused(K.CASE_RETURNED, CLERK, reason="材料有误") == "办件在收件单位，不能再退回；如需结束请作废或不予受理"


def test_return_goes_back_down_the_path(chains):
    c = at_county(chains)
    c.do(K.CASE_RETURNED, REVIEWER, reason="收入证明不清楚")
    v = c.view
    assert (v.state, v.holder_org, v.holder_level, v.path) == (State.RETURNED, TOWN, "township", [VILLAGE])
    assert v.level_closures == {"village": "4"}  # the township's 转报办结 is undone
    c.do(K.CASE_RETURNED, CLERK, reason="请补充收入证明")
    assert (c.view.holder_org, c.view.path, c.view.level_closures) == (VILLAGE, [], {})
    c.do(K.CASE_FORWARDED, AGENT)  # corrected and sent up again
    assert c.view.state is State.IN_PROGRESS and c.view.holder_org == TOWN


# -- 特别程序 ------------------------------------------------------------------------------------------------------


def test_special_procedure_pauses_and_resumes(chains):
    c = at_county(chains)
    assert c.refused(K.CASE_SPECIAL_STARTED, REVIEWER, procedure="holiday", reason="x").startswith("请选择特别程序种类")
    assert c.refused(K.CASE_SPECIAL_STARTED, REVIEWER, procedure="publicity", reason="") == "请填写特别程序的启动理由"
    start = c.event(K.CASE_SPECIAL_STARTED, REVIEWER, procedure="publicity", reason="公示7天", days=7)
    lifecycle.apply(c.view, start)
    assert c.view.state is State.SUSPENDED
    assert c.view.special == {"procedure": "publicity", "reason": "公示7天", "days": 7, "started_at": start.at}
    assert c.refused(K.CASE_DECIDED, REVIEWER, outcome="approved") == "办件当前状态为“特别程序中”，不能决定"
    end = c.event(K.CASE_SPECIAL_ENDED, REVIEWER)
    lifecycle.apply(c.view, end)
    assert c.view.state is State.IN_PROGRESS and c.view.special is None
    assert c.view.pauses == [[start.at, end.at, "公示"]]
    assert c.refused(K.CASE_SPECIAL_ENDED, REVIEWER) == "办件当前状态为“办理中”，不能结束特别程序"


# -- 决定 ----------------------------------------------------------------------------------------------------------


def test_decide_only_at_the_items_decide_level(chains):
    c = accepted(chains, PENSION)
    assert c.refused(K.CASE_DECIDED, AGENT, outcome="approved") == "该事项由县级决定，代办员不能作出决定"
    c.do(K.CASE_FORWARDED, AGENT)
    assert c.refused(K.CASE_DECIDED, CLERK, outcome="approved") == "该事项由县级决定，窗口人员不能作出决定"
    t = accepted(chains, LAND)
    t.do(K.CASE_FORWARDED, AGENT)
    t.do(K.CASE_DECIDED, CLERK, outcome="approved")
    assert t.view.state is State.DONE and t.view.result_code == ResultCode.DONE


def test_immediate_items_are_decided_where_they_are_accepted(chains):
    c = accepted(chains, MEDICAL)
    c.do(K.CASE_DECIDED, AGENT, outcome="approved", certificate="C-1")
    v = c.view
    assert v.state is State.DONE and v.outcome == "approved"
    assert v.result_code == ResultCode.CERTIFICATE == "0"
    assert v.level_closures == {"village": "0"}
    b = accepted(chains, BIRTH)
    b.do(K.CASE_DECIDED, AGENT, outcome="approved")
    assert b.view.result_code == "6"


def test_decide_outcome_and_reason(chains):
    c = at_county(chains, PENSION)
    assert c.refused(K.CASE_DECIDED, REVIEWER, outcome="maybe") == "请选择决定结果：准予或不予批准"
    assert c.refused(K.CASE_DECIDED, REVIEWER, outcome="denied", opinion=" ") == "请填写不予批准的理由"
    c.do(K.CASE_DECIDED, REVIEWER, outcome="denied", opinion="不符合参保条件")
    assert (c.view.state, c.view.outcome, c.view.result_code) == (State.DONE, "denied", "1")
    assert c.view.level_closures["county"] == "1" and c.view.closed_at


def test_outstanding_rongque_blocks_approval_but_not_denial(chains):
    received = [m for m in material_names(DIBAO) if m != BANK]
    c = case(chains, DIBAO, received=received)
    c.do(K.CASE_ACCEPTED, AGENT, rongque=[BANK])
    c.do(K.CASE_FORWARDED, AGENT)
    c.do(K.CASE_FORWARDED, CLERK)
    assert c.refused(K.CASE_DECIDED, REVIEWER, outcome="approved") == f"容缺材料尚未补齐，不能准予：{BANK}"
    c.do(K.CASE_SUPPLEMENTED, AGENT, materials=[BANK])  # the village collects it later
    assert c.view.state is State.IN_PROGRESS
    c.do(K.CASE_DECIDED, REVIEWER, outcome="approved")


def test_joint_items_need_every_co_department_agreeing(chains):
    c = accepted(chains, HOMESTEAD)
    c.do(K.CASE_FORWARDED, AGENT)
    depts = list(c.view.item["co_departments"])
    assert len(depts) == 3
    assert c.refused(K.CASE_DECIDED, CLERK, outcome="approved") == "联办部门意见未齐：" + "、".join(depts)
    assert c.refused(K.CASE_CO_OPINION, CLERK, department="县公安局", agree=True) == "“县公安局”不是该事项的联办部门"
    assert c.refused(K.CASE_CO_OPINION, AGENT, department=depts[0], agree=True) == "代办员不能对办件执行“联办意见”"
    c.do(K.CASE_CO_OPINION, CLERK, department=depts[0], agree=True)
    c.do(K.CASE_CO_OPINION, CLERK, department=depts[1], agree=False, opinion="占用基本农田")
    assert c.refused(K.CASE_DECIDED, CLERK, outcome="approved") == "联办部门意见未齐：" + depts[2]
    c.do(K.CASE_CO_OPINION, CLERK, department=depts[2], agree=True)
    assert c.refused(K.CASE_DECIDED, CLERK, outcome="approved") == "联办部门不同意，不能准予：" + depts[1]
    c.do(K.CASE_CO_OPINION, CLERK, department=depts[1], agree=True, opinion="调整选址后同意")  # a later opinion wins
    assert c.view.co_opinions[depts[1]]["opinion"] == "调整选址后同意"
    c.do(K.CASE_DECIDED, CLERK, outcome="approved")
    assert c.view.state is State.DONE


def test_joint_denial_does_not_wait_for_opinions(chains):
    c = at_county(chains, DISABLED_SUBSIDY)
    c.do(K.CASE_DECIDED, REVIEWER, outcome="denied", opinion="不符合条件")
    assert c.view.result_code == "1"


# -- 送达, 好差评 ---------------------------------------------------------------------------------------------------


def test_deliver_at_intake_or_holder_after_decision(chains):
    c = at_county(chains, PENSION)
    c.do(K.CASE_DECIDED, REVIEWER, outcome="approved")
    assert "只有收件或当前经办单位可以送达" in c.refused(K.CASE_DELIVERED, CLERK)
    ev = c.event(K.CASE_DELIVERED, AGENT, method="村代办员代领")
    lifecycle.apply(c.view, ev)
    assert c.view.state is State.DELIVERED and c.view.delivered_at == ev.at
    assert c.view.result_code == "6"  # delivering keeps the result


def test_rating_once_plus_one_follow_up(chains):
    c = accepted(chains, MEDICAL)
    c.do(K.CASE_DECIDED, AGENT, outcome="approved")
    for bad in (0, 6, "5", None, True):
        assert c.refused(K.CASE_RATED, AGENT, level=bad) == "评价等级应为1到5（5为非常满意）"
    c.do(K.CASE_RATED, AGENT, level=2, comment="等太久")
    c.do(K.CASE_DELIVERED, AGENT)
    c.do(K.CASE_RATED, AGENT, level=5, comment="后来很快")
    assert [(r["level"], r["follow_up"]) for r in c.view.ratings] == [(2, False), (5, True)]
    assert c.refused(K.CASE_RATED, AGENT, level=4) == "每件办件只能评价一次并追评一次"


def test_refused_and_lapsed_cases_can_be_rated(chains):
    c = case(chains)
    c.do(K.CASE_REFUSED, AGENT, reason="不符合")
    c.do(K.CASE_RATED, AGENT, level=3)
    assert len(c.view.ratings) == 1


# -- 作废 ----------------------------------------------------------------------------------------------------------


def test_void_needs_a_reason_and_records_entry_errors(chains):
    c = case(chains)
    assert c.refused(K.CASE_VOIDED, AGENT, reason="") == "请填写作废原因"
    c.do(K.CASE_VOIDED, AGENT, reason="录错了事项", entry_error=True)
    assert (c.view.state, c.view.result_code) == (State.VOIDED, ResultCode.DELETED)
    d = case(chains)
    d.do(K.CASE_VOIDED, AGENT, reason="申请人撤回")
    assert d.view.result_code == ResultCode.VOIDED


def test_village_cannot_void_a_forwarded_case_but_admin_can(chains):
    c = at_county(chains)
    c.do(K.CASE_SPECIAL_STARTED, REVIEWER, procedure="verification", reason="入户核查")
    assert c.refused(K.CASE_VOIDED, AGENT, reason="撤回") == "办件已转报上级，只能由上级退回后再作废"
    assert c.refused(K.CASE_VOIDED, REVIEWER, reason="撤回") == "办件已转报上级，只能由上级退回后再作废"
    assert c.refused(K.CASE_VOIDED, ADMIN_ELSEWHERE, reason="撤回") == "该办件不在本单位管辖范围内"
    c.do(K.CASE_VOIDED, ADMIN, reason="申请人死亡")
    v = c.view
    assert v.state is State.VOIDED and v.result_code == "2" and v.special is None
    assert all(end is not None for _, end, _ in v.pauses)


def test_closed_cases_cannot_be_voided(chains):
    c = accepted(chains, MEDICAL)
    c.do(K.CASE_DECIDED, AGENT, outcome="approved")
    assert c.refused(K.CASE_VOIDED, ADMIN, reason="x") == "办件当前状态为“已办结”，不能作废"


# -- audit events -------------------------------------------------------------------------------------------------


def test_viewing_the_id_number_is_recorded_without_changing_the_case(chains):
    c = case(chains)
    before = c.view.to_dict()
    lifecycle.apply(c.view, c.event(K.CASE_ID_VIEWED, CLERK2))
    after = c.view.to_dict()
    assert after["events"] == before["events"] + 1
    for key in ("events", "last_order", "last_at"):
        after.pop(key), before.pop(key)
    assert after == before


# -- allowed_actions -----------------------------------------------------------------------------------------------


def test_allowed_actions_on_a_new_village_case():
    c = CaseSim(Chains(), PENSION)
    assert kinds(lifecycle.allowed_actions(c.view, Role.AGENT, VILLAGE)) == {
        K.CASE_ACCEPTED, K.CASE_NOTIFIED_MISSING, K.CASE_SUPPLEMENTED, K.CASE_REFUSED, K.CASE_VOIDED,
    }
    assert lifecycle.allowed_actions(c.view, Role.AGENT, AGENT2.org) == []
    assert lifecycle.allowed_actions(c.view, Role.CLERK, TOWN) == []
    assert kinds(lifecycle.allowed_actions(c.view, Role.ADMIN, COUNTY)) == {K.CASE_VOIDED}
    assert lifecycle.allowed_actions(c.view, Role.ADMIN, "330523000000") == []


def test_allowed_actions_follow_the_case_up(chains):
    c = accepted(chains, DIBAO)
    village = kinds(lifecycle.allowed_actions(c.view, Role.AGENT, VILLAGE))
    assert village == {K.CASE_NOTIFIED_MISSING, K.CASE_SUPPLEMENTED, K.CASE_FORWARDED, K.CASE_SPECIAL_STARTED,
                       K.CASE_VOIDED}  # not 决定: 低保 is decided by the county
    c.do(K.CASE_FORWARDED, AGENT)
    assert kinds(lifecycle.allowed_actions(c.view, Role.AGENT, VILLAGE)) == {K.CASE_SUPPLEMENTED}
    township = kinds(lifecycle.allowed_actions(c.view, Role.CLERK, TOWN))
    assert township == {K.CASE_NOTIFIED_MISSING, K.CASE_SUPPLEMENTED, K.CASE_FORWARDED, K.CASE_RETURNED,
                        K.CASE_SPECIAL_STARTED}
    c.do(K.CASE_FORWARDED, CLERK)
    county = kinds(lifecycle.allowed_actions(c.view, Role.REVIEWER, COUNTY))
    assert K.CASE_DECIDED in county and K.CASE_FORWARDED not in county and K.CASE_RETURNED in county
    assert K.CASE_CO_OPINION not in county  # 低保 has no co-departments
    assert kinds(lifecycle.allowed_actions(c.view, Role.ADMIN, COUNTY)) == {K.CASE_VOIDED}


def test_allowed_actions_offer_co_opinions_and_decisions_where_they_apply(chains):
    c = at_county(chains, DISABLED_SUBSIDY)
    assert {K.CASE_CO_OPINION, K.CASE_DECIDED} <= kinds(lifecycle.allowed_actions(c.view, Role.REVIEWER, COUNTY))
    m = accepted(chains, MEDICAL)
    assert K.CASE_DECIDED in kinds(lifecycle.allowed_actions(m.view, Role.AGENT, VILLAGE))


def test_allowed_actions_after_decision_and_ratings(chains):
    c = accepted(chains, MEDICAL)
    c.do(K.CASE_DECIDED, AGENT, outcome="approved")
    assert kinds(lifecycle.allowed_actions(c.view, Role.AGENT, VILLAGE)) == {K.CASE_DELIVERED, K.CASE_RATED}
    c.do(K.CASE_RATED, AGENT, level=5)
    c.do(K.CASE_RATED, AGENT, level=4)
    assert kinds(lifecycle.allowed_actions(c.view, Role.AGENT, VILLAGE)) == {K.CASE_DELIVERED}


def test_allowed_actions_do_not_offer_accepting_an_accepted_case_awaiting_supplement(chains):
    c = accepted(chains, DIBAO)
    c.do(K.CASE_NOTIFIED_MISSING, AGENT, missing=[BANK], deadline="2026-04-01")
    offered = kinds(lifecycle.allowed_actions(c.view, Role.AGENT, VILLAGE))
    assert K.CASE_ACCEPTED not in offered
    assert {K.CASE_SUPPLEMENTED, K.CASE_LAPSED, K.CASE_VOIDED} <= offered


def test_rongque_materials_of_the_test_items():
    # guards the fixtures above against a changed catalog
    assert rongque_names(DIBAO) == [BANK]
    assert rongque_names(PENSION) == []
