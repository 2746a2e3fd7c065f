"""Sync convergence: one county, two townships, four villages, a faulty network.

A hypothesis state machine drives real stations (encrypted data directories) and a real
county center (uvicorn on 127.0.0.1) through random local work, partial syncs, lost
answers, replayed and reordered requests, USB bundles relayed by townships, and county
``return`` files carried down by hand. At the end everyone syncs over a good network until
nothing moves, and then:

- the county holds every event of every station exactly once, and every station's own
  events are marked synced;
- every replica holds exactly the events in its scope (a village: its cases and what is
  published to all; a township: everything under it; the county office: everything);
- every case's projection is identical on every replica that holds it.
"""

from __future__ import annotations

import json
import random
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from schema import rules
from schema.errors import UserError
from schema.events import Event
from schema.org import Role
from station import clock
from station.replication import bundles, pull, push, runner
from station.services import cases
from sync.client import Client, Offline
from sync.scope import visible
from sync.server import bundles as county_bundles
from tests.helpers import COUNTY, LAND, PENSION, TOWN, TOWN2, VILLAGE, VILLAGE2, VILLAGE_T2, id_number, scaled
from tests.station.sync_kit import CountyServer, enrolled_station

VILLAGE_T2B = "330522102002"
ORGS = {
    "C": (COUNTY, Role.REVIEWER),
    "T1": (TOWN, Role.CLERK),
    "T2": (TOWN2, Role.CLERK),
    "V1": (VILLAGE, Role.AGENT),
    "V2": (VILLAGE2, Role.AGENT),
    "V3": (VILLAGE_T2, Role.AGENT),
    "V4": (VILLAGE_T2B, Role.AGENT),
}
VILLAGES = ["V1", "V2", "V3", "V4"]
TOWNSHIP_OF = {"V1": "T1", "V2": "T1", "V3": "T2", "V4": "T2"}


class FlakyClient(Client):
    """The real HTTP client on a bad network: answers get lost, old requests arrive again.

    A lost answer means the county DID process the request but the station never heard back
    (the classic cause of duplicates); a replay re-sends an earlier request before the
    current one (retries that arrive late, reordered).
    """

    def __init__(
        self, url: str, rng: random.Random, *, lose: float, replay: float, sent: list[tuple[str, bytes]]
    ):
        super().__init__(url, retries=0)
        self.rng, self.lose, self.replay, self.sent = rng, lose, replay, sent

    def _fault(self, path: str, blob: bytes) -> None:
        if self.sent and self.rng.random() < self.replay:
            old_path, old = self.rng.choice(self.sent)
            try:
                super().push(old) if old_path == "push" else super().pull(old)
            except UserError:
                pass  # a refused replay is fine; it must just never corrupt anything
        self.sent.append((path, blob))

    def push(self, blob):
        data = blob() if callable(blob) else blob
        self._fault("push", data)
        answer = super().push(data)
        if self.rng.random() < self.lose:
            raise Offline("模拟：上传的回复在网络上丢失")
        return answer

    def pull(self, blob):
        data = blob() if callable(blob) else blob
        self._fault("pull", data)
        answer = super().pull(data)
        if self.rng.random() < self.lose:
            raise Offline("模拟：下载的回复在网络上丢失")
        return answer


