"""The station's HTTP client: timeouts, retries with backoff, refusals kept intact, bytes counted.

Against real HTTP servers on 127.0.0.1: a scripted one (answers written by the test) and the
real county center. Waits are recorded, never slept, and never timed.
"""

from __future__ import annotations

import socket
import time

import pytest

from schema import canonical
from schema.errors import UserError
from sync import api, envelope
from sync.client import Client, Offline, ServerFault, check_url
from sync.crypto import KeyPair
from sync.errors import ProtocolError
from tests.helpers import COUNTY, VILLAGE
from tests.station.sync_kit import CountyServer, Reply, ScriptedServer

CJK = range(0x4E00, 0xA000)


def chinese(text: str) -> bool:
    return any(ord(c) in CJK for c in text)


def client(url: str, **kw) -> tuple[Client, list[float]]:
    waits: list[float] = []
    c = Client(url, sleep=waits.append, rng=lambda: 1.0, connect_timeout=2, read_timeout=5, **kw)
    return c, waits


def scripted(*replies: Reply) -> ScriptedServer:
    """Answers the requests in order with ``replies`` (the last one repeats)."""
    todo = list(replies)

    def handler(method, path, body):
        return todo.pop(0) if len(todo) > 1 else todo[0]

    return ScriptedServer(handler)


HEALTH = Reply.json({"status": "ok", "county": COUNTY, "version": 1})


def test_health_and_time_against_the_real_county(tmp_path):
    with CountyServer(tmp_path) as county:
        c = Client(county.url)
        assert c.health()["county"] == COUNTY
        t = c.time()
        assert isinstance(t["ms"], int) and t["county"] == COUNTY
        assert c.requests == 2
        assert c.bytes_sent > 0 and c.bytes_received > 0
        # a refusal from the real county keeps its code and Chinese reason
        with pytest.raises(ProtocolError) as e:
            c.pull(b"not an envelope")
        assert e.value.code == "malformed" and chinese(e.value.message)
        c.close()


def test_5xx_is_retried_with_growing_jittered_backoff():
    with scripted(Reply(503, b"busy"), Reply(502, b"bad gateway"), HEALTH) as srv:
        c, waits = client(srv.url, retries=3, backoff=0.5)
        assert c.health()["status"] == "ok"
        assert len(srv.requests) == 3
        assert waits == [0.5, 1.0]  # rng()=1.0: the top of each full-jitter window
    with scripted(Reply(503, b"busy"), HEALTH) as srv:
        waits2: list[float] = []
        c = Client(srv.url, sleep=waits2.append, rng=lambda: 0.25, backoff=2.0)
        c.health()
        assert waits2 == [0.5]  # uniform in [0, 2.0]


def test_persistent_5xx_ends_as_a_server_fault():
    with scripted(Reply(500, b"oops")) as srv:
        c, waits = client(srv.url, retries=2)
        with pytest.raises(ServerFault) as e:
            c.health()
        assert len(srv.requests) == 3 and len(waits) == 2
        assert chinese(e.value.message) and "不会丢失" in e.value.message


def test_429_honours_retry_after():
    with scripted(
        Reply.json({"error": "rate", "reason": "请求过于频繁"}, 429, headers={"Retry-After": "7"}), HEALTH
    ) as srv:
        c, waits = client(srv.url)
        c.health()
        assert waits == [7.0]
    # a wait longer than we are willing to sit through: give up at once, with the county's reason
    with scripted(
        Reply.json({"error": "rate", "reason": "请求过于频繁，请稍后"}, 429, headers={"Retry-After": "3600"})
    ) as srv:
        c, waits = client(srv.url, max_retry_after=60)
        with pytest.raises(ProtocolError) as e:
            c.health()
        assert e.value.code == "rate" and e.value.message == "请求过于频繁，请稍后"
        assert waits == [] and len(srv.requests) == 1


def test_a_4xx_refusal_is_never_retried_and_keeps_its_detail():
    body = {"error": "gap", "reason": "县中心还缺第5条之前的记录", "send_from": 5}
    with scripted(Reply.json(body, 409)) as srv:
        c, waits = client(srv.url)
        with pytest.raises(ProtocolError) as e:
            c.pull(b"x")
        assert (e.value.code, e.value.message, e.value.detail) == ("gap", body["reason"], {"send_from": 5})
        assert len(srv.requests) == 1 and waits == []


def test_push_answer_with_per_segment_results_is_returned_even_on_4xx():
    answer = {
        "error": "fork",
        "reason": "分叉",
        "results": [
            {"station": "s", "status": "refused", "error": "fork", "reason": "分叉", "receipt": None}
        ],
    }
    with scripted(Reply.json(answer, 409)) as srv:
        c, _ = client(srv.url)
        assert c.push(b"sealed")["results"][0]["error"] == "fork"


def test_body_factory_is_called_for_every_attempt():
    made = []

    def blob():
        made.append(1)
        return b"sealed-%d" % len(made)

    with scripted(Reply(503, b""), Reply(200, envelope.MAGIC + b"rest", "application/octet-stream")) as srv:
        c, _ = client(srv.url)
        assert c.pull(blob).startswith(envelope.MAGIC)
        assert [r[2] for r in srv.requests] == [b"sealed-1", b"sealed-2"]


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_no_server_is_offline_with_a_chinese_message():
    c, waits = client(f"http://127.0.0.1:{_closed_port()}", retries=2)
    with pytest.raises(Offline) as e:
        c.health()
    assert "无法连接县中心" in e.value.message and "不会丢失" in e.value.message
    assert not e.value.timeout and len(waits) == 2 and c.requests == 3


