"""station.services.intake: the 办事指南, the decision preview and register-and-decide in one go."""

from __future__ import annotations

from datetime import date

import pytest

from schema.case import MaterialStatus, State
from schema.catalog import default_catalog
from schema.errors import TransitionError, ValidationError
from schema.org import Role
from station.services import intake, queries
from station.services.intake import Decision
from tests.helpers import (
    DIBAO,
    ID_CARD,
    LAND,
    MEDICAL,
    PENSION,
    TOWN,
    VILLAGE,
    case_count,
    id_number,
    make_station,
    material_names,
    rongque_names,
)

R, M, Q = MaterialStatus.RECEIVED.value, MaterialStatus.MISSING.value, MaterialStatus.RONGQUE.value


@pytest.fixture
def station(tmp_path, now):
    s = make_station(tmp_path / "village")
    yield s
    s.close()


def item(code):
    return default_catalog().get(code)


def all_received(code):
    return dict.fromkeys(material_names(code), R)


def submit(s, code=PENSION, decision=Decision.ACCEPT, materials=None, **kw):
    args = {"name": "王秀英", "id_number": id_number(), "phone": "13800001234", "reason": "", **kw}
    return intake.submit(
        s,
        item_code=code,
        materials=all_received(code) if materials is None else materials,
        decision=decision,
        **args,
    )


# -- 办事指南 ------------------------------------------------------------------------------------------


def test_guide_lists_every_material_with_its_flags_and_the_limits():
    lines = intake.guide_lines(item(DIBAO), VILLAGE)
    text = "\n".join(lines)
    for m in item(DIBAO).materials:
        assert m.name in text
    assert ".本人银行账户（存折或银行卡）复印件（复印件1份，必需，可容缺）" in text
    assert "承诺时限：30个工作日    法定时限：45个工作日" in text
    assert "决定：县级" in text and "收费：免费" in text and "村级可代办受理" in text


def test_an_advice_only_item_says_so_at_a_village_but_not_at_a_township():
    card = item(ID_CARD)
    assert intake.advice_only_here(card, VILLAGE)
    assert not intake.advice_only_here(card, TOWN)
    assert "村级仅可咨询，不能收件" in "\n".join(intake.guide_lines(card, VILLAGE))
    assert "收费：¥20.00" in "\n".join(intake.guide_lines(card, VILLAGE))


# -- the preview ---------------------------------------------------------------------------------------


def test_promised_date_counts_working_days_from_the_day_after(station, now):
    # T0 is Monday 2026-03-02; PENSION promises 3 working days → Thursday.
    assert intake.promised_date(station, item(PENSION)) == intake.promised_date(
        station, item(PENSION), date(2026, 3, 2)
    )
    d = intake.promised_date(station, item(PENSION))
    assert (d.date, d.estimated) == (date(2026, 3, 5), False)
    # Beyond the published calendar the date is an estimate (预计).
    later = intake.promised_date(station, item(PENSION), date(2030, 3, 4))
    assert later.estimated


def test_preview_with_everything_received_allows_accept_but_not_notify(station):
    p = intake.preview(station, item(PENSION), all_received(PENSION))
    assert p.allowed(Decision.ACCEPT) and p.allowed(Decision.REFUSE)
    assert not p.allowed(Decision.NOTIFY) and not p.allowed(Decision.IMMEDIATE)
    assert p.promised_label == "2026-03-05"
    assert p.supplement_deadline == date(2026, 4, 1)  # 30 自然日


def test_preview_lists_all_missing_required_materials_and_blocks_accept(station):
    names = material_names(PENSION)
    p = intake.preview(station, item(PENSION), {names[0]: R, names[1]: M})  # third not ticked = missing
    assert p.missing_required == names[1:]
    assert not p.allowed(Decision.ACCEPT)
    assert names[1] in p.blockers[Decision.ACCEPT] and names[2] in p.blockers[Decision.ACCEPT]
    assert p.allowed(Decision.NOTIFY)


def test_rongque_counts_only_where_the_catalog_allows_it(station):
    bank = rongque_names(DIBAO)[0]
    other = next(m for m in material_names(DIBAO) if m != bank)
    mats = all_received(DIBAO) | {bank: Q}
    p = intake.preview(station, item(DIBAO), mats)
    assert p.rongque == [bank] and p.allowed(Decision.ACCEPT)
    p = intake.preview(station, item(DIBAO), mats | {other: Q})
    assert p.missing_required == [other] and not p.allowed(Decision.ACCEPT)


def test_immediate_only_for_immediate_items_with_every_material(station):
    assert intake.preview(station, item(MEDICAL), all_received(MEDICAL)).allowed(Decision.IMMEDIATE)
    first = material_names(MEDICAL)[0]
    assert not intake.preview(station, item(MEDICAL), {first: M}).allowed(Decision.IMMEDIATE)
    assert (
        "承诺件" in intake.preview(station, item(PENSION), all_received(PENSION)).blockers[Decision.IMMEDIATE]
    )


