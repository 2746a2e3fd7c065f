"""A station whose clock is far from the county's still syncs: its signed requests carry county time
(its own clock corrected by the offset it measured), and a ``skew`` refusal — which names the
county's time — is corrected and retried once, at once. Against the real county center."""

from __future__ import annotations

from datetime import timedelta

from station import clock
from station.replication import identity as I
from station.replication.push import pending_own
from station.replication.runner import sync_now
from sync.client import Client
from sync.server import audit
from tests.helpers import VILLAGE
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
