"""The home screen's figures (station/services/dashboard.py) on a real village station."""

from __future__ import annotations

import pytest

from schema.org import Role
from station.services import cases, dashboard, queries
from station.session import unlock
from tests.helpers import (
    DIBAO,
    LAND,
    MEDICAL,
    OLD_AGE_CARD,
    PENSION,
    PIN,
    TOWN,
    VILLAGE,
    id_number,
    make_station,
    material_names,
)


def register(s, code, n, received=None, **kw):
    received = material_names(code) if received is None else received
    return cases.register(
        s,
        item_code=code,
        name="王秀英",
        id_number=id_number(seq=f"{n:03d}"),
        phone="13800001234",
        received=received,
        **kw,
    )


@pytest.fixture
def village(tmp_path, now):
    """Monday 2026-03-02 09:00 at a village: six cases in different places (see the asserts)."""
    s = make_station(tmp_path / "village")
    ids = {}
    ids["accepted"] = register(s, PENSION, 1).case_id  # 3 workdays: due Thursday 03-05
    cases.act(s, ids["accepted"], "accept")
    ids["supplement"] = register(s, DIBAO, 2, received=[]).case_id
    cases.act(s, ids["supplement"], "notify-missing")
    ids["received"] = register(s, LAND, 3).case_id
    ids["forwarded"] = register(s, OLD_AGE_CARD, 4).case_id
    cases.act(s, ids["forwarded"], "accept")
    cases.act(s, ids["forwarded"], "forward")
    ids["done"] = register(s, MEDICAL, 5).case_id
    cases.complete_at_once(s, ids["done"])
    ids["yesterday"] = register(s, LAND, 6, received_at="2026-03-01T10:00").case_id  # 补录, Sunday
    s.ids = ids
    yield s
    s.close()


def tiles(s) -> dict[str, dashboard.Tile]:
    return {t.key: t for t in dashboard.tiles(s)}


def listed(s, tile: dashboard.Tile) -> set[str]:
    return {r.case_id for r in queries.list_cases(s, **tile.filters, limit=1000)}


def test_tiles_count_what_they_open(village):
    ids = village.ids
    t = tiles(village)
    assert [k for k in t] == ["today", "supplement", "pending", "due_soon", "overdue"]
    assert t["pending"].label == "待受理/转报"
    expected = {
        "today": {ids["accepted"], ids["supplement"], ids["received"], ids["forwarded"], ids["done"]},
        "supplement": {ids["supplement"]},
        "pending": {
            ids["accepted"],
            ids["received"],
            ids["yesterday"],
        },  # the forwarded one is the township's
        "due_soon": set(),  # due Thursday; two working days from Monday is Wednesday
        "overdue": set(),
    }
    for key, want in expected.items():
        assert listed(village, t[key]) == want, key
        assert t[key].count == len(want), key
    assert t["today"].open_args()["title"] == "今日收件"


def test_due_soon_and_overdue_follow_the_clock(village, now):
    accepted = village.ids["accepted"]
    now("2026-03-03T09:00:00+08:00")  # Tuesday: Thursday is within two working days
    t = tiles(village)
    assert (t["due_soon"].count, t["overdue"].count) == (1, 0)
    assert listed(village, t["due_soon"]) == {accepted}
    assert t["today"].count == 0
    now("2026-03-05T17:00:00+08:00")  # due today: still due soon, not overdue
    t = tiles(village)
    assert (t["due_soon"].count, t["overdue"].count) == (1, 0)
    now("2026-03-06T09:00:00+08:00")  # Friday
    t = tiles(village)
    assert (t["due_soon"].count, t["overdue"].count) == (0, 1)
    assert listed(village, t["overdue"]) == {accepted}


def test_due_soon_counts_working_days_not_calendar_days(village, now):
    # Friday 03-06 + 2 working days = Tuesday 03-10: a case due Monday is "soon" on Friday.
    s = village
    cid = register(s, PENSION, 7).case_id
    now("2026-03-04T10:00:00+08:00")  # Wednesday: accepted → due Monday 03-09
    cases.act(s, cid, "accept")
    row = s.db.execute_sql("SELECT due_date FROM case_view WHERE case_id = ?", (cid,)).fetchone()
    assert row[0] == "2026-03-09"
    now("2026-03-06T09:00:00+08:00")
    assert cid in listed(s, tiles(s)["due_soon"])


