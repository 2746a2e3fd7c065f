"""Issue 8, proof 2: forged claims never reach any replica, whatever way they travel.

Each hypothesis example builds a real county center (uvicorn on 127.0.0.1) and real enrolled
stations: a village whose data directory an attacker holds (``tests.station_attacker``: its REAL key,
its real chain), its township, a sibling village and the county office. The attacker signs
events with random claimed org, role, actor, HLC and kind, and sends each one a random way:
pushed directly, carried in a USB bundle the township imports and relays, or in a bundle the
county imports. Whether an event is honest is decided here, by construction, from the claims
the rule drew (not by calling the checks under test): its station's org, a role of that user
at that station, a clock within a day of now, and a subject in its scope.

After each send: an honest event is stored at the county, a forged one is not and its refusal
has a reason on record — a county audit row, or at the township a set-aside row or a relay
refusal. At the end everybody syncs until nothing moves, and:

- the county holds exactly the honest events;
- every replica holds exactly the county's events in its scope (from other stations), so its
  projections are those of the honest events alone, and ``station verify`` agrees;

A few dozen events by default; twenty times more with STATION_LONG_TESTS=1.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from schema import events as K
from schema import hlc as HLC
from schema.ids import new_id
from schema.org import Role
from station import clock
from station.replication import bundles
from station.replication.runner import sync_now
from station.services import users
from station.services.verify import verify_station
from sync.scope import visible
from sync.server import audit
from sync.server import bundles as county_bundles
from tests.helpers import COUNTY, PENSION, PIN, TOWN, VILLAGE, VILLAGE2, registration_body, scaled
from tests.station.sync_kit import CountyServer, enrolled_station, ok, register_case
from tests.station_attacker import Attacker

DAY = 24 * 3600 * 1000
# Each claim is drawn at random, weighted so that about one event in five is honest.
CLOCKS = ["now"] * 6 + ["two_days_ahead", "2^63-1", "before_2020", "negative"]
KINDS = ["register"] * 3 + ["accept_own_case"] * 2 + ["add_user"] * 2 + ["void_sibling_case"]
ORGS = [VILLAGE] * 5 + [VILLAGE2, TOWN, COUNTY]
ACTORS = ["agent"] * 3 + ["admin"] * 2 + ["township_clerk", "nobody"]
ROLES = ["as_actor"] * 5 + ["agent", "admin", "clerk", "reviewer"]
NEW_ROLES = ["agent", "admin", "clerk"]


def _hlc(which: str) -> int | None:
    now = clock.ms(clock.now())
    return {
        "now": None,
        "two_days_ahead": HLC.pack(now + 2 * DAY, 0),
        "2^63-1": 2**63 - 1,
        "before_2020": HLC.pack(HLC.EARLIEST_MS - DAY, 0),
        "negative": -1,
    }[which]


class World:
    def __init__(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="authority-"))
        self.county = CountyServer(self.tmp / "county")
        c = self.county
        self.a = enrolled_station(self.tmp / "a", c, org=VILLAGE, role=Role.ADMIN, login="admin1")
        users.add_user(self.a, "agent1", Role.AGENT, PIN)
        self.t = enrolled_station(self.tmp / "t", c, org=TOWN, role=Role.CLERK, login="clerk1", name="城关镇")
        self.v2 = enrolled_station(self.tmp / "v2", c, org=VILLAGE2, name="西村")
        self.c = enrolled_station(self.tmp / "c", c, org=COUNTY, role=Role.REVIEWER, login="shenpi", name="县中心")
        self.replicas = [self.a, self.t, self.v2, self.c]
        self.a_users = {"admin": self.a.user.user_id, "agent": self.a.slots.find("agent1").user_id}
        self.own_case = None
        for s in (self.a, self.t, self.v2, self.c, self.a):
            ok(sync_now(s))
        self.sibling_case = register_case(self.v2).case_id
        ok(sync_now(self.v2))
        ok(sync_now(self.t))
        self.attacker = Attacker(self.a)  # from here on, the village's chain is the attacker's
        self.honest: set[str] = set()
        self.relayed_ranges: set[int] = set()
        self.usb = self.tmp / "usb"

    def close(self) -> None:
        for s in self.replicas:
            s.close()
        self.county.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -- the attack ------------------------------------------------------------------------------------

    def forge(self, kind, org, actor, role, clock_, new_role, path):
        a = self.attacker
        actor_id = {"township_clerk": self.t.user.user_id, "nobody": "nobody-" + new_id()}.get(
            actor, self.a_users.get(actor)
        )
        role = {"agent": "agent", "admin": "admin", "township_clerk": "clerk", "nobody": "agent"}[actor] if (
            role == "as_actor"
        ) else role
        subject, body = self._subject_and_body(kind, new_role)
        honest = (
            org == VILLAGE
            and actor in ("agent", "admin")
            and role == actor
            and clock_ == "now"
            and kind != "void_sibling_case"
            and (kind != "add_user" or (actor == "admin" and new_role in ("agent", "admin")))
            and (kind != "accept_own_case" or self.own_case is not None)
        )
        ev = a.seal(
            {"register": K.CASE_REGISTERED, "accept_own_case": K.CASE_ACCEPTED,
             "void_sibling_case": K.CASE_VOIDED, "add_user": K.USER_ADDED}[kind],
            subject, body, org=org, role=role, actor=actor_id, hlc=_hlc(clock_),
        )
        if path == "relay" and ev.seq in self.relayed_ranges:
            path = "push"  # the township keeps one outbox row per range
        stored = {"push": self._push, "relay": self._relay, "county_import": self._county_import}[path](ev)
        assert stored == honest, (path, kind, org, actor, role, clock_, new_role)
        event(f"{path}: {'honest' if honest else 'forged'}")
        if stored:
            self.honest.add(ev.id)
            if kind == "register":
                self.own_case = ev.subject
        else:
            a.forget()

    def _subject_and_body(self, kind, new_role):
        if kind == "register":
            return new_id(), registration_body(PENSION)
        if kind == "accept_own_case":
            return self.own_case or new_id(), {"opinion": ""}
        if kind == "void_sibling_case":
            return self.sibling_case, {"reason": "重复登记"}
        uid = new_id()
        return uid, {"user_id": uid, "login": "u" + uid[-6:], "name": "新用户", "role": new_role, "org": VILLAGE}

    def _audit_count(self):
        return len(audit.audit_rows(self.county.cdb, limit=10**6))

    def _push(self, ev) -> bool:
        before = self._audit_count()
        status, body = self.attacker.push(self.county.url, [ev])
        if status == 200:
            return True
        assert body["reason"] and self._audit_count() == before + 1  # refused with a reason, on record
        return False

    def _county_import(self, ev) -> bool:
        before = self._audit_count()
        path = self.attacker.bundle(self.usb, [ev])
        try:
            (result,) = county_bundles.import_path(self.county.cdb, self.county.county, path)
        finally:
            path.unlink()
        (seg,) = result.results
        if seg.ok:
            return True
        assert seg.error.message and self._audit_count() == before + 1
        return False

    def _relay(self, ev) -> bool:
        self.relayed_ranges.add(ev.seq)
        path = self.attacker.bundle(self.usb, [ev])
        try:
            bundles.import_path(self.t, path)
        finally:
            path.unlink()
        before = self._audit_count()
        sync_now(self.t)
        if self.county.events_of(self.a.config.station_id)[-1][1] == ev.hash:
            return True
        db = self.t.db
        set_aside = db.execute_sql("SELECT reason FROM quarantine WHERE id = ?", (ev.id,)).fetchone()
        relayed = db.execute_sql(  # refused by the county, or (a clock ahead) kept to retry later
            "SELECT state FROM relay_segment WHERE station = ? AND first = ? AND head = ?",
            (ev.station, ev.seq, ev.hash),
        ).fetchone()
        assert (set_aside and set_aside[0]) or (relayed and self._audit_count() > before)
        assert not self.t.store.has_event(ev.id)
        return False

    def honest_work(self, who):
        event(f"honest work at {who}")
        s = getattr(self, who)
        if who == "v2":
            register_case(s, len(self.honest) + 7)
        # the township may be relaying an attack the county answers "later" (a clock ahead): refused, not failed
        assert sync_now(s).outcome in ("ok", "refused")

    # -- the end ----------------------------------------------------------------------------------------

    def drain_and_check(self):
        for _ in range(2):
            for s in self.replicas:
                sync_now(s)
        E = self.county.cdb.m.Event
        county_station = self.county.county.station
        rows = list(E.select(E.id, E.station, E.scope).where(E.station != county_station).tuples())
        held = {i for i, _, _ in rows}
        own_chains = {
            e.id for s in (self.t, self.v2, self.c) for e in s.store.events(s.config.station_id)
        } | {e.id for e in self.a.store.events(self.a.config.station_id)}
        assert held == own_chains | self.honest, "the county holds exactly the honest events"
        for s in self.replicas:
            me = s.config.station_id
            expected = {i for i, station, scope in rows if station != me and visible(s.config.org, scope)}
            got = {
                e.id for e in s.store.events() if e.station not in (me, county_station)
            }
            assert got == expected, (s.config.name, len(got), len(expected))
            report = verify_station(s)
            assert report.ok, report.problems


FORGE = st.fixed_dictionaries(
    {
        "kind": st.sampled_from(KINDS),
        "org": st.sampled_from(ORGS),
        "actor": st.sampled_from(ACTORS),
        "role": st.sampled_from(ROLES),
        "clock_": st.sampled_from(CLOCKS),
        "new_role": st.sampled_from(NEW_ROLES),
        "path": st.sampled_from(["push", "relay", "county_import"]),
    }
)
WORK = st.fixed_dictionaries({"who": st.sampled_from(["t", "v2", "c"])})


@pytest.mark.timeout(1800)
@settings(max_examples=scaled(3), deadline=None, suppress_health_check=list(HealthCheck))
@given(steps=st.lists(st.one_of(FORGE, FORGE, FORGE, WORK), min_size=8, max_size=14))
def test_forged_claims_reach_no_replica_whatever_way_they_travel(steps):
    world = World()
    try:
        for step in steps:
            if "who" in step:
                world.honest_work(**step)
            else:
                world.forge(**step)
        world.drain_and_check()
    finally:
        world.close()
