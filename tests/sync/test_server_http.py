"""The county center over HTTP: a real uvicorn on 127.0.0.1, on SQLite and PostgreSQL.

Every bad input is refused with a 4xx JSON reason and an audit row; none produces a 500.
"""

from __future__ import annotations

import json
import socket
import time
from urllib.parse import urlparse

import pytest
import requests

from schema import canonical
from schema import events as K
from schema.events import seal
from sync import api, enrollment, envelope
from sync.crypto import KeyPair, b64
from sync.messages import doc_header, make_segment, open_receipt, sign_doc
from sync.server import audit, registry
from tests.helpers import COUNTY, OTHER_COUNTY, TOWN, VILLAGE, VILLAGE2, differ

OCTET = {"Content-Type": api.OCTET}


def last_audit(cdb):
    rows = audit.audit_rows(cdb, limit=1)
    return rows[0] if rows else None


def assert_refused(r, status, code, cdb=None, *, endpoint=None, station=None):
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()
    assert body["error"] == code and any("\u4e00" <= ch <= "\u9fff" for ch in body["reason"]), body
    if cdb is not None:
        row = last_audit(cdb)
        assert row is not None and row["code"] == code and row["status"] == status, row
        if endpoint:
            assert row["endpoint"] == endpoint
        if station is not None:
            assert row["station"] == station
    return body


def post(server, path, data, headers=OCTET):
    return requests.post(server.url + path, data=data, headers=headers, timeout=30)


# -- health, time, OpenAPI -------------------------------------------------------------------------


def test_health_time_and_openapi(server):
    assert requests.get(server.url + "/v1/health").json() == {"status": "ok", "county": COUNTY, "version": 1}
    t = requests.get(server.url + "/v1/time").json()
    assert (
        t["county"] == COUNTY and abs(t["ms"] - time.time() * 1000) < 60_000 and t["now"].endswith("+08:00")
    )
    spec = requests.get(server.url + "/openapi.json").json()
    assert {"/v1/health", "/v1/time", "/v1/enroll", "/v1/push", "/v1/pull"} <= set(spec["paths"])
    r = requests.get(server.url + "/v1/nothing")
    assert_refused(r, 404, "not_found", server.cdb)
    assert_refused(requests.get(server.url + "/v1/push"), 405, "method", server.cdb)


# -- enrollment ---------------------------------------------------------------------------------------


def test_enroll_online(server, stations):
    st = stations(VILLAGE, "village", enroll=False, name="东村便民服务室")
    code = registry.make_code(server.cdb, server.county, org=VILLAGE, level="village")
    req = st.enroll_request(code)
    r = requests.post(server.url + "/v1/enroll", json=req, timeout=30)
    assert r.status_code == 200, r.text
    answer = r.json()
    doc = doc_header(answer, "enrolled")
    county = doc["county"]
    # signed with the key it names, under the MAC keyed from the code, answering this very request
    opened = enrollment.open_answer(answer, enrollment.derive(code, COUNTY).key, req)
    assert opened.sign_pub == server.county.public.sign and opened.recovery_pub == server.county.recovery_pub
    assert "code" not in doc and code.replace("-", "") not in json.dumps(req)  # the code never travels
    assert (doc["station"], doc["org"], doc["level"]) == (st.id, VILLAGE, "village")
    assert (
        county["code"] == COUNTY
        and county["station"] == server.county.station
        and county["url"] == server.url
    )
    assert county["recovery_pub"]
    # a lost answer: the same request again gets the same answer (not "code already used")
    again = requests.post(server.url + "/v1/enroll", json=req, timeout=30)
    assert again.status_code == 200 and doc_header(again.json(), "enrolled") == doc
    # the registry event went on the county chain
    ev = server.cdb.m.Event.get(server.cdb.m.Event.subject == st.id)
    assert ev.kind == K.STATION_ENROLLED and json.loads(ev.data)["body"]["org"] == VILLAGE
    # another station cannot use the same code
    other = stations(VILLAGE, "village", enroll=False)
    r = requests.post(server.url + "/v1/enroll", json=other.enroll_request(code), timeout=30)
    assert_refused(r, 403, "code", server.cdb, endpoint="enroll", station=other.id)


