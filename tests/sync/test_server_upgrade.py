"""A county database of schema 1 upgrades in place (sync.server.upgrade), on SQLite and PostgreSQL.

Schema 1 stored any HLC up to 2^63−1 (issue 8, finding 1) and kept the staff directory with
"the last user.added wins". The upgrade quarantines stored clocks beyond the bound (kept,
never served, not counted in any head HLC, one alarm) and rebuilds the staff directory.
"""

from __future__ import annotations

import json

from schema import events as K
from schema import hlc as HLC
from schema.events import seal
from sync.server import audit, county_chain, pull, registry, upgrade
from sync.server.config import now_ms
from sync.server.db import FLAG_QUARANTINED, SCHEMA_VERSION, event_row, insert_events
from sync.server.ingest import ingest_segment
from sync.server.keystore import load_county
from tests.helpers import COUNTY, VILLAGE, VILLAGE2


def _as_schema_1(cdb, station, events):
    """What a county of schema 1 held: these events stored as they came, the old staff table."""
    with cdb.write():
        insert_events(cdb, [event_row(e, scope="", township="", received_at=0) for e in events])
        last = events[-1]
        cdb.m.Station.update(head_seq=last.seq, head_hash=last.hash, head_hlc=max(e.hlc for e in events)).where(
            cdb.m.Station.id == station
        ).execute()
        cdb.database.execute_sql('ALTER TABLE "staff" DROP COLUMN "added_seq"')
        cdb.database.execute_sql('ALTER TABLE "staff" DROP COLUMN "disabled_seq"')
        cdb.set_meta("schema_version", "1")


def test_an_old_county_quarantines_clocks_beyond_the_bound_and_rebuilds_its_staff(county, stations):
    v, v2 = stations(VILLAGE, "village", role="admin"), stations(VILLAGE2, "village")
    v.add_user("a1", "agent")  # the admin adds the agent who registers cases (an admin never does)
    v.register("c1", role="agent", actor="a1")
    assert ingest_segment(county.cdb, county.county, v.segment(county=COUNTY)).status == "stored"
    assert ingest_segment(county.cdb, county.county, v2.segment(county=COUNTY)).status == "stored"
    head = v.events[-1]
    evil_user = seal(
        **{**head.unsigned(), "id": "evil-1", "seq": head.seq + 1, "prev": head.hash, "hlc": 2**63 - 1,
           "kind": K.USER_ADDED, "subject": "u-evil",
           "body": {"user_id": "u-evil", "login": "e", "name": "某", "role": "agent", "org": VILLAGE}}
    )
    steal = seal(  # schema 1: the last user.added of an id won, whoever sent it
        **{**evil_user.unsigned(), "id": "evil-2", "seq": evil_user.seq + 1, "prev": evil_user.hash,
           "hlc": head.hlc + 1, "subject": v2.who.actor,
           "body": {"user_id": v2.who.actor, "login": "x", "name": "冒名", "role": "admin", "org": VILLAGE}}
    )
    _as_schema_1(county.cdb, v.id, [evil_user, steal])
    cdb = county.cdb
    load_county(cdb)  # what every command and `serve` do first
    assert cdb.get_meta("schema_version") == str(SCHEMA_VERSION)
    assert upgrade.upgrade(cdb, county.county.station) is False  # once
    E = cdb.m.Event
    flags = {r.id: r.flags for r in E.select().where(E.station == v.id)}
    assert flags["evil-1"] & FLAG_QUARANTINED and not flags["evil-2"] & FLAG_QUARANTINED
    row = cdb.m.Station.get_by_id(v.id)
    assert row.head_hlc == max(e.hlc for e in [*v.events, steal]) and row.head_seq == steal.seq
    assert [a["detail"]["quarantined"] for a in audit.alarms(cdb, station=v.id) if a["kind"] == "clock"] == [1]
    # never served to a pull
    page, *_ = pull.make_page(cdb, county.county, cdb.m.Station.get_by_id(v2.id), cursor=0, limit=500,
                              max_bytes=10**9)
    served = [e["id"] for e in json.loads(page["h"])["events"]]
    assert "evil-2" in served and "evil-1" not in served
    # the staff directory by the new rules: a user belongs to the first station that added it
    St = cdb.m.Staff
    staff = {s.user_id: (s.station, s.role, s.added_seq) for s in St.select()}
    assert staff[v2.who.actor] == (v2.id, "agent", 2) and "u-evil" not in staff
    # the county's own chain works again: a revocation gets a sane HLC
    registry.revoke(cdb, county.county, v.id, "时钟攻击")
    with cdb.write():
        ev = county_chain.append(cdb, county.county, K.CALENDAR_SET, "2027-01-01", {"day": "2027-01-01"})
    assert HLC.unpack(ev.hlc)[0] <= now_ms() + HLC.DRIFT_MS
