"""Issue #8, findings 4, 7 and 10, against the county center: an attacker with real keys (its own,
or a station's it stole) sends compressed bombs, JSON nested thousands deep, replayed and forged
requests. Each is refused with a 4xx and a Chinese reason, costs the server next to nothing, and
blames where it came from rather than the station it names.

The memory test runs a real ``county-center serve`` process and reads its peak resident memory
(``VmHWM``): a functional bound (200 MB), not a timing. The rest use the real app on uvicorn in a
thread (``server`` fixture). Figures before/after: ``bench/attack_cost.py`` (BENCHMARKS.md).
"""

from __future__ import annotations

import time

import pytest
import requests

from schema import canonical
from sync import api
from sync.crypto import KeyPair
from sync.errors import ProtocolError
from sync.messages import make_segment
from sync.server import audit, replay
from tests.attacker import bomb, deep, memory_kb, raw_envelope, seal
from tests.helpers import COUNTY, TOWN, VILLAGE
from tests.sync.test_server_crash import ServerProcess
from tests.sync.test_server_http import assert_refused, post

OCTET = {"Content-Type": api.OCTET}
MEMORY_BOUND_KB = 200 * 1024


# -- finding 4: a few KB must not cost gigabytes ---------------------------------------------------------------


@pytest.mark.parametrize("backend", ["sqlite"])
def test_compressed_bombs_cost_the_county_nothing(county, stations, tmp_path):
    """32 KB took 904 MB and 96 KB took 2.5 GB on main: bodies were inflated (up to 256 MiB) and parsed
    before any signature was checked. Now the envelope's signature is checked first, and even a
    station's real key inflates no more than the request limit."""
    victim = stations(VILLAGE, "village")
    victim.register()
    enc, attacker = county.county.public.enc, KeyPair.generate()
    county.cdb.close()  # the server process owns the database
    server = ServerProcess(county.url, tmp_path / "server.log")
    try:
        before = memory_kb(server.proc.pid)
        attacks = [
            ("32 KB push bomb naming the victim", "push", victim.id, attacker, 32, 403, "signature"),
            ("96 KB push bomb naming the victim", "push", victim.id, attacker, 96, 403, "signature"),
            ("96 KB push bomb from nobody enrolled", "push", "ghost-1", attacker, 96, 403, "unknown_station"),
            ("96 KB pull bomb naming the victim", "pull", victim.id, attacker, 96, 403, "signature"),
            (
                "96 KB push bomb with the victim's stolen key",
                "push",
                victim.id,
                victim.key,
                96,
                413,
                "too_large",
            ),
        ]
        for name, kind, sender, key, kb, status, code in attacks:
            blob = seal(bomb(kb, wrapper=kind, sender=sender), kind=kind, sender=sender, to=[enc], key=key)
            assert len(blob) < (kb + 8) * 1024, name
            r = requests.post(f"{server.url}/v1/{kind}", data=blob, headers=OCTET, timeout=120)
            assert (r.status_code, r.json()["error"]) == (status, code), (name, r.text)
        peak = memory_kb(server.proc.pid)
        assert peak < MEMORY_BOUND_KB, f"peak {peak // 1024} MB (before the attacks {before // 1024} MB)"
        # and it still serves the victim
        honest = victim.push_blob(county.county, [victim.segment(county=COUNTY)])
        assert (
            requests.post(f"{server.url}/v1/push", data=honest, headers=OCTET, timeout=60).status_code == 200
        )
    finally:
        server.kill()


# -- finding 7: deep JSON is a 4xx with a reason -----------------------------------------------------------------


def test_deep_json_is_refused_with_a_reason_not_a_500(server, stations):
    """``{"h":"[[[…5000…]]]"}`` on /v1/enroll and a 6,000-deep envelope header on /v1/push were 500s."""
    r = requests.post(server.url + "/v1/enroll", json={"h": deep(5000), "s": "AAAA"}, timeout=30)
    assert "嵌套" in assert_refused(r, 400, "malformed", server.cdb, endpoint="enroll")["reason"]
    r = requests.post(
        server.url + "/v1/enroll", data=deep(5000), headers={"Content-Type": "application/json"}
    )
    assert_refused(r, 400, "malformed", server.cdb, endpoint="enroll")
    for path in ("/v1/push", "/v1/pull"):
        r = post(server, path, raw_envelope(deep(6000).encode()))
        assert "嵌套" in assert_refused(r, 400, "malformed", server.cdb, endpoint=path[4:])["reason"]
    # behind a valid signature of an enrolled station: the payload, a segment header, a pull request
    v = stations(VILLAGE, "village")
    enc = server.county.public.enc
    nested_segment = canonical.encode(
        {"t": "push", "v": 1, "from": v.id, "segments": [{"h": deep(6000), "s": ""}]}
    )
    for kind, payload in [
        ("push", deep(6000).encode()),
        ("push", nested_segment),
        ("pull", canonical.encode({"h": deep(6000), "s": ""})),
    ]:
        r = post(server, f"/v1/{kind}", seal(payload, kind=kind, sender=v.id, to=[enc], key=v.key))
        assert "嵌套" in assert_refused(r, 400, "malformed", server.cdb)["reason"], r.text


