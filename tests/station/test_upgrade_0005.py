"""A station database from before migration 0005 upgrades in place (authority, bounded clocks).

Before it, a pulled event could carry any HLC (issue 8, finding 1: 2^63−1 made the next write
overflow) and the fold trusted what each event said about its org. The upgrade moves foreign
events beyond the clock bound to ``quarantine``, recomputes the clock, refolds what they and
any org claim touched, and fills the user table's new columns from the log.
"""

from __future__ import annotations

from schema import events as K
from schema import hlc as HLC
from schema.events import seal
from schema.org import Role
from station import clock
from station.services import cases
from station.services.verify import verify_station
from station.session import unlock
from station.store.store import body_json
from tests.helpers import COUNTY, PIN, TOWN, VILLAGE, know, make_station, receive
from tests.station.sync_kit import register_case

COLUMNS = "id, station, seq, prev, at, hlc, actor, role, org, kind, subject, body, hash"


def _raw_insert(s, ev):
    """Store an event as the code before 0005 did: as it came, the clock moved past it."""
    s.db.execute_sql(
        f"INSERT INTO event ({COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (ev.id, ev.station, ev.seq, ev.prev, ev.at, ev.hlc, ev.actor, ev.role, ev.org, ev.kind, ev.subject,
         body_json(ev.body), ev.hash),
    )


def _as_before_0005(s):
    for sql in (
        "DROP TABLE quarantine",
        "ALTER TABLE user DROP COLUMN station",
        "ALTER TABLE user DROP COLUMN added_seq",
        "ALTER TABLE user DROP COLUMN disabled_seq",
        "DELETE FROM schema_migration WHERE name = '0005_authority'",
        "DELETE FROM meta WHERE key = 'repair.authority'",
    ):
        s.db.execute_sql(sql)


def test_an_old_station_sets_absurd_clocks_aside_and_refolds_what_claims_touched(tmp_path, now):
    with make_station(tmp_path / "v") as v:
        view = register_case(v)
        cases.act(v, view.case_no, "forward", {"opinion": "请审核"})
        events = list(v.store.events())
    root = tmp_path / "t"
    with make_station(root, org=TOWN, role=Role.CLERK, login="clerk1", name="城关镇") as t:
        receive(t, events)
        know(t, ("evil-pc", VILLAGE))
        last = events[-1]
        overflow = seal(**{**last.unsigned(), "id": "evil-1", "station": "evil-pc", "seq": 1, "prev": "",
                           "hlc": 2**63 - 1, "kind": K.USER_ADDED, "subject": "u-evil",
                           "body": {"user_id": "u-evil", "login": "e", "name": "某", "role": "agent",
                                    "org": VILLAGE}})
        decision = seal(**{**last.unsigned(), "id": "evil-2", "station": "evil-pc", "seq": 2,
                           "prev": overflow.hash, "hlc": last.hlc + 5, "kind": K.CASE_DECIDED, "org": COUNTY,
                           "role": "reviewer", "body": {"outcome": "approved", "opinion": "准予"}})
        with t.store.writing():
            _raw_insert(t, overflow)
            _raw_insert(t, decision)
            t.db.execute_sql(
                "INSERT INTO user (user_id, login, name, role, org, disabled, added_at, added_by) "
                "VALUES ('u-evil', 'e', '某', 'agent', ?, 0, ?, 'x')", (VILLAGE, last.at))
            # as the old fold saw it: decided by "the county"
            t.db.execute_sql("UPDATE case_view SET state = 'done' WHERE case_id = ?", (view.case_id,))
            t.store._hlc = 2**63 - 1
        _as_before_0005(t)
    t = unlock(root, "clerk1", PIN)  # migrates, then finishes the upgrade with its own id and org
    try:
        assert not t.store.has_event("evil-1")
        assert t.db.execute_sql("SELECT source FROM quarantine WHERE id = 'evil-1'").fetchone() == ("upgrade",)
        assert t.db.execute_sql("SELECT count(*) FROM user WHERE user_id = 'u-evil'").fetchone() == (0,)
        assert int(t.store.meta("hlc")) < HLC.ceiling(clock.ms(clock.now()))
        got = cases.get(t, view.case_id)
        assert got.state.value == "transferred" and "以单位 330522000000 的名义办理" in got.conflicts[-1].reason
        users = t.db.execute_sql("SELECT station, added_seq FROM user WHERE login = 'agent1'").fetchall()
        assert users == [(events[0].station, 2)]
        cases.act(t, view.case_no, "receive")  # writing works again
        cases.act(t, view.case_no, "forward", {"opinion": "同意上报"})
        assert verify_station(t).ok, verify_station(t).problems
        assert t.store.meta("repair.authority") is None
    finally:
        t.close()