class Network(RuleBasedStateMachine):
    @initialize(seed=st.integers(0, 2**32 - 1))
    def setup(self, seed):
        # Segments and pages of one or two events: every transfer is partial and resumed.
        self._limits = (push.MIN_BATCH, pull.MIN_LIMIT)
        push.MIN_BATCH, pull.MIN_LIMIT = 1, 1
        self.rng = random.Random(seed)
        self.tmp = Path(tempfile.mkdtemp(prefix="converge-"))
        self.county = CountyServer(self.tmp / "county")
        self.st = {}
        for name, (org, role) in ORGS.items():
            self.st[name] = enrolled_station(
                self.tmp / name, self.county, org=org, role=role, login=name.lower(), name=f"{name}站"
            )
        self.sent: list[tuple[str, bytes]] = []
        self.n = 0

    def teardown(self):
        if not hasattr(self, "st"):
            return
        try:
            self.drain_and_check()
        finally:
            push.MIN_BATCH, pull.MIN_LIMIT = self._limits
            for s in self.st.values():
                s.close()
            self.county.stop()
            shutil.rmtree(self.tmp, ignore_errors=True)

    # -- local work -----------------------------------------------------------------------------

    @rule(v=st.sampled_from(VILLAGES), item=st.sampled_from([PENSION, LAND]), forward=st.booleans())
    def register(self, v, item, forward):
        s = self.st[v]
        self.n += 1
        view = cases.register(
            s,
            item_code=item,
            name="张三",
            id_number=id_number(seq=f"{self.n % 1000:03d}"),
            received=[m for m in _materials(item)],
        )
        cases.act(s, view.case_id, "accept")
        if forward:
            cases.act(s, view.case_id, "forward", {"opinion": "材料齐全"})

    @rule(who=st.sampled_from(list(ORGS)), pick=st.randoms(use_true_random=False), n=st.integers(1, 4))
    def act(self, who, pick, n):
        """Up to ``n`` actions this station may take now on cases it holds (random case, kind, args)."""
        s = self.st[who]
        for _ in range(n):
            choices = []
            for (case_id,) in s.db.execute_sql("SELECT case_id FROM case_view ORDER BY case_id").fetchall():
                view = cases.get(s, case_id)
                allowed = {a.kind for a in rules.allowed_actions(view, s.author, clock.iso(clock.now()))}
                choices += [(case_id, k) for k in sorted(allowed) if k in ACTIONS]
            if not choices:
                return
            case_id, kind = pick.choice(choices)
            try:
                ACTIONS[kind](s, case_id)
                event(f"{who[0]} {kind}")  # hypothesis statistics: which transitions the runs covered
            except UserError:
                pass  # a rule the local view does not allow after all: refused locally, nothing stored

    @rule()
    def everyone_syncs(self):
        """A good day: every station syncs once over a good network, villages first."""
        for name in ["V1", "V2", "V3", "V4", "T1", "T2", "C"]:
            runner.sync_now(self.st[name], client=Client(self.county.url))

    # -- moving data ---------------------------------------------------------------------------

    @rule(
        who=st.sampled_from(list(ORGS)),
        lose=st.sampled_from([0.0, 0.3]),
        replay=st.sampled_from([0.0, 0.3]),
        batch=st.sampled_from([None, 1, 2]),
    )
    def sync(self, who, lose, replay, batch):
        s = self.st[who]
        if batch:  # tiny segments and pages: many partial round trips
            s.store.set_meta("sync.batch", str(batch))
            s.store.set_meta("sync.pull_limit", str(batch))
        client = FlakyClient(self.county.url, self.rng, lose=lose, replay=replay, sent=self.sent)
        try:
            runner.sync_now(s, client=client)
        finally:
            client.close()

    @rule(v=st.sampled_from(VILLAGES))
    def usb_to_township(self, v):
        out = self.tmp / f"usb-{v}-{self.rng.random():.6f}"
        out.mkdir()
        try:
            bundles.export_bundle(self.st[v], out)
        except UserError:
            return
        bundles.import_path(self.st[TOWNSHIP_OF[v]], out)

    @rule(v=st.sampled_from(VILLAGES))
    def usb_to_county_and_back(self, v):
        """The village's stick goes to the county center itself, and a return file comes back."""
        out = self.tmp / f"usb-c-{v}-{self.rng.random():.6f}"
        out.mkdir()
        try:
            bundles.export_bundle(self.st[v], out)
        except UserError:
            return
        county_bundles.import_path(self.county.cdb, self.county.county, out)
        back = self.tmp / f"ret-{v}-{self.rng.random():.6f}"
        back.mkdir()
        county_bundles.export(self.county.cdb, self.county.county, self.st[v].config.station_id, back)
        bundles.import_path(self.st[v], back)

    @invariant()
    def own_chains_intact(self):
        for s in getattr(self, "st", {}).values():
            seq, _ = s.store.head()
            assert (
                s.db.execute_sql(
                    "SELECT count(*) FROM event WHERE station = ?", (s.config.station_id,)
                ).fetchone()[0]
                == seq
            )

    # -- the end -------------------------------------------------------------------------------

    def drain_and_check(self):
        # Good network: township relays first, then everyone, until nothing moves.
        for _ in range(6):
            for name in ["V1", "V2", "V3", "V4", "T1", "T2", "C", "T1", "T2", "V1", "V2", "V3", "V4"]:
                s = self.st[name]
                s.store.set_meta("sync.batch", "200")
                s.store.set_meta("sync.pull_limit", "500")
                report = runner.sync_now(s, client=Client(self.county.url), retry_blocked=True)
                assert report.outcome in ("ok", "refused"), report.messages
            if self._quiet():
                break
        assert self._quiet(), "replicas did not converge"

        county_events = all_events(self.county)
        ids = [e.id for e in county_events]
        assert len(ids) == len(set(ids)), "an event is stored twice at the county"
        by_station: dict[str, list[int]] = {}
        for e in county_events:
            by_station.setdefault(e.station, []).append(e.seq)
        for name, s in self.st.items():
            mine = [e for e in s.store.events(s.config.station_id)]
            assert sorted(by_station.get(s.config.station_id, [])) == [e.seq for e in mine], name
            unsynced = s.db.execute_sql(
                "SELECT count(*) FROM event WHERE station = ? AND synced = 0", (s.config.station_id,)
            ).fetchone()[0]
            assert unsynced == 0, f"{name}: {unsynced} own events never acknowledged"

        scope = scopes(self.county)  # event id -> scope
        for name, s in self.st.items():
            org = s.config.org
            expect = {
                e.id for e in county_events if e.station == s.config.station_id or visible(org, scope[e.id])
            }
            have = {e.id for e in s.store.events()}
            assert have == expect, f"{name}: missing {len(expect - have)}, extra {len(have - expect)}"

        views: dict[str, tuple] = {}
        for name, s in self.st.items():
            for row in s.db.execute_sql(
                "SELECT case_id, state, holder_org, holder_level, conflicts, due_date FROM case_view"
            ).fetchall():
                if row[0] in views:
                    assert views[row[0]] == row, f"{name} sees case {row[0]} differently"
                views[row[0]] = row
        registered = {e.subject for e in county_events if e.kind == "case.registered"}
        assert set(views) == registered

    def _quiet(self) -> bool:
        county_events = all_events(self.county)
        total = len(county_events)
        for s in self.st.values():
            if s.db.execute_sql(
                "SELECT count(*) FROM event WHERE station = ? AND synced = 0", (s.config.station_id,)
            ).fetchone()[0]:
                return False
        scope = scopes(self.county)
        for s in self.st.values():
            org = s.config.org
            want = sum(
                1 for e in county_events if e.station == s.config.station_id or visible(org, scope[e.id])
            )
            if s.store.event_count() != want:
                return False
        return total > 0