# -- finding 10: replays, and blame -------------------------------------------------------------------------------


def _pull(st, county, *, at_ms=None, key=None) -> bytes:
    key = key or st.key
    wire = api.pull_request(key, county=COUNTY, station=st.id, cursor=0)
    return seal(
        canonical.encode(wire), kind="pull", sender=st.id, to=[county.public.enc], key=key, at_ms=at_ms
    )


def test_a_replayed_pull_is_refused_and_moves_nothing(server, stations):
    """On main a signed pull request replayed later was answered again and moved last_seen/last_cursor."""
    v = stations(VILLAGE, "village")
    S = server.cdb.m.Station
    blob = _pull(v, server.county)
    assert post(server, "/v1/pull", blob).status_code == 200
    seen = S.get_by_id(v.id)
    assert seen.last_cursor is not None and seen.last_seen is not None
    time.sleep(0.01)
    assert_refused(post(server, "/v1/pull", blob), 409, "replay", server.cdb, endpoint="pull", station=v.id)
    # a request made 20 minutes ago (or replayed 20 minutes later): outside the window
    old = _pull(v, server.county, at_ms=int(time.time() * 1000) - 20 * 60_000)
    body = assert_refused(post(server, "/v1/pull", old), 403, "skew", server.cdb, endpoint="pull")
    assert abs(body["county_ms"] - time.time() * 1000) < 60_000 and "县中心时间" in body["reason"]
    after = S.get_by_id(v.id)
    assert (after.last_seen, after.last_cursor) == (seen.last_seen, seen.last_cursor)
    # the same pushed twice: the second is a replay too, even of an idempotent push
    v.register()
    push = v.push_blob(server.county, [v.segment(county=COUNTY)])
    assert post(server, "/v1/push", push).status_code == 200
    assert_refused(post(server, "/v1/push", push), 409, "replay", server.cdb, endpoint="push")


def test_forged_requests_naming_a_victim_blame_their_source_once(server, stations):
    """On main each forged request naming a victim raised a 签名不符 alarm against the victim, without limit."""
    victim, town = stations(VILLAGE, "village"), stations(TOWN, "township")
    attacker = KeyPair.generate()
    # a township relays a segment that claims to be the victim's but is signed by someone else
    victim.register()
    status, body = server.client.push(town, [make_segment(victim.events, attacker, COUNTY)])
    assert (status, body["results"][0]["error"]) == (403, "signature")
    # forged pull requests naming the victim, again and again
    for _ in range(30):
        r = post(server, "/v1/pull", _pull(victim, server.county, key=attacker))
        assert_refused(r, 403, "signature", server.cdb, endpoint="pull", station="")
    alarms = audit.alarms(server.cdb)
    assert [(a["kind"], a["station"], a["source"]) for a in alarms] == [("signature", "", "127.0.0.1")]
    assert alarms[0]["detail"] == {"claimed": victim.id, "relayed_by": town.id}
    assert audit.alarms(server.cdb, station=victim.id) == []
    assert server.cdb.m.Station.get_by_id(victim.id).last_seen is None


def test_nonces_are_kept_for_the_window_then_forgotten(county, monkeypatch):
    """The nonce store (shared by every worker process): a nonce is refused while its request could
    still pass the time check, and forgotten after twice the window."""
    window, now = 900_000, int(time.time() * 1000)
    replay.check_fresh(county.cdb, "st-1", now, "a" * 32, window_ms=window)
    replay.check_fresh(county.cdb, "st-2", now, "a" * 32, window_ms=window)  # another station's: fine
    with pytest.raises(ProtocolError) as e:
        replay.check_fresh(county.cdb, "st-1", now - 1000, "a" * 32, window_ms=window)
    assert e.value.code == "replay"
    N = county.cdb.m.Nonce
    N.insert(station="st-1", nonce="b" * 32, at=now - 3 * window).execute()  # left from long ago
    monkeypatch.setattr(replay, "_last_purge", 0.0)
    replay.check_fresh(county.cdb, "st-1", now, "c" * 32, window_ms=window)
    assert sorted(n for (n,) in N.select(N.nonce).where(N.station == "st-1").tuples()) == ["a" * 32, "c" * 32]
    with pytest.raises(ProtocolError) as e:
        replay.check_fresh(county.cdb, "st-1", now, "not hex", window_ms=window)
    assert e.value.code == "malformed"
