"""station.services.inbox: what waits for this org, most urgent first, read from an index."""

from __future__ import annotations

import pytest

from schema.org import Role
from station.services import cases, inbox
from tests.helpers import (
    COUNTY,
    DIBAO,
    LAND,
    OLD_AGE_CARD,
    PENSION,
    TOWN,
    copy_events,
    id_number,
    make_station,
    material_names,
)


@pytest.fixture
def village(tmp_path, now):
    s = make_station(tmp_path / "village")
    yield s
    s.close()


@pytest.fixture
def town(tmp_path, now):
    s = make_station(tmp_path / "town", org=TOWN, role=Role.CLERK, login="clerk1", name="城关镇便民服务中心")
    yield s
    s.close()


def new_case(s, code=PENSION, name="王秀英", seq="001", forward=True):
    view = cases.register(
        s, item_code=code, name=name, id_number=id_number(seq=seq), phone="", received=material_names(code)
    )
    cases.act(s, view.case_id, "accept")
    if forward:
        cases.act(s, view.case_id, "forward", {"opinion": "材料齐全，请审核"})
    return view.case_id


def sync(src, dst):
    return copy_events(src, dst)


def test_township_inbox_holds_forwarded_village_cases_most_urgent_first(village, town, now):
    now("2026-03-02T09:00:00+08:00")
    dibao = new_case(village, DIBAO, "李四", "002")  # oldest, but due in 30 working days
    now("2026-03-02T10:00:00+08:00")
    card = new_case(village, OLD_AGE_CARD, "张三", "003")  # due in 5 working days
    now("2026-03-02T11:00:00+08:00")
    pension_late = new_case(village, PENSION, "赵六", "005")  # due in 3 working days, registered later
    now("2026-03-02T10:30:00+08:00")  # (a village clock may step back; the order is by registration)
    pension_early = new_case(village, PENSION, "孙七", "006")
    kept = new_case(village, PENSION, "周八", "007", forward=False)  # not forwarded: stays in the village
    sync(village, town)

    rows = inbox.inbox(town, limit=10)
    assert [r.case_id for r in rows] == [pension_early, pension_late, card, dibao]
    assert kept not in {r.case_id for r in rows}
    assert inbox.inbox_count(town) == 4
    assert all(r.holder_org == TOWN for r in rows)
    assert rows[0].id_masked.startswith("3305**") and "19500101" not in rows[0].id_masked

    # Paging: limit/offset give the same order in pieces.
    assert [r.case_id for r in inbox.inbox(town, limit=2, offset=2)] == [card, dibao]

    # The village's own inbox holds nothing: nothing was sent back down to it.
    assert inbox.inbox(village) == []


def test_a_case_leaves_the_inbox_when_decided_or_forwarded_and_a_return_lands_in_the_village(village, town):
    land = new_case(village, LAND, "王五", "004")  # decided at the township
    dibao = new_case(village, DIBAO, "李四", "002")
    sync(village, town)
    assert {(r.case_id, r.state.value) for r in inbox.inbox(town)} == {(land, "transferred"), (dibao, "transferred")}
    cases.act(town, land, "receive")  # 接件: still waiting for the township, now taken in
    assert {r.case_id for r in inbox.inbox(town)} == {land, dibao}

    cases.act(town, land, "decide", {"outcome": "approved", "opinion": "同意"})
    cases.act(town, dibao, "return", {"reason": "户口簿复印件不清晰，请重新提交"})
    assert inbox.inbox(town) == []

    sync(town, village)
    rows = inbox.inbox(village)
    assert [(r.case_id, r.state.value) for r in rows] == [(dibao, "returned")]


def test_a_township_own_registration_is_not_in_its_inbox(town):
    own = new_case(town, PENSION, forward=False)
    assert inbox.inbox(town) == []
    assert inbox.inbox_count(town) == 0
    assert own


def test_county_inbox_holds_cases_forwarded_to_the_county(village, town, tmp_path):
    dibao = new_case(village, DIBAO, "李四", "002")
    sync(village, town)
    cases.act(town, dibao, "receive")
    cases.act(town, dibao, "forward", {"opinion": "审核通过，报县民政局"})
    with make_station(
        tmp_path / "county", org=COUNTY, role=Role.REVIEWER, login="shenpi", name="县民政局"
    ) as county:
        sync(village, county)
        sync(town, county)
        assert [r.case_id for r in inbox.inbox(county)] == [dibao]
    assert inbox.inbox(town) == []


def test_the_inbox_query_reads_its_partial_index(town):
    org = town.actor.org
    plan = " ".join(
        str(r)
        for r in town.db.execute_sql("EXPLAIN QUERY PLAN " + inbox.INBOX_SQL, (org, org, 50, 0)).fetchall()
    )
    assert "case_inbox" in plan
    assert "TEMP B-TREE" not in plan  # no sort of the whole result: the index gives the order
