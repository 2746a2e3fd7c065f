"""咨询 and 投诉 registers (schema.registers)."""

from __future__ import annotations

import pytest

from schema import events as K
from schema.errors import TransitionError
from schema.registers import ComplaintState, apply_complaint, check_consultation, fold_complaint
from tests.helpers import ADMIN, AGENT, CLERK, REVIEWER, TOWN, VILLAGE, Chains


def test_a_consultation_needs_a_topic_or_item_an_answer_and_a_channel():
    assert check_consultation({"item_code": "X", "answer": "带户口簿来办理", "channel": "window"}) == []
    assert check_consultation({"topic": "低保条件", "answer": "", "channel": "phone"}) == ["咨询记录须写明答复内容"]
    assert check_consultation({"answer": "a", "channel": "fax"}) == [
        "咨询记录须写明咨询的事项或问题", "咨询渠道无效"]


def filed(chains, **extra):
    body = {"about": "case", "case_no": "330522101001-20260302-01-0001", "content": "等了很久没有结果",
            "channel": "window", "complainant": {"name": "王秀英"}, "due": "2026-03-16", **extra}
    return chains.build(K.COMPLAINT_FILED, "cp-1", body, AGENT)


def test_a_complaint_is_filed_forwarded_up_and_answered_by_its_owner():
    chains = Chains()
    f = filed(chains)
    v = apply_complaint(None, f)
    assert (v.owner_org, v.state, v.due) == (VILLAGE, ComplaintState.OPEN, "2026-03-16")
    with pytest.raises(TransitionError, match="请填写上转理由"):
        apply_complaint(v, chains.build(K.COMPLAINT_FORWARDED, "cp-1", {}, AGENT, commit=False))
    fwd = chains.build(K.COMPLAINT_FORWARDED, "cp-1", {"opinion": "涉及乡镇审核"}, AGENT)
    apply_complaint(v, fwd)
    assert (v.owner_org, v.path, v.state) == (TOWN, [VILLAGE], ComplaintState.FORWARDED)
    with pytest.raises(TransitionError, match=f"该投诉由{TOWN}办理"):
        apply_complaint(v, chains.build(K.COMPLAINT_ANSWERED, "cp-1", {"result": "x"}, AGENT, commit=False))
    ans = chains.build(K.COMPLAINT_ANSWERED, "cp-1", {"result": "已督促审核，三日内办结"}, CLERK)
    apply_complaint(v, ans)
    assert v.state is ComplaintState.ANSWERED and v.closed_at
    assert fold_complaint([ans, fwd, f]).to_dict() == v.to_dict()  # any order, same complaint


def test_complaint_rules():
    chains = Chains()
    for body, message in [
        ({"about": "x"}, "请选择投诉对象"),
        ({"about": "case", "case_no": ""}, "投诉办件须写明办件编号"),
        ({"about": "staff", "staff": ""}, "投诉工作人员须写明被投诉人"),
        ({"content": " "}, "请填写投诉内容"),
        ({"due": None}, "投诉须有办理期限"),
    ]:
        with pytest.raises(TransitionError, match=message):
            apply_complaint(None, filed(chains, **body))
    with pytest.raises(TransitionError, match="管理员不能办理投诉"):
        apply_complaint(None, chains.build(K.COMPLAINT_FILED, "cp-2", {}, ADMIN))
    v = apply_complaint(None, chains.build(K.COMPLAINT_FILED, "cp-3", {
        "about": "staff", "staff": "李四", "content": "态度差", "channel": "phone", "due": "2026-03-16"}, REVIEWER))
    with pytest.raises(TransitionError, match="县级不能再上转投诉"):
        apply_complaint(v, chains.build(K.COMPLAINT_FORWARDED, "cp-3", {"opinion": "x"}, REVIEWER, commit=False))


def test_a_broken_complaint_event_becomes_a_conflict():
    chains = Chains()
    f = filed(chains)
    bad = chains.build(K.COMPLAINT_ANSWERED, "cp-1", {"result": ["x"]}, AGENT)
    v = fold_complaint([f, bad])
    assert v.state is ComplaintState.OPEN and [c.event_id for c in v.conflicts] == [bad.id]