def test_enroll_refusals(server, stations):
    cdb, county = server.cdb, server.county
    st = stations(VILLAGE, "village", enroll=False)
    url = server.url + "/v1/enroll"
    assert_refused(requests.post(url, json=st.enroll_request("AAAA-BBBB-CCCC")), 403, "code", cdb)
    code = registry.make_code(cdb, county, org=VILLAGE2, level="village")
    r = requests.post(url, json=st.enroll_request(code))
    assert "不符" in assert_refused(r, 403, "code", cdb)["reason"]
    code = registry.make_code(cdb, county, org=VILLAGE, level="village")
    cdb.m.EnrollCode.update(expires_at=0).execute()
    assert (
        "过期" in assert_refused(requests.post(url, json=st.enroll_request(code)), 403, "code", cdb)["reason"]
    )
    forged = st.enroll_request(registry.make_code(cdb, county, org=VILLAGE, level="village"))
    forged["h"] = forged["h"].replace(st.id, differ(st.id))
    assert_refused(requests.post(url, json=forged), 403, "signature", cdb)
    assert_refused(
        requests.post(url, data=b"{not json", headers={"Content-Type": "application/json"}),
        400,
        "malformed",
        cdb,
    )
    assert_refused(requests.post(url, json={"h": "[]", "s": ""}), 400, "malformed", cdb)
    assert_refused(requests.post(url, data=b"x" * 100_000), 413, "too_large", cdb)
    elsewhere = stations(OTHER_COUNTY[:6] + "101001", "village", enroll=False)
    assert_refused(requests.post(url, json=elsewhere.enroll_request(code)), 400, "wrong_county", cdb)
    # A relay that swaps in its own keys (re-signed: proof of possession holds) fails the code's MAC,
    # and so does a request stripped of it; neither uses up the code.
    code = registry.make_code(cdb, county, org=VILLAGE, level="village")
    real = st.enroll_request(code)
    liar = KeyPair.generate()
    swapped = sign_doc({**json.loads(real["h"]), **liar.public.to_dict()}, liar) | {"m": real["m"]}
    assert "登记码校验" in assert_refused(requests.post(url, json=swapped), 403, "code", cdb)["reason"]
    stripped = {k: v for k, v in real.items() if k != "m"}
    assert_refused(requests.post(url, json=stripped), 400, "malformed", cdb)
    assert cdb.m.Station.get_or_none(cdb.m.Station.id == st.id) is None
    assert requests.post(url, json=real).status_code == 200


# -- push ---------------------------------------------------------------------------------------------------


def test_push_store_duplicate_and_receipts(server, stations):
    v = stations(VILLAGE, "village")  # seq 1–2: its start (station.initialised, user.added)
    for _ in range(2):
        v.register()
    status, body = server.client.push(v, [v.segment(1, 2, county=COUNTY), v.segment(3, 4, county=COUNTY)])
    assert status == 200 and [r["status"] for r in body["results"]] == ["stored", "stored"]
    receipts = [open_receipt(r["receipt"], server.county.public.sign) for r in body["results"]]
    assert [(r.seq, r.head) for r in receipts] == [(2, v.events[1].hash), (4, v.events[3].hash)]
    status, again = server.client.push(v, [v.segment(county=COUNTY)])  # a retry after a lost answer
    assert status == 200 and again["results"][0]["status"] == "duplicate"
    assert again["results"][0]["receipt"] == body["results"][1]["receipt"]
    assert server.cdb.m.Event.select().where(server.cdb.m.Event.station == v.id).count() == 4


def test_push_refusals_each_with_reason_and_audit(server, stations):
    cdb, county = server.cdb, server.county
    v, v2 = stations(VILLAGE, "village"), stations(VILLAGE2, "village")
    reg = v.register("c1")
    for _ in range(4):
        v.register()
    status, _ = server.client.push(v, [v.segment(1, 2, county=COUNTY)])
    assert status == 200

    def push(st, segs, **kw):
        status, body = server.client.push(st, segs, **kw)
        return status, body

    # gap
    status, body = push(v, [v.segment(4, 5, county=COUNTY)])
    assert (status, body["error"], body["send_from"]) == (409, "gap", 3)
    assert body["results"][0]["send_from"] == 3 and last_audit(cdb)["code"] == "gap"
    # forged signature
    status, body = push(v, [make_segment(v.events[2:], KeyPair.generate(), COUNTY)])
    assert (status, body["error"]) == (403, "signature")
    # out of scope: the sibling village acts on v's case
    v2.record(K.CASE_ACCEPTED, reg.subject, {})
    status, body = push(v2, [v2.segment(county=COUNTY)])
    assert (status, body["error"]) == (403, "scope") and last_audit(cdb)["station"] == v2.id
    # wrong county in the segment header
    status, body = push(v, [v.segment(3, 5, county=OTHER_COUNTY)])
    assert (status, body["error"]) == (400, "wrong_county")
    # unknown station
    ghost = stations(VILLAGE, "village", enroll=False)
    ghost.register()
    status, body = push(ghost, [ghost.segment(county=COUNTY)])
    assert (status, body["error"]) == (403, "unknown_station")
    # mixed: one good, one refused → 4xx of the refusal, receipts for what was stored
    status, body = push(v, [v.segment(3, 5, county=COUNTY), v2.segment(county=COUNTY)])
    assert status == 403 and body["error"] == "scope"
    assert [r["status"] for r in body["results"]] == ["stored", "refused"] and body["results"][0]["receipt"]
    # fork: seq 5 again, with other content
    alt = seal(
        **{**v.events[3].unsigned(), "seq": 5, "prev": v.events[3].hash, "id": "alt-5", "body": {"x": 1}}
    )
    forked = make_segment(v.events[:4] + [alt], v.key, COUNTY)
    status, body = push(v, [forked])
    assert (status, body["error"]) == (409, "fork")
    assert any(a["kind"] == "fork" for a in audit.alarms(cdb, station=v.id))
    # revoked
    registry.revoke(cdb, county, v.id, "测试吊销")
    status, body = push(v, [v.segment(1, 5, county=COUNTY)])
    assert (status, body["error"]) == (403, "revoked") and "测试吊销" in body["reason"]
    assert cdb.m.Event.select().where(cdb.m.Event.station == v.id).count() == 5
    codes = {row["code"] for row in audit.audit_rows(cdb)}
    assert {"gap", "signature", "scope", "wrong_county", "unknown_station", "fork", "revoked"} <= codes
    assert "王秀英" not in json.dumps(audit.audit_rows(cdb), ensure_ascii=False)