def test_pending_is_per_org_and_labelled_per_role(tmp_path, now):
    with make_station(tmp_path / "town", org=TOWN, role=Role.CLERK, login="clerk1") as s:
        assert tiles(s)["pending"].label == "待审核/转报"
        assert tiles(s)["pending"].filters["holder"] == TOWN
    assert dashboard.PENDING_LABELS[Role.REVIEWER] == "待审批"


def test_recent_cases_newest_first(village):
    recent = dashboard.recent_cases(village)
    assert len(recent) == 6
    assert recent[-1].case_id == village.ids["yesterday"]
    assert [r.registered_at for r in recent] == sorted((r.registered_at for r in recent), reverse=True)
    assert len(dashboard.recent_cases(village, limit=2)) == 2


def test_sync_summary_counts_this_stations_unsynced_events(village):
    own = village.db.execute_sql(
        "SELECT count(*) FROM event WHERE station = ?", (village.config.station_id,)
    ).fetchone()[0]
    summary = dashboard.sync_summary(village)
    assert isinstance(summary, dashboard.SyncSummary)
    assert (summary.last_sync, summary.pending) == (None, own)  # never synced: everything waits
    village.db.execute_sql("UPDATE event SET synced = 1 WHERE seq <= 3")
    assert dashboard.sync_summary(village).pending == own - 3


def test_home_gathers_everything(village):
    home = dashboard.home(village)
    assert [t.key for t in home.tiles] == ["today", "supplement", "pending", "due_soon", "overdue"]
    assert len(home.recent) == 6
    assert home.today.isoformat() == "2026-03-02"
    assert home.sync.pending > 0


def test_count_sql_refuses_filters_it_does_not_know():
    with pytest.raises(TypeError):
        dashboard.count_sql(search="王")


@pytest.mark.parametrize("key", ["today", "supplement", "pending", "due_soon", "overdue"])
def test_counts_read_indexes(village, key):
    # Without statistics, as on a new station (with them, SQLite scans a table this small; on the
    # 100,000-case demo county every count is an index search, ~1 ms for the whole home screen).
    tile = tiles(village)[key]
    sql, args = dashboard.count_sql(**tile.filters)
    plan = [r[-1] for r in village.db.execute_sql("EXPLAIN QUERY PLAN " + sql, args).fetchall()]
    assert any("USING" in p and "INDEX" in p for p in plan), plan
    assert not any(p.startswith("SCAN") and "INDEX" not in p for p in plan), plan


def test_unsynced_count_reads_its_partial_index(village):
    from station.replication.push import UNSYNCED_SQL

    rows = village.db.execute_sql("EXPLAIN QUERY PLAN " + UNSYNCED_SQL, (village.config.station_id,))
    plan = [r[-1] for r in rows.fetchall()]
    assert any("event_unsynced" in p for p in plan), plan


def test_list_cases_intake_and_due_from_filters(village, now):
    # The two list_cases filters added for the home tiles.
    ids = village.ids
    assert {r.case_id for r in queries.list_cases(village, intake=VILLAGE, limit=100)} == set(ids.values())
    assert queries.list_cases(village, intake=TOWN) == []
    # the forwarded case (5 working days, due 03-09) runs its clock at the township
    assert {r.case_id for r in queries.list_cases(village, due_from="2026-03-05")} == {
        ids["accepted"],
        ids["forwarded"],
    }
    assert {r.case_id for r in queries.list_cases(village, due_from="2026-03-06")} == {ids["forwarded"]}
    assert queries.list_cases(village, due_from="2026-03-10") == []
    assert queries.list_cases(village, due_from="2026-03-05", holder=TOWN)[0].case_id == ids["forwarded"]
    # due_from keeps only cases whose clock runs: the done case has a due date too
    assert ids["done"] not in {r.case_id for r in queries.list_cases(village, due_from="2000-01-01")}


def test_a_reopened_station_gets_the_dashboard_indexes(tmp_path, now):
    make_station(tmp_path / "v").close()
    with unlock(tmp_path / "v", "agent1", PIN) as s:
        names = {r[0] for r in s.db.execute_sql("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert {"case_holder_due", "event_unsynced"} <= names
