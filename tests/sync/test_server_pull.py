"""Pull as plain functions, on SQLite and PostgreSQL (sync.server.pull)."""

from __future__ import annotations

import json

import pytest

from schema import canonical
from schema import events as K
from sync import api, envelope
from sync.errors import ProtocolError
from sync.messages import open_doc, sign_doc
from sync.server import pull, registry, sealed
from sync.server.config import Settings
from sync.server.ingest import ingest_segments
from tests.helpers import COUNTY, TOWN, TOWN2, VILLAGE, VILLAGE2, VILLAGE_T2


@pytest.fixture
def world(county, stations):
    """Two townships, three villages and a county office station, each with a few events pushed."""
    st = {
        "v1": stations(VILLAGE, "village", role="admin"),  # its first user is the local admin
        "v2": stations(VILLAGE2, "village"),
        "v3": stations(VILLAGE_T2, "village"),
        "t1": stations(TOWN, "township"),
        "t2": stations(TOWN2, "township"),
        "c": stations(COUNTY, "county"),
    }
    cases = {}
    st["v1"].add_user("u1", "agent")  # the admin adds the agent who registers v1's cases
    for name in ("v1", "v2", "v3"):
        claims = {"role": "agent", "actor": "u1"} if name == "v1" else {}
        for i in range(3):
            cases[f"{name}-{i}"] = st[name].register(f"{name}-case-{i}", **claims).subject
    st["t1"].record(K.CASE_ACCEPTED, cases["v1-0"], {})
    st["t2"].record(K.CASE_ACCEPTED, cases["v3-0"], {})
    st["c"].record(K.CASE_DECIDED, cases["v2-1"], {"outcome": "approved"})
    segs = [s.segment(county=COUNTY) for s in st.values() if s.events]
    assert all(r.ok for r in ingest_segments(county.cdb, county.county, segs))
    return st


def page_of(county, row, cursor=0, limit=500, max_bytes=10**9):
    wire, to, more, n = pull.make_page(
        county.cdb, county.county, row, cursor=cursor, limit=limit, max_bytes=max_bytes
    )
    doc = open_doc(wire, county.county.public.sign, "page")
    assert (doc["to"], doc["more"], len(doc["events"])) == (to, more, n)
    # the assembled text is exactly the canonical encoding of what it says
    assert canonical.encode(json.loads(wire["h"])).decode() == wire["h"]
    return doc


def open_pull(county, blob):
    """A sealed pull request as the HTTP handler opens it: (the sender's row, the request)."""
    row_, opened = sealed.open_from_station(
        county.cdb, county.county, blob, expect="pull", address="test", max_payload=10**6, window_ms=900_000
    )
    return row_, pull.open_pull(county.cdb, county.county, row_, opened)


def kinds_by_station(doc):
    return sorted((e["station"], e["kind"], e["subject"]) for e in doc["events"])


def row(county, st):
    return county.cdb.m.Station.get_by_id(st.id)


def test_each_level_sees_its_scope_and_global_never_its_own(county, world):
    everything = [json.loads(r.data) for r in county.cdb.m.Event.select().order_by(county.cdb.m.Event.pos)]
    globals_ = [e for e in everything if e["kind"] in (K.STATION_ENROLLED, K.STATION_INITIALISED, K.USER_ADDED)]
    assert len(globals_) == 6 + 6 + 7  # six enrollments, six stations' starts, seven users

    def expected(st, keep):
        return sorted(
            (e["station"], e["kind"], e["subject"])
            for e in everything
            if e["station"] != st.id and (e in globals_ or keep(e))
        )

    case_scope = {r.case_id: r.scope for r in county.cdb.m.CaseScope.select()}
    in_org = lambda prefix: lambda e: case_scope.get(e["subject"], "-").startswith(prefix)  # noqa: E731
    v1, t1, c = world["v1"], world["t1"], world["c"]
    assert kinds_by_station(page_of(county, row(county, v1))) == expected(v1, in_org(VILLAGE))
    assert kinds_by_station(page_of(county, row(county, t1))) == expected(t1, in_org(TOWN[:9]))
    assert kinds_by_station(page_of(county, row(county, c))) == expected(c, in_org(COUNTY[:6]))
    v2_page = page_of(county, row(county, world["v2"]))
    assert not any(e["subject"].startswith("v1-") for e in v2_page["events"])
    assert any(e["kind"] == K.CASE_DECIDED for e in v2_page["events"])  # the county's decision comes down