def test_a_slow_county_is_offline_with_timeout_set():
    with scripted(Reply.json({"status": "ok", "county": COUNTY}, delay=1.5)) as srv:
        c = Client(srv.url, read_timeout=0.3, retries=1, sleep=lambda s: None)
        with pytest.raises(Offline) as e:
            c.health()
        assert e.value.timeout and "没有应答" in e.value.message


@pytest.mark.parametrize(
    "reply",
    [
        Reply(200, b"<html>Wi-Fi login</html>", "text/html"),  # a captive portal answering 200
        Reply(200, b"[1, 2]"),
        Reply(200, b'{"status": "down"}'),
    ],
)
def test_a_200_that_is_not_the_county_is_a_server_fault(reply):
    with scripted(reply) as srv:
        c, _ = client(srv.url)
        with pytest.raises(ServerFault) as e:
            c.health()
        assert "可能不是县中心" in e.value.message


def test_pull_answer_must_be_an_envelope():
    with scripted(Reply(200, b"<html>portal</html>", "text/html")) as srv:
        c, _ = client(srv.url)
        with pytest.raises(ServerFault):
            c.pull(b"x")


@pytest.mark.parametrize(
    "reply, fragment",
    [
        (Reply(404, b"not found", "text/plain"), "没有县中心服务"),
        (Reply(403, b"forbidden", "text/plain"), "没有说明原因"),
        (Reply(302, b"", headers={"Location": "https://elsewhere/"}), "重定向"),
    ],
)
def test_odd_answers_are_explained(reply, fragment):
    with scripted(reply) as srv:
        c, _ = client(srv.url)
        with pytest.raises(ServerFault) as e:
            c.health()
        assert fragment in e.value.message and len(srv.requests) == 1


@pytest.mark.parametrize("url", ["", "county.example.cn", "ftp://x", "http://"])
def test_bad_urls_are_refused_in_chinese(url):
    with pytest.raises(UserError) as e:
        Client(url)
    assert "县中心地址" in e.value.message


def test_bytes_are_counted_in_both_directions():
    payload = b"x" * 10_000
    with scripted(Reply(200, envelope.MAGIC + b"y" * 5000, "application/octet-stream")) as srv:
        c, _ = client(srv.url)
        c.pull(payload)
        assert 10_000 < c.bytes_sent < 11_000
        assert 5006 < c.bytes_received < 6000


def _enrolled_key(county: CountyServer, station: str = "st-1") -> KeyPair:
    from tests.sync.county_kit import enroll_direct, make_station

    st = make_station(VILLAGE, "village", id=station, name="东村")
    enroll_direct(county.cdb, county.county, st)
    return st.key


def test_a_real_push_is_sealed_and_answered(tmp_path):
    """The client carries a real sealed envelope to the real county and returns its answer."""
    with CountyServer(tmp_path) as county:
        key = _enrolled_key(county)
        blob = envelope.seal(
            canonical.encode(api.push_payload("st-1", [])),
            kind="push",
            sender="st-1",
            recipients=[county.county.public.enc],
            signer=key,
        )
        c = Client(county.url)
        assert c.push(blob) == {"results": []}
        # sealed to another key: the county cannot open it and says so
        other = envelope.seal(
            b"{}", kind="push", sender="st-1", recipients=[KeyPair.generate().public.enc], signer=key
        )
        with pytest.raises(ProtocolError) as e:
            c.push(other)
        assert e.value.code == "wrong_county" and chinese(e.value.message)


def test_county_addresses_are_checked_before_anything_is_sent():
    assert check_url(" https://county.example.cn:8443/x/ ") == "https://county.example.cn:8443/x"
    assert check_url("http://10.0.0.5:8470") == "http://10.0.0.5:8470"
    # a code typed into the address field, a port out of range, a space, no scheme, another scheme
    for bad in ("http://vm:44159J8DT-98YT-W4X8", "http://vm:99999", "http://a b", "county.cn", "ftp://county.cn"):
        with pytest.raises(UserError, match="县中心地址"):
            check_url(bad)


def test_a_clock_far_from_the_countys_is_corrected_once_at_once(tmp_path):
    """A ``skew`` refusal carries the county's time: the client adopts it and re-sends at once (one retry)."""
    with CountyServer(tmp_path) as county:
        key = _enrolled_key(county)
        hour_behind = lambda: int(time.time() * 1000) - 3_600_000  # noqa: E731
        c, waits = client(county.url, now_ms=hour_behind)

        def sealed(cl: Client) -> bytes:
            payload = canonical.encode(api.push_payload("st-1", []))
            recipients = [county.county.public.enc]
            return envelope.seal(
                payload, kind="push", sender="st-1", recipients=recipients, signer=key, at_ms=cl.county_ms()
            )

        assert c.push(lambda: sealed(c)) == {"results": []}
        assert c.requests == 2 and waits == [] and abs(c.offset_ms - 3_600_000) < 60_000
        # a body that cannot be re-sealed is not re-sent: the refusal reaches the caller
        c2, _ = client(county.url, now_ms=hour_behind)
        with pytest.raises(ProtocolError) as e:
            c2.push(sealed(c2))
        assert e.value.code == "skew" and "县中心时间" in e.value.message and c2.requests == 1
