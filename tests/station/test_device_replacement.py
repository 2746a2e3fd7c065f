"""Device replacement (issue 12): a stolen or burnt village PC, and the new PC rebuilt from the county.

The new PC is a new station of the same org, enrolled with a fresh one-time code; its first sync
pulls every event of that org the county holds — the old PC's chain included — and rebuilds the
cases from them. Only what the old PC never synced is lost (docs/village-pc.md).
"""

from __future__ import annotations

from station.replication.runner import sync_now
from station.services import cases
from station.services.verify import verify_station
from tests.helpers import PENSION, VILLAGE, id_number, material_names
from tests.station.sync_kit import enrolled_station, ok, register_case


def rows(s, station: str) -> list[tuple]:
    return s.db.execute_sql(
        "SELECT id, seq, hash FROM event WHERE station = ? ORDER BY seq", (station,)).fetchall()


def cases_of(s) -> dict[str, tuple]:
    return {r[0]: r[1:] for r in s.db.execute_sql(
        "SELECT case_id, case_no, state, holder_org, due_date FROM case_view").fetchall()}


def test_a_new_pc_holds_every_synced_event_of_the_old_one(tmp_path, county, now):
    old = enrolled_station(tmp_path / "old", county, org=VILLAGE)
    for n in range(6):
        register_case(old, n)
    first = cases.register(old, item_code=PENSION, name="李秀兰", id_number=id_number(seq="318"), received=[])
    cases.act(old, first.case_no, "notify-missing")
    ok(sync_now(old))
    synced, synced_cases = rows(old, old.config.station_id), cases_of(old)
    lost = register_case(old, 99)  # registered after the last sync: lost with the PC
    old_id = old.config.station_id
    old.close()

    county.revoke(old_id, "电脑损坏")  # the county stops the old PC's key at once
    new = enrolled_station(tmp_path / "new", county, org=VILLAGE)  # same org, same station number
    ok(sync_now(new))
    assert rows(new, old_id) == synced  # every synced event of the old PC, exactly once
    assert cases_of(new) == synced_cases  # the cases rebuilt from them, state and due dates alike
    assert lost.case_id not in cases_of(new)
    assert verify_station(new).ok

    # The agent carries on at the new PC: the old cases can be worked on, new numbers do not clash.
    view = cases.act(new, first.case_no, "supplement", {"materials": material_names(PENSION)})
    assert view.case_id == first.case_id
    fresh = register_case(new, 7)
    assert fresh.case_no not in {c[0] for c in synced_cases.values()}
    ok(sync_now(new))
    assert county.events_of(new.config.station_id)[-1][0] == new.store.head()[0]
    new.close()