def all_events(county: CountyServer) -> list[Event]:
    E = county.cdb.m.Event
    return [Event.from_dict(json.loads(d)) for (d,) in E.select(E.data).order_by(E.pos).tuples()]


def scopes(county: CountyServer) -> dict[str, str]:
    E = county.cdb.m.Event
    return dict(E.select(E.id, E.scope).tuples())


def _materials(item: str) -> list[str]:
    from tests.helpers import material_names

    return material_names(item)


ACTIONS = {
    "case.forwarded": lambda s, c: cases.act(s, c, "forward", {"opinion": "同意转报"}),
    "case.returned": lambda s, c: cases.act(s, c, "return", {"reason": "材料不清晰，请重新扫描"}),
    "case.decided": lambda s, c: cases.act(s, c, "decide", {"outcome": "approved", "opinion": "符合条件"}),
    "case.delivered": lambda s, c: cases.act(s, c, "deliver", {"method": "村代办员代领"}),
    "case.accepted": lambda s, c: cases.act(s, c, "accept"),
    "case.received": lambda s, c: cases.act(s, c, "receive"),
}


Network.TestCase.settings = settings(
    max_examples=scaled(8),
    stateful_step_count=35,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
test_convergence = pytest.mark.timeout(1800)(Network.TestCase)