@pytest.mark.parametrize("damage", ["truncate", "flip", "empty", "garbage", "wrong_type", "other_recipient"])
def test_damaged_envelopes(server, stations, damage):
    v = stations(VILLAGE, "village")
    v.register()
    blob = bytearray(v.push_blob(server.county, [v.segment(county=COUNTY)]))
    if damage == "truncate":
        blob = blob[: len(blob) // 2]
    elif damage == "flip":
        blob[-3] ^= 0x40
    elif damage == "empty":
        blob = bytearray()
    elif damage == "garbage":
        blob = bytearray(b"\x00\xff" * 500)
    elif damage == "wrong_type":
        blob = bytearray(
            envelope.seal(
                b"{}", kind="bundle", sender=v.id, recipients=[server.county.public.enc], signer=v.key
            )
        )
    else:
        blob = bytearray(
            envelope.seal(
                b"{}", kind="push", sender=v.id, recipients=[KeyPair.generate().public.enc], signer=v.key
            )
        )
    r = post(server, "/v1/push", bytes(blob))
    expected = {
        "truncate": "malformed",
        "flip": "signature",
        "empty": "malformed",
        "garbage": "malformed",
        "wrong_type": "malformed",
        "other_recipient": "wrong_county",
    }[damage]
    assert r.status_code in (400, 403) and r.json()["error"] == expected, r.text
    assert last_audit(server.cdb)["endpoint"] == "push"


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        b"[1,2]",
        b'{"t":"push","v":1}',
        b'{"t":"push","v":9,"from":"x","segments":[]}',
        b'{"t":"push","v":1,"from":"x","segments":[1,"a",null,{}]}',
        b"[" * 100_000,
    ],
)
def test_malformed_push_payloads(server, stations, payload):
    """Signed by an enrolled station, so the payload gets past the envelope and reaches the parser."""
    v = stations(VILLAGE, "village")
    payload = payload.replace(b'"from":"x"', b'"from":"' + v.id.encode() + b'"')
    blob = envelope.seal(
        payload, kind="push", sender=v.id, recipients=[server.county.public.enc], signer=v.key
    )
    r = post(server, "/v1/push", blob)
    assert 400 <= r.status_code < 500, r.text
    assert r.json()["error"] in ("malformed", "version")