def test_an_advice_only_item_at_a_village_can_only_be_recorded_as_a_consultation(station):
    p = intake.preview(station, item(ID_CARD), all_received(ID_CARD))
    assert p.advice_only
    assert [d for d in Decision if p.allowed(d)] == [Decision.CONSULT]
    assert "登记为咨询" in p.blockers[Decision.ACCEPT]
    assert submit(station, ID_CARD, decision=Decision.CONSULT) is None
    assert case_count(station) == 0
    row = station.db.execute_sql("SELECT item_code, channel, answer FROM consult").fetchone()
    assert row == (ID_CARD, "window", "告知到县级窗口办理")


def test_a_case_that_can_be_registered_is_not_recorded_as_a_consultation(station):
    assert not intake.preview(station, item(PENSION), all_received(PENSION)).allowed(Decision.CONSULT)


def test_rongque_at_intake_needs_a_written_promise(station):
    bank = rongque_names(DIBAO)[0]
    p = intake.preview(station, item(DIBAO), all_received(DIBAO) | {bank: Q})
    assert p.allowed(Decision.ACCEPT) and p.rongque == [bank] and p.rongque_due.isoformat() == "2026-03-16"
    with pytest.raises(TransitionError, match="书面承诺"):
        intake.submit(station, item_code=DIBAO, name="王秀英", id_number=id_number(), phone="",
                      materials=all_received(DIBAO) | {bank: Q}, decision=Decision.ACCEPT)
    assert case_count(station) == 0  # nothing half-registered


# -- submit ------------------------------------------------------------------------------------------------


def test_submit_accept_registers_and_accepts_with_rongque(station):
    bank = rongque_names(DIBAO)[0]
    view = submit(station, DIBAO, materials=all_received(DIBAO) | {bank: Q}, promise="十个工作日内补交")
    assert view.state is State.IN_PROGRESS
    assert view.rongque_promise["due"] == "2026-03-16" and view.rongque_promise["promise"] == "十个工作日内补交"
    assert view.materials[bank] == Q
    assert view.case_no == f"{VILLAGE}-20260302-01-0001"
    row = queries.list_cases(station)[0]
    # The preview promised the date the case now carries (30 working days, 清明 4–6 April off).
    assert row.case_id == view.case_id and row.due_date == "2026-04-14"
    assert intake.promised_date(station, item(DIBAO)).date.isoformat() == row.due_date


def test_submit_notify_lists_every_missing_material_with_the_deadline(station):
    names = material_names(PENSION)
    view = submit(station, decision=Decision.NOTIFY, materials={names[0]: R})
    assert view.state is State.AWAITING_SUPPLEMENT
    assert view.missing_notice == names[1:]
    assert view.supplement_deadline == "2026-04-01"


def test_submit_refuse_needs_a_reason(station):
    with pytest.raises(ValidationError) as e:
        submit(station, decision=Decision.REFUSE, reason="  ")
    assert e.value.field == "reason"
    assert case_count(station) == 0
    view = submit(station, decision=Decision.REFUSE, reason="不属于本事项受理范围")
    assert view.state is State.REFUSED


def test_submit_immediate_completes_on_the_spot(station):
    view = submit(station, MEDICAL, decision=Decision.IMMEDIATE)
    assert view.state is State.DONE and view.outcome == "approved"


def test_a_refused_decision_leaves_no_half_registered_case(station):
    names = material_names(PENSION)
    with pytest.raises(TransitionError):
        submit(station, materials={names[0]: R})  # 受理 with missing materials
    assert case_count(station) == 0
    # The daily counter was rolled back with it: the next case gets number 0001.
    assert submit(station).case_no.endswith("-0001")


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("name", {"name": "王2"}),
        ("id_number", {"id_number": "330522195001010010"}),
        ("phone", {"phone": "1234"}),
    ],
)
def test_applicant_errors_name_their_field(station, field, kwargs):
    with pytest.raises(ValidationError) as e:
        submit(station, **kwargs)
    assert e.value.field == field
    assert case_count(station) == 0


def test_phone_is_optional(station):
    assert submit(station, phone="").applicant["phone"] == ""


def test_a_township_may_register_an_item_villages_only_advise_on(tmp_path, now):
    with make_station(tmp_path / "town", org=TOWN, role=Role.CLERK, login="clerk1") as s:
        view = submit(s, ID_CARD)
        assert view.state is State.IN_PROGRESS


def test_a_village_cannot_submit_an_advice_only_item(station):
    with pytest.raises(ValidationError, match="村级仅可咨询"):
        submit(station, ID_CARD)


def test_land_item_promise_at_township(tmp_path, now):
    # 5 working days from Monday 2026-03-02 → Monday 2026-03-09.
    with make_station(tmp_path / "town", org=TOWN, role=Role.CLERK, login="clerk1") as s:
        assert intake.promised_date(s, item(LAND)).date == date(2026, 3, 9)