def test_pages_cover_everything_exactly_once_in_position_order(county, world):
    t1 = row(county, world["t1"])
    full = page_of(county, t1)
    assert not full["more"]
    got, cursor = [], 0
    while True:
        doc = page_of(county, t1, cursor=cursor, limit=2)
        got += doc["events"]
        assert doc["from"] == cursor
        cursor = doc["to"]
        if not doc["more"]:
            break
    assert got == full["events"]
    assert cursor == pull.top_position(county.cdb)
    # nothing new: an empty page that keeps the cursor
    empty = page_of(county, t1, cursor=cursor)
    assert (empty["events"], empty["to"], empty["more"]) == ([], cursor, False)


def test_byte_cap_stops_a_page_early(county, world):
    c = row(county, world["c"])
    doc = page_of(county, c, max_bytes=1)
    assert len(doc["events"]) == 1 and doc["more"]


def test_pending_counts_follow_the_cursor(county, world):
    v1 = row(county, world["v1"])
    assert pull.count_pending(county.cdb, v1) == len(page_of(county, v1)["events"])
    registry.touch(county.cdb, v1.id, cursor=pull.top_position(county.cdb))
    assert pull.count_pending(county.cdb, row(county, world["v1"])) == 0


def test_on_behalf_return_is_sealed_to_the_village(county, world):
    t1, v1 = world["t1"], world["v1"]
    blob = t1.pull_blob(county.county, 0, behalf=v1.id)
    req_row, doc = open_pull(county, blob)
    sealed = pull.answer_pull(county.cdb, county.county, req_row, doc, Settings())
    with pytest.raises(ProtocolError):
        t1.open_return(county.county, sealed)  # the township cannot read it
    ret = v1.open_return(county.county, sealed)
    assert ret["station"] == v1.id and ret["t"] == "return"
    assert [e for p in ret["pages"] for e in p["events"]] == page_of(county, row(county, v1))["events"]
    (receipt,) = ret["receipts"]
    assert (receipt.station, receipt.seq, receipt.head) == (v1.id, len(v1.events), v1.events[-1].hash)


@pytest.mark.parametrize("who,for_", [("t2", "v1"), ("v2", "v1"), ("t1", "v3")])
def test_on_behalf_needs_the_covering_township(county, world, who, for_):
    blob = world[who].pull_blob(county.county, 0, behalf=world[for_].id)
    req_row, doc = open_pull(county, blob)
    with pytest.raises(ProtocolError) as e:
        pull.answer_pull(county.cdb, county.county, req_row, doc, Settings())
    assert e.value.code == "scope"


def test_pull_requests_are_verified(county, world):
    v1 = world["v1"]
    with pytest.raises(ProtocolError) as e:
        open_pull(county, v1.pull_blob(county.county, county_code="330523000000"))
    assert e.value.code == "wrong_county"
    for cursor, limit in [(-1, 10), (0, 0), ("0", 10)]:
        doc = json.loads(api.pull_request(v1.key, county=COUNTY, station=v1.id, cursor=0, limit=10)["h"])
        wire = sign_doc({**doc, "cursor": cursor, "limit": limit}, v1.key)
        blob = envelope.seal(
            canonical.encode(wire),
            kind="pull",
            sender=v1.id,
            recipients=[county.county.public.enc],
            signer=v1.key,
        )
        with pytest.raises(ProtocolError) as e:
            open_pull(county, blob)
        assert e.value.code == "malformed"
    registry.revoke(county.cdb, county.county, v1.id)
    with pytest.raises(ProtocolError) as e:
        open_pull(county, v1.pull_blob(county.county))
    assert e.value.code == "revoked"


def test_township_pull_uses_its_index(county, world):
    """The township's scan is an index range scan, not a walk of the whole log."""
    E = county.cdb.m.Event
    t1 = row(county, world["t1"])
    (_, q_town) = pull._streams(county.cdb, org=t1.org, level=t1.level, exclude=t1.id, cursor=0, top=10**9)
    sql, params = q_town.order_by(E.pos).limit(10).sql()
    if county.cdb.is_pg:
        county.cdb.database.execute_sql(
            "SET enable_seqscan = off"
        )  # tiny table: make the planner show its choice
        plan = " ".join(r[0] for r in county.cdb.database.execute_sql("EXPLAIN " + sql, params).fetchall())
        county.cdb.database.execute_sql("SET enable_seqscan = on")
    else:
        plan = " ".join(
            str(r[-1])
            for r in county.cdb.database.execute_sql("EXPLAIN QUERY PLAN " + sql, params).fetchall()
        )
    assert "event_township_pos" in plan, plan
