"""The dates a case is watched by (schema.deadlines): promised, legal and stage dates, pauses."""

from __future__ import annotations

from schema import deadlines
from schema import events as K
from schema.workdays import WorkCalendar
from tests.helpers import AGENT, CLERK, DIBAO, REVIEWER, CaseSim, Chains, material_names

CAL = WorkCalendar({})
BANK = "本人银行账户（存折或银行卡）复印件"  # 2026-03-02 is a Monday with no holiday for weeks


def accepted_dibao():
    c = CaseSim(Chains(), DIBAO)
    c.do(K.CASE_ACCEPTED, AGENT, at="2026-03-02T10:00:00+08:00")
    return c


def test_promised_legal_and_stage_dates():
    c = accepted_dibao()  # 低保: 30 工作日, 法定 45 工作日, village stage 2 工作日
    w = deadlines.watch(c.view, CAL)
    assert w.due.date.isoformat() == "2026-04-14"  # 30 working days after 03-02 (清明 04-06 is rest)
    assert w.legal.date.isoformat() == "2026-05-08"  # 45 (劳动节 05-01..05-05 is rest)
    assert w.stage.date.isoformat() == "2026-03-04"


def test_a_pause_with_an_end_date_resumes_on_its_own():
    c = accepted_dibao()
    c.do(K.CASE_FORWARDED, AGENT, at="2026-03-03T10:00:00+08:00")
    c.do(K.CASE_RECEIVED, CLERK, at="2026-03-03T11:00:00+08:00")
    c.do(K.CASE_FORWARDED, CLERK, at="2026-03-03T12:00:00+08:00")
    c.do(K.CASE_RECEIVED, REVIEWER, at="2026-03-03T13:00:00+08:00")
    before = deadlines.promised(c.view, CAL).date
    c.do(K.CASE_SPECIAL_STARTED, REVIEWER, at="2026-03-04T09:00:00+08:00", procedure="verification",
         reason="入户", days=3, until="2026-03-09")
    w = deadlines.watch(c.view, CAL)
    assert w.special_until == "2026-03-09"
    assert w.due is not None and w.due.date > before  # nobody ended it: counted as ending on 03-09
    c.do(K.CASE_SPECIAL_ENDED, REVIEWER, at="2026-03-20T09:00:00+08:00", result="核查属实")
    assert deadlines.promised(c.view, CAL).date == w.due.date  # ended late: the overrun still counts


def test_supplement_pause_has_no_date_and_extensions_add_days():
    c = accepted_dibao()
    c.do(K.CASE_NOTIFIED_MISSING, AGENT, missing=["户口簿"], deadline="2026-04-01")
    assert deadlines.promised(c.view, CAL) is None  # 暂停计时
    c.do(K.CASE_SUPPLEMENTED, AGENT, materials=["户口簿"])
    base = deadlines.promised(c.view, CAL).date
    c.do(K.CASE_SPECIAL_STARTED, AGENT, procedure="extension", reason="复杂", days=5)
    assert (deadlines.promised(c.view, CAL).date - base).days >= 5


def test_rongque_due_is_watched_while_outstanding():
    c = CaseSim(Chains(), DIBAO, received=[m for m in material_names(DIBAO) if m != BANK])
    c.do(K.CASE_ACCEPTED, AGENT, rongque=[BANK], promise="十日内补交", rongque_due="2026-03-16")
    assert deadlines.watch(c.view, CAL).rongque_due == "2026-03-16"
    c.do(K.CASE_SUPPLEMENTED, AGENT, materials=[BANK])
    assert deadlines.watch(c.view, CAL).rongque_due is None


