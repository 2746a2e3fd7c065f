"""Push processing as plain functions, on SQLite and PostgreSQL (sync.server.ingest)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schema import events as K
from schema import hlc as HLC
from schema.events import Event, seal
from sync import enrollment
from sync.crypto import KeyPair
from sync.errors import ProtocolError
from sync.messages import make_segment, open_receipt, open_segment
from sync.server import audit, registry
from sync.server.config import CST
from sync.server.db import event_json
from sync.server.ingest import (
    FLAG_CLOCK_FUTURE,
    FLAG_CLOCK_PAST,
    ingest_segment,
    ingest_segments,
    loads_client_json,
    open_fast,
)
from tests.helpers import COUNTY, OTHER_COUNTY, TOWN, TOWN2, VILLAGE, VILLAGE2, scaled
from tests.sync.county_kit import BOOT


def stored_rows(cdb, station=None):
    E = cdb.m.Event
    q = E.select().order_by(E.pos)
    if station:
        q = q.where(E.station == station)
    return list(q)


def ingest(county, seg):
    return ingest_segment(county.cdb, county.county, seg)


def test_stored_then_duplicate_gets_the_same_receipt(county, stations):
    v = stations(VILLAGE, "village")  # seq 1–2: station.initialised, user.added (BOOT)
    for _ in range(3):
        v.register()
    seg = v.segment(county=COUNTY)
    first = ingest(county, seg)
    assert (first.status, first.stored) == ("stored", BOOT + 3)
    receipt = open_receipt(first.receipt, county.county.public.sign)
    assert (receipt.station, receipt.seq, receipt.head) == (v.id, 5, v.events[-1].hash)
    again = ingest(county, seg)
    assert again.status == "duplicate" and again.receipt == first.receipt
    part = ingest(county, v.segment(1, 4, county=COUNTY))  # an older, shorter segment
    assert part.status == "duplicate"
    assert open_receipt(part.receipt, county.county.public.sign).seq == 4
    rows = stored_rows(county.cdb, v.id)
    assert [r.seq for r in rows] == [1, 2, 3, 4, 5]
    assert [json.loads(r.data) for r in rows] == [ev.to_dict() for ev in v.events]
    st = county.cdb.m.Station.get_by_id(v.id)
    assert (st.head_seq, st.head_hash) == (5, v.events[-1].hash)


def test_overlapping_segment_stores_only_the_new_part(county, stations):
    v = stations(VILLAGE, "village")
    for _ in range(5):
        v.register()
    assert ingest(county, v.segment(1, 5, county=COUNTY)).stored == 5
    r = ingest(county, v.segment(4, 7, county=COUNTY))
    assert (r.status, r.stored) == ("stored", 2)
    assert [row.seq for row in stored_rows(county.cdb, v.id)] == [1, 2, 3, 4, 5, 6, 7]


def test_gap_answers_send_from(county, stations):
    v = stations(VILLAGE, "village")
    for _ in range(6):
        v.register()
    ingest(county, v.segment(1, 4, county=COUNTY))
    r = ingest(county, v.segment(6, 8, county=COUNTY))
    assert r.status == "refused" and r.error.code == "gap" and r.error.detail["send_from"] == 5
    assert r.to_dict()["send_from"] == 5 and "第5条" in r.error.message
    assert len(stored_rows(county.cdb, v.id)) == 4


def test_fork_is_refused_with_an_alarm_and_nothing_stored(county, stations):
    v = stations(VILLAGE, "village")
    for _ in range(3):
        v.register()
    ingest(county, v.segment(county=COUNTY))
    # the station "forgets" seq 5 and writes another event there (a restored backup)
    v.events.pop()
    v.chains.heads[v.id] = (4, v.events[-1].hash)
    v.register()
    v.register()
    for seg in (
        v.segment(5, 5, county=COUNTY),
        v.segment(4, 6, county=COUNTY),
        v.segment(6, 6, county=COUNTY),
    ):
        r = ingest(county, seg)
        assert r.status == "refused" and r.error.code == "fork", r.to_dict()
    assert len(stored_rows(county.cdb, v.id)) == 5
    alarms = audit.alarms(county.cdb, station=v.id)
    assert [a["kind"] for a in alarms] == ["fork", "fork", "fork"]
    assert "body" not in json.dumps(alarms)


def test_scope_rules_refuse_the_whole_segment(county, stations):
    v1, v2 = stations(VILLAGE, "village"), stations(VILLAGE2, "village")
    town, town2 = stations(TOWN, "township"), stations(TOWN2, "township")
    reg = v1.register("case-a")
    assert ingest(county, v1.segment(county=COUNTY)).status == "stored"
    # a sibling village acting on v1's case, after an event of its own
    v2.register("case-b")
    v2.record(K.CASE_ACCEPTED, reg.subject, {})
    r = ingest(county, v2.segment(county=COUNTY))
    assert r.error.code == "scope" and "第4条" in r.error.message
    assert stored_rows(county.cdb, v2.id) == []
    # another township's station
    town2.record(K.CASE_FORWARDED, reg.subject, {})
    assert ingest(county, town2.segment(county=COUNTY)).error.code == "scope"
    # the right township may act on it
    town.record(K.CASE_ACCEPTED, reg.subject, {})
    assert ingest(county, town.segment(county=COUNTY)).status == "stored"
    # a county-only kind from a station
    v1.record(K.CATALOG_PUBLISHED, "x", {})
    assert ingest(county, v1.segment(4, 4, county=COUNTY)).error.code == "kind"


def test_event_on_an_unknown_case_is_refused_for_a_retry(county, stations):
    town = stations(TOWN, "township")
    town.record(K.CASE_ACCEPTED, "case-nowhere", {})
    r = ingest(county, town.segment(county=COUNTY))
    assert r.error.code == "scope" and r.retry


@pytest.mark.parametrize(
    "claims, says",
    [
        ({"org": VILLAGE2}, "以单位 330522101002 的名义办理"),  # a sibling village
        ({"org": COUNTY}, "以单位 330522000000 的名义办理"),  # "a county user at a village PC": not any more
        ({"role": "reviewer"}, "不是村级工作站可以有的角色"),
        ({"actor": "someone-else"}, "不是本工作站添加的用户"),
        ({"role": "admin"}, "的角色是代办员"),  # a role the station may hold, but not this user's
    ],
)
def test_claims_beyond_the_station_are_refused_with_an_alarm(county, stations, claims, says):
    v = stations(VILLAGE, "village")
    v.register("c0")
    v.record(K.CASE_REGISTERED, "c1", {}, **claims)
    r = ingest(county, v.segment(county=COUNTY))
    assert (r.status, r.error.code, r.error.http_status) == ("refused", "authority", 403)
    assert "第4条" in r.error.message and says in r.error.message, r.error.message
    assert stored_rows(county.cdb, v.id) == []
    assert [(a["kind"], a["detail"]["seq"]) for a in audit.alarms(county.cdb, station=v.id)] == [("authority", 4)]


def test_actors_of_other_stations_and_disabled_users_are_refused(county, stations):
    v, v2 = stations(VILLAGE, "village", role="admin"), stations(VILLAGE2, "village")
    v.add_user("agent-a", "agent")
    v.record(K.CASE_REGISTERED, "c1", {}, role="agent", actor="agent-a")
    v.record(K.USER_DISABLED, "agent-a", {"user_id": "agent-a"})
    assert ingest(county, v.segment(county=COUNTY)).status == "stored"
    v2.record(K.CASE_REGISTERED, "c2", {}, actor="agent-a")  # v's user signing at v2
    r = ingest(county, v2.segment(county=COUNTY))
    assert r.error.code == "authority" and "是其他工作站的用户" in r.error.message
    v.record(K.CASE_REGISTERED, "c3", {}, role="agent", actor="agent-a")  # after its own station disabled it
    r = ingest(county, v.segment(6, 6, county=COUNTY))
    assert r.error.code == "authority" and "已在本工作站第5条记录中停用" in r.error.message


def test_an_action_the_role_may_never_take_is_refused_by_the_rule_objects(county, stations):
    """An agent never returns a case, whatever the case: the county refuses it (schema.rules roles)."""
    v = stations(VILLAGE, "village")
    v.register("c1")
    v.record(K.CASE_RETURNED, "c1", {"reason": "x"})
    r = ingest(county, v.segment(county=COUNTY))
    assert r.error.code == "authority" and "代办员不能执行“退回”" in r.error.message
    assert stored_rows(county.cdb, v.id) == []


def test_business_invalid_but_authentic_events_are_stored(county, stations):
    v = stations(VILLAGE, "village")
    v.register("c1")
    v.record(K.CASE_DECIDED, "c1", {"outcome": "approved"})  # decided without acceptance: a conflict later
    v.record(K.CASE_RATED, "c1", {"nonsense": True})
    assert ingest(county, v.segment(county=COUNTY)).stored == BOOT + 3


def test_relayed_segments_in_any_order(county, stations):
    v, town = stations(VILLAGE, "village"), stations(TOWN, "township")
    reg = v.register("c1")
    town.record(K.CASE_FORWARDED, reg.subject, {})
    # the township's own segment comes first in the push; the village's registration after
    results = ingest_segments(
        county.cdb, county.county, [town.segment(county=COUNTY), v.segment(county=COUNTY)]
    )
    assert [r.status for r in results] == ["stored", "stored"]


def test_unknown_revoked_and_wrong_county(county, stations):
    ghost = stations(VILLAGE, "village", enroll=False)
    ghost.register()
    assert ingest(county, ghost.segment(county=COUNTY)).error.code == "unknown_station"
    v = stations(VILLAGE, "village")
    v.register()
    assert ingest(county, v.segment(county=OTHER_COUNTY)).error.code == "wrong_county"
    registry.revoke(county.cdb, county.county, v.id, "电脑丢失")
    r = ingest(county, v.segment(county=COUNTY))
    assert r.error.code == "revoked" and "电脑丢失" in r.error.message
    assert [a["kind"] for a in audit.alarms(county.cdb, station=v.id)] == ["revoked"]
    assert stored_rows(county.cdb, v.id) == []


def test_forged_signature_is_refused_with_an_alarm(county, stations):
    v = stations(VILLAGE, "village")
    v.register()
    forged = make_segment(v.events, KeyPair.generate(), COUNTY)
    r = ingest(county, forged)
    assert r.error.code == "signature"
    assert [a["kind"] for a in audit.alarms(county.cdb, station=v.id)] == ["signature"]
    tampered = v.segment(county=COUNTY)
    tampered["e"][0]["body"]["case_no"] = "X"
    assert ingest(county, tampered).error.code == "signature"


def test_duplicate_event_id_across_stations_is_a_conflict(county, stations):
    v1, v2 = stations(VILLAGE, "village"), stations(VILLAGE2, "village")
    ev = v1.register("c1")
    ingest(county, v1.segment(county=COUNTY))
    mine = {"station": v2.id, "seq": BOOT + 1, "prev": v2.events[-1].hash, "org": VILLAGE2, "actor": v2.who.actor}
    copy = seal(**{**ev.unsigned(), **mine, "subject": "c2"})
    r = ingest(county, make_segment([*v2.events, copy], v2.key, COUNTY))
    assert r.error.code == "conflict"
    assert [a["kind"] for a in audit.alarms(county.cdb, station=v2.id)] == ["conflict"]
    assert stored_rows(county.cdb, v2.id) == []
    assert county.cdb.m.Station.get_by_id(v2.id).head_seq == 0


def test_implausible_clocks_are_flagged_and_clocks_beyond_the_bound_refused(county, stations):
    v = stations(VILLAGE, "village")
    v.register()
    soon = datetime.now(CST) + timedelta(hours=2)  # ahead, but within the day a clock may drift
    v.record(K.CASE_ACCEPTED, v.events[-1].subject, {}, at=soon.isoformat(timespec="seconds"))
    v.record(K.CASE_ACCEPTED, v.events[-1].subject, {}, at="2020-01-01T00:00:00+08:00")
    r = ingest(county, v.segment(county=COUNTY))
    assert r.status == "stored" and r.flags == {"future": 1, "past": 1, "unreadable": 0}
    assert [row.flags for row in stored_rows(county.cdb, v.id)][-3:] == [0, FLAG_CLOCK_FUTURE, FLAG_CLOCK_PAST]
    assert [a["kind"] for a in audit.alarms(county.cdb, station=v.id)] == ["clock"]
    # a day and more ahead: refused, and the station keeps it to retry (its clock is wrong)
    v.record(K.CASE_ACCEPTED, v.events[-1].subject, {}, at="2099-01-01T00:00:00+08:00")
    r = ingest(county, v.segment(6, 6, county=COUNTY))
    assert (r.error.code, r.retry) == ("clock", True) and "第6条" in r.error.message
    assert "（2099-01-01 00:00）比县中心时间" in r.error.message and "自动上传" in r.error.message
    assert len(stored_rows(county.cdb, v.id)) == 5
    ingest(county, v.segment(6, 6, county=COUNTY))  # retried at every sync: at most one clock alarm an hour
    assert [a["kind"] for a in audit.alarms(county.cdb, station=v.id)] == ["clock"]


@pytest.mark.parametrize(
    "hlc, at, retry, says",
    [
        (2**63 - 1, None, True, "逻辑时钟（遥远的将来）"),  # issue 8, finding 1
        (HLC.pack(4_102_444_800_000, 0), None, True, "逻辑时钟（2100-01-01 08:00）"),
        (HLC.pack(1_500_000_000_000, 0), None, False, "逻辑时钟早于2020年"),
        (None, "2019-12-31T23:00:00+08:00", False, "记录时间早于2020年"),
    ],
)
def test_clocks_beyond_the_bound_are_never_stored(county, stations, hlc, at, retry, says):
    v = stations(VILLAGE, "village")
    v.register()
    head = v.events[-1]
    bad = seal(
        **{**head.unsigned(), "id": "ev-bad", "seq": head.seq + 1, "prev": head.hash, "hlc": hlc or head.hlc,
           "at": at or head.at, "kind": K.CASE_ACCEPTED}
    )
    r = ingest(county, make_segment([*v.events, bad], v.key, COUNTY))
    assert (r.error.code, r.retry) == ("clock", retry) and says in r.error.message, r.error.message
    assert stored_rows(county.cdb, v.id) == []
    assert county.cdb.m.Station.get_by_id(v.id).head_hlc == 0
    assert [a["kind"] for a in audit.alarms(county.cdb, station=v.id)] == ["clock"]


def test_staff_directory_is_folded_from_user_events(county, stations):
    v = stations(VILLAGE, "village", role="admin")
    v.add_user("u1", "agent", login="wang")
    v.add_user("u2", "agent", login="li")
    v.record(K.USER_DISABLED, "u2", {"user_id": "u2"})
    assert ingest(county, v.segment(county=COUNTY)).stored == BOOT + 3
    St = county.cdb.m.Staff
    rows = {s.user_id: (s.login, s.role, s.disabled, s.station, s.added_seq, s.disabled_seq) for s in St.select()}
    assert rows == {
        v.who.actor: (f"u{v.id[-6:]}", "admin", False, v.id, 2, None),
        "u1": ("wang", "agent", False, v.id, 3, None),
        "u2": ("li", "agent", True, v.id, 4, 5),
    }


@pytest.mark.parametrize(
    "kind, subject, body, says",
    [
        (K.USER_ADDED, "u3", {"weird": ["body"]}, "对象与内容中的用户编号不符"),
        (K.USER_ADDED, "u3", {"user_id": "u3", "role": "agent", "org": VILLAGE2}, "新用户的单位应为本工作站的单位"),
        (K.USER_ADDED, "u3", {"user_id": "u3", "role": "clerk", "org": VILLAGE}, "不是村级工作站可以有的角色"),
        (K.USER_ADDED, "OTHER", {"role": "agent", "org": VILLAGE}, "已经存在，不能再次添加"),  # v2's user
        (K.USER_DISABLED, "OTHER", {}, "只能停用本工作站的用户"),
        (K.USER_PIN_RESET, "OTHER", {}, "只能重置PIN本工作站的用户"),
        (K.USER_DISABLED, "nobody", {"user_id": "nobody"}, "不是本县已添加的用户"),
    ],
)
def test_a_station_manages_only_its_own_users(county, stations, kind, subject, body, says):
    v, v2 = stations(VILLAGE, "village", role="admin"), stations(VILLAGE2, "village")
    assert ingest(county, v2.segment(county=COUNTY)).status == "stored"
    subject = v2.who.actor if subject == "OTHER" else subject
    if "user_id" not in body and "weird" not in body:
        body = {**body, "user_id": subject}
    v.record(kind, subject, body)
    r = ingest(county, v.segment(county=COUNTY))
    assert r.error.code == "authority" and says in r.error.message, r.error.message
    St = county.cdb.m.Staff
    assert {s.user_id: (s.station, s.disabled) for s in St.select()} == {v2.who.actor: (v2.id, False)}


def test_an_agent_cannot_add_users_and_the_county_admin_may_disable_anyone(county, stations):
    v = stations(VILLAGE, "village")  # its first user is an agent
    v.add_user("u1", "agent")
    r = ingest(county, v.segment(county=COUNTY))
    assert r.error.code == "authority" and "代办员不能添加代办员账号" in r.error.message
    v2 = stations(VILLAGE2, "village")
    ingest(county, v2.segment(county=COUNTY))
    office = stations(COUNTY, "county", role="admin")
    office.record(K.USER_DISABLED, v2.who.actor, {"user_id": v2.who.actor})
    office.record(K.USER_PIN_RESET, v2.who.actor, {"user_id": v2.who.actor})
    assert ingest(county, office.segment(county=COUNTY)).status == "stored"
    St = county.cdb.m.Staff
    row = St.get_by_id(v2.who.actor)
    assert (row.disabled, row.disabled_seq) == (True, None)  # not disabled in its own chain
    v2.register()  # made before v2 learned of it: accepted (docs/security.md)
    assert ingest(county, v2.segment(county=COUNTY)).status == "stored"
    reviewer = stations(COUNTY, "county")  # a reviewer is not the county admin
    reviewer.record(K.USER_DISABLED, office.who.actor, {"user_id": office.who.actor})
    assert ingest(county, reviewer.segment(county=COUNTY)).error.code == "authority"


@pytest.mark.parametrize(
    "bad",
    [
        None,
        [],
        {"h": 1},
        {"h": "{", "s": "x"},
        {"h": '{"t":"seg","v":1}', "s": "AA==", "e": []},
        {"h": '{"t":"seg","v":2}', "s": "AA==", "e": []},
        {"h": "[" * 5000 + "]" * 5000, "s": "x"},
    ],
)
def test_malformed_segments_are_refused_cleanly(county, bad):
    r = ingest(county, bad)
    assert r.status == "refused" and r.error.code in ("malformed", "version")


def test_hostile_field_values_are_malformed_not_crashes(county, stations):
    v = stations(VILLAGE, "village")
    v.register()
    for field_, value in [("id", "x" * 1000), ("hlc", 2**70), ("subject", "a\x00b"), ("org", "village")]:
        seg = v.segment(county=COUNTY)
        seg["e"][0][field_] = value
        # re-sign so that only the value is wrong
        ev = seal(**{**v.events[0].unsigned(), field_: value})
        good = make_segment([ev], v.key, COUNTY)
        r = ingest(county, good)
        assert r.status == "refused" and r.error.code in ("malformed", "authority"), (field_, r.to_dict())
    seg = v.segment(county=COUNTY)
    seg["e"][0]["body"] = {"x": "\ud800"}  # a lone surrogate cannot be UTF-8 encoded
    assert ingest(county, seg).error.code == "malformed"
    assert stored_rows(county.cdb, v.id) == []


# -- the fast verifier agrees with sync.messages.open_segment ------------------------------------------------


def _outcome(fn, wire, key):
    try:
        h, evs = fn(wire, key)
    except ProtocolError as e:
        return ("refused", e.code)
    return ("ok", h, [ev if isinstance(ev, Event) else ev.event() for ev in evs])


@pytest.mark.parametrize("backend", ["sqlite"])
@settings(max_examples=scaled(60), deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_fast_verifier_matches_open_segment(stations, data):
    v = stations(VILLAGE, "village", enroll=False, boot=False)
    n = data.draw(st.integers(1, 4))
    for i in range(n):
        body = data.draw(
            st.dictionaries(
                st.text(max_size=5),
                st.one_of(
                    st.integers(-(2**64), 2**64),
                    st.text(max_size=8),
                    st.booleans(),
                    st.none(),
                    st.lists(st.integers(), max_size=3),
                ),
                max_size=4,
            )
        )
        v.record(K.CASE_REGISTERED if i == 0 else K.CASE_ACCEPTED, "c1", body)
    wire_text = json.dumps(v.segment(county=COUNTY), ensure_ascii=data.draw(st.booleans()))
    mutation = data.draw(st.sampled_from(["none", "float", "body", "type", "extra", "drop", "nan", "key"]))
    w = json.loads(wire_text)
    e = w["e"][data.draw(st.integers(0, n - 1))]
    if mutation == "float":
        e["body"]["f"] = 1.5
    elif mutation == "body":
        e["body"]["z"] = "changed"
    elif mutation == "type":
        e["hlc"] = str(e["hlc"])
    elif mutation == "extra":
        e["hash"] = "x"
    elif mutation == "drop":
        del e["actor"]
    elif mutation == "nan":
        e["body"]["n"] = float("nan")
    elif mutation == "key":
        e["body"]['he"llo'] = {"hlc": 1, ',"hlc":': ',"hlc":'}
    text = json.dumps(w, ensure_ascii=False)
    slow = _outcome(open_segment, json.loads(text), v.key.public.sign)
    fast = _outcome(open_fast, loads_client_json(text), v.key.public.sign)
    assert slow == fast
    if fast[0] == "ok":
        _, evs = open_fast(loads_client_json(text), v.key.public.sign)
        assert [x.text for x in evs] == [event_json(x.event()) for x in evs]


def test_a_float_anywhere_in_client_json_refuses_only_its_segment(county, stations):
    v, v2 = stations(VILLAGE, "village"), stations(VILLAGE2, "village")
    v.register()
    v2.register()
    segs = loads_client_json(json.dumps([v.segment(county=COUNTY), v2.segment(county=COUNTY)]))
    segs[0]["e"][0]["body"]["amount"] = loads_client_json("12.5")
    results = ingest_segments(county.cdb, county.county, segs)
    assert [r.status for r in results] == ["refused", "stored"] and results[0].error.code == "malformed"


def test_re_enrolling_replaces_the_key_and_keeps_the_chain(county, stations):
    v = stations(VILLAGE, "village")
    v.register()
    v.register()
    assert ingest(county, v.segment(county=COUNTY)).stored == BOOT + 2
    old_key = v.key
    v.key = KeyPair.generate()
    code = registry.make_code(county.cdb, county.county, org=VILLAGE, level="village")
    registry.enroll(county.cdb, county.county, v.enroll_request(code))
    v.register()
    assert ingest(county, make_segment(v.events[4:], old_key, COUNTY)).error.code == "signature"
    r = ingest(county, v.segment(5, 5, county=COUNTY))
    assert (r.status, r.stored) == ("stored", 1)
    enrolled = [json.loads(e.data)["body"] for e in stored_rows(county.cdb) if e.kind == K.STATION_ENROLLED]
    assert len(enrolled) == 2 and enrolled[-1]["sign_pub"] != enrolled[0]["sign_pub"]
    # an enrolled station cannot move to another org with a code for that org
    code2 = registry.make_code(county.cdb, county.county, org=VILLAGE2, level="village")
    moved = enrollment.make_request(
        v.key, enrollment.derive(code2, COUNTY), station=v.id, org=VILLAGE2, name="西村", at="2026-03-02"
    )
    with pytest.raises(ProtocolError) as e:
        registry.enroll(county.cdb, county.county, moved)
    assert e.value.code == "code" and "不能改登记" in e.value.message


def test_a_revoked_station_enrolled_again_by_the_admin_may_sync(county, stations):
    v = stations(VILLAGE, "village")
    registry.revoke(county.cdb, county.county, v.id, "误操作")
    v.register()
    assert ingest(county, v.segment(county=COUNTY)).error.code == "revoked"
    code = registry.make_code(county.cdb, county.county, org=VILLAGE, level="village")
    registry.enroll(county.cdb, county.county, v.enroll_request(code))
    assert ingest(county, v.segment(county=COUNTY)).status == "stored"