def test_oversized_bodies_are_refused_before_reading(make_server, stations):
    srv = make_server(max_request_bytes=50_000)
    v = stations(VILLAGE, "village")
    # a declared length over the limit: answered without the body ever being sent
    host, port = urlparse(srv.url).hostname, urlparse(srv.url).port
    with socket.create_connection((host, port), timeout=10) as s:
        s.sendall(
            b"POST /v1/push HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
            b"Content-Length: 1000000000\r\n\r\n"
        )
        data = b""
        while b'"reason"' not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        answer = data.decode("utf-8", "replace")
    assert answer.startswith("HTTP/1.1 413") and '"too_large"' in answer

    # an endless chunked body is cut off once far over the limit
    with socket.create_connection((host, port), timeout=10) as s:
        s.sendall(b"POST /v1/push HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        for _ in range(25):
            s.sendall(b"2710\r\n" + b"x" * 10_000 + b"\r\n")  # 250 KB, no final chunk
        data = b""
        while b'"reason"' not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    assert data.startswith(b"HTTP/1.1 413") and b'"too_large"' in data

    # a body somewhat over the limit, declared or chunked: read, dropped, and answered cleanly
    def chunks():
        for _ in range(15):
            yield b"x" * 10_000

    for data in (b"x" * 150_000, chunks()):
        r = requests.post(srv.url + "/v1/push", data=data, headers=OCTET, timeout=30)
        assert_refused(r, 413, "too_large", srv.cdb)
    # too many events in one segment
    for _ in range(3):
        v.register()
    seg = v.segment(county=COUNTY)
    seg["h"] = seg["h"].replace(f'"last":{len(v.events)}', '"last":5000')
    status, body = srv.client.push(v, [seg])
    assert (status, body["error"], body["results"][0]["station"]) == (413, "too_large", v.id)


def test_rate_limit_answers_429_with_retry_after(make_server, stations):
    srv = make_server(rate_per_second=0.5, rate_burst=3)
    v = stations(VILLAGE, "village")
    v.register()
    seg = v.segment(county=COUNTY)
    statuses = [srv.client.push(v, [seg])[0] for _ in range(3)]
    assert statuses == [200, 200, 200]
    r = post(srv, "/v1/push", v.push_blob(srv.county, [seg]))
    # refused before its signature was checked: the audit row names the address, not the claimed station
    body = assert_refused(r, 429, "rate", srv.cdb, endpoint="push", station="")
    assert last_audit(srv.cdb)["remote"] == "127.0.0.1"
    assert int(r.headers["Retry-After"]) >= 1 and body["retry_after"] >= 1
    # another station is not affected
    v2 = stations(VILLAGE2, "village")
    v2.register()
    assert srv.client.push(v2, [v2.segment(county=COUNTY)])[0] == 200


# -- pull ---------------------------------------------------------------------------------------------------------


def test_pull_over_http_and_on_behalf(server, stations):
    v, t = stations(VILLAGE, "village"), stations(TOWN, "township")
    reg = v.register("c1")
    t.record(K.CASE_ACCEPTED, reg.subject, {})
    assert server.client.push(v, [v.segment(county=COUNTY)])[0] == 200
    assert server.client.push(t, [t.segment(county=COUNTY)])[0] == 200
    events, cursor, _ = server.client.pull_all(t, limit=2)
    assert [e["kind"] for e in events if e["station"] == v.id and e["kind"].startswith("case.")] == [
        K.CASE_REGISTERED
    ]
    assert server.client.pull(t, cursor)["events"] == []
    assert server.cdb.m.Station.get_by_id(t.id).last_cursor == cursor
    r = post(server, "/v1/pull", t.pull_blob(server.county, 0, behalf=v.id))
    assert r.status_code == 200
    ret = v.open_return(server.county, r.content)
    assert any(e["station"] == t.id for p in ret["pages"] for e in p["events"])
    # a village cannot pull for its township
    r = post(server, "/v1/pull", v.pull_blob(server.county, 0, behalf=t.id))
    assert_refused(r, 403, "scope", server.cdb, endpoint="pull")


def test_pull_refusals(server, stations):
    v = stations(VILLAGE, "village")
    ghost = stations(VILLAGE2, "village", enroll=False)
    assert_refused(
        post(server, "/v1/pull", ghost.pull_blob(server.county)), 403, "unknown_station", server.cdb
    )
    impostor = stations(VILLAGE, "village", enroll=False)
    impostor.id = v.id  # claims v's id, signs with another key
    assert_refused(post(server, "/v1/pull", impostor.pull_blob(server.county)), 403, "signature", server.cdb)
    assert_refused(
        post(server, "/v1/pull", v.pull_blob(server.county, county_code=OTHER_COUNTY)),
        400,
        "wrong_county",
        server.cdb,
    )
    bad = envelope.seal(
        canonical.encode({"h": "{}", "s": ""}),
        kind="pull",
        sender=v.id,
        recipients=[server.county.public.enc],
        signer=v.key,
    )
    assert_refused(post(server, "/v1/pull", bad), 400, "malformed", server.cdb)
    registry.revoke(server.cdb, server.county, v.id)
    assert_refused(
        post(server, "/v1/pull", v.pull_blob(server.county)), 403, "revoked", server.cdb, station=v.id
    )


def test_hostile_strings_in_refusals_are_answered_and_audited(server, stations):
    """A lone surrogate or NUL a client puts where the reason quotes it must not turn into a 500."""
    v = stations(VILLAGE, "village")
    v.register()
    seg = v.segment(county=COUNTY)
    seg["h"] = seg["h"].replace(f'"county":"{COUNTY}"', '"county":"\\ud800\\u0000"')  # JSON escapes
    seg["s"] = b64(v.key.sign(seg["h"].encode()))  # signed, so it reaches the county check
    status, body = server.client.push(v, [seg])
    assert (status, body["error"]) == (400, "wrong_county")
    row = last_audit(server.cdb)
    assert row["code"] == "wrong_county" and "\x00" not in row["reason"]
    r = requests.get(server.url + "/v1/%00%ED%A0%80")
    assert r.status_code == 404 and r.json()["error"] == "not_found"
