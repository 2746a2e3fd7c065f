"""A station whose clock is far from the county's still syncs: its signed requests carry county time
(its own clock corrected by the offset it measured), and a ``skew`` refusal — which names the
county's time — is corrected and retried once, at once. Against the real county center."""

from __future__ import annotations

from datetime import timedelta

from schema.case import State
from schema.org import Role
from station import clock
from station.replication import identity as I
from station.replication.push import pending_own
from station.replication.runner import sync_now
from station.services import cases
from sync.client import Client
from sync.server import audit
from tests.helpers import COUNTY, TOWN, VILLAGE
from tests.station.sync_kit import enrolled_station, ok, register_case


def skew_refusals(county) -> int:
    return sum(1 for r in audit.audit_rows(county.cdb, limit=1000) if r["code"] == "skew")


def test_a_clock_two_hours_slow_is_corrected_at_once_and_then_remembered(tmp_path, county, monkeypatch):
    v = enrolled_station(tmp_path / "v", county, org=VILLAGE)
    monkeypatch.setenv("STATION_NOW", clock.iso(clock.now() - timedelta(hours=2)))
    register_case(v, 1)
    client = Client(county.url)
    r = ok(sync_now(v, client))
    assert r.pushed > 0 and pending_own(v) == 0 and skew_refusals(county) == 1  # the first request only
    assert abs(I.int_meta(v, I.OFFSET, 0) - 2 * 3_600_000) < 120_000
    client = Client(county.url)
    ok(sync_now(v, client))
    assert skew_refusals(county) == 1 and client.requests == 1  # the measured offset is used from the start
    v.close()



def test_a_station_whose_clock_is_days_behind_can_act_on_what_it_pulled(tmp_path, county, monkeypatch):
    """The township's clock is right, the county office's PC is three days slow: after a pull its
    clock follows the county's time, so its own 接件 sorts after the township's 转报 it folds onto."""
    v = enrolled_station(tmp_path / "v", county, org=VILLAGE)
    t = enrolled_station(tmp_path / "t", county, org=TOWN, role=Role.CLERK, login="clerk1", name="城关镇")
    c = enrolled_station(tmp_path / "c", county, org=COUNTY, role=Role.REVIEWER, login="reviewer1", name="县")
    case = register_case(v, 1)
    cases.act(v, case.case_id, "forward", {"opinion": "请审核"})
    ok(sync_now(v, Client(county.url)))
    ok(sync_now(t, Client(county.url)))
    cases.act(t, case.case_id, "receive")
    forwarded = cases.act(t, case.case_id, "forward", {"opinion": "同意上报"})
    ok(sync_now(t, Client(county.url)))

    monkeypatch.setenv("STATION_NOW", clock.iso(clock.now() - timedelta(days=3)))
    ok(sync_now(c, Client(county.url)))
    received = cases.act(c, case.case_id, "receive")
    assert tuple(received.last_order) > tuple(forwarded.last_order)
    assert received.state is State.IN_PROGRESS
    for s in (v, t, c):
        s.close()
