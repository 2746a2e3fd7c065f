"""The wire format: segments, receipts, sealed envelopes — and every way they can be bad."""

from __future__ import annotations

import json
import zlib

import pytest

from schema import events as K
from schema.events import GENESIS, seal
from sync import envelope
from sync.crypto import KeyPair, unwrap_secret, wrap_secret
from sync.errors import ProtocolError
from sync.messages import make_receipt, make_segment, open_receipt, open_segment, segment_header
from sync.scope import GLOBAL, scope_of, township_of, visible
from tests.helpers import COUNTY, TOWN, VILLAGE, VILLAGE2

STATION = "0190a0a0-0000-7000-8000-000000000001"


def chain(n: int, start_prev: str = GENESIS, first: int = 1, body=None) -> list:
    out, prev = [], start_prev
    for i in range(n):
        ev = seal(
            id=f"ev-{first + i}",
            station=STATION,
            seq=first + i,
            prev=prev,
            at="2026-03-05T10:00:00+08:00",
            hlc=1000 + i,
            actor="u1",
            role="agent",
            org=VILLAGE,
            kind=K.CASE_REGISTERED,
            subject=f"case-{i}",
            body=body or {"n": i, "名字": "张三"},
        )
        out.append(ev)
        prev = ev.hash
    return out


def test_segment_round_trip_rebuilds_every_hash():
    key = KeyPair.generate()
    evs = chain(5)
    wire = json.loads(json.dumps(make_segment(evs, key, COUNTY)))  # through JSON, as on the wire
    assert "hash" not in wire["e"][0] and "prev" not in wire["e"][0]
    h, got = open_segment(wire, key.public.sign)
    assert (h.first, h.last, h.head, h.county) == (1, 5, evs[-1].hash, COUNTY)
    assert got == evs


def test_segment_later_in_chain_links_to_its_prev():
    key = KeyPair.generate()
    evs = chain(6)
    h, got = open_segment(make_segment(evs[3:], key, COUNTY), key.public.sign)
    assert h.prev == evs[2].hash and got == evs[3:]


@pytest.mark.parametrize("tamper", ["body", "header", "drop", "reorder", "other_key"])
def test_tampered_segments_are_refused(tamper):
    key = KeyPair.generate()
    wire = make_segment(chain(3), key, COUNTY)
    public = key.public.sign
    if tamper == "body":
        wire["e"][1]["body"]["n"] = 99
    elif tamper == "header":
        wire["h"] = wire["h"].replace('"first":1', '"first":2')
    elif tamper == "drop":
        wire["e"].pop()
    elif tamper == "reorder":
        wire["e"][0], wire["e"][1] = wire["e"][1], wire["e"][0]
    else:
        public = KeyPair.generate().public.sign
    with pytest.raises(ProtocolError) as e:
        open_segment(wire, public)
    assert e.value.code in ("signature", "malformed")
    assert e.value.message  # a Chinese reason


@pytest.mark.parametrize(
    "bad", [None, [], {"h": 1, "s": "x"}, {"h": "{}", "s": "AA=="}, {"h": "not json", "s": "x"}]
)
def test_malformed_segments_are_refused_cleanly(bad):
    with pytest.raises(ProtocolError):
        segment_header(bad)


def test_bad_event_types_are_malformed_not_crashes():
    key = KeyPair.generate()
    wire = make_segment(chain(2), key, COUNTY)
    wire["e"][0]["hlc"] = "1000"
    with pytest.raises(ProtocolError) as e:
        open_segment(wire, key.public.sign)
    assert e.value.code == "malformed"
    wire = make_segment(chain(2), key, COUNTY)
    wire["e"][0]["body"] = {"x": 1.5}
    with pytest.raises(ProtocolError):
        open_segment(wire, key.public.sign)


def test_receipts_are_deterministic_and_verified():
    county = KeyPair.generate()
    a = make_receipt(county, COUNTY, STATION, 7, "ab" * 32)
    assert a == make_receipt(county, COUNTY, STATION, 7, "ab" * 32)  # a re-sent segment gets the same receipt
    r = open_receipt(a, county.public.sign)
    assert (r.station, r.seq) == (STATION, 7)
    with pytest.raises(ProtocolError):
        open_receipt(a, KeyPair.generate().public.sign)
    forged = dict(a, h=a["h"].replace('"seq":7', '"seq":8'))
    with pytest.raises(ProtocolError):
        open_receipt(forged, county.public.sign)


def test_envelope_reaches_every_recipient_and_no_one_else():
    county, town, other = KeyPair.generate(), KeyPair.generate(), KeyPair.generate()
    payload = "张三 330522199001011234".encode() * 50
    blob = envelope.seal(
        payload, kind="bundle", sender=STATION, recipients=[county.public.enc, town.public.enc]
    )
    assert "张三".encode() not in blob and b"330522199001011234" not in blob
    assert len(blob) < len(payload)  # compressed
    for k in (county, town):
        opened = envelope.open_sealed(blob, k.enc_key, expect=("bundle",))
        assert opened.payload == payload and opened.sender == STATION
    with pytest.raises(ProtocolError) as e:
        envelope.open_sealed(blob, other.enc_key)
    assert e.value.code == "wrong_county"


@pytest.mark.parametrize("damage", ["truncate", "flip_body", "flip_header", "magic", "empty", "version"])
def test_damaged_envelopes_are_refused(damage):
    county = KeyPair.generate()
    blob = bytearray(envelope.seal(b"x" * 1000, kind="push", sender=STATION, recipients=[county.public.enc]))
    if damage == "truncate":
        blob = blob[: len(blob) // 2]
    elif damage == "flip_body":
        blob[-5] ^= 1
    elif damage == "flip_header":
        i = blob.index(b'"push"') + 2
        blob[i] ^= 1
    elif damage == "magic":
        blob[0] ^= 1
    elif damage == "empty":
        blob = bytearray()
    else:
        blob[6] = 9
    with pytest.raises(ProtocolError) as e:
        envelope.open_sealed(bytes(blob), county.enc_key)
    assert e.value.code in ("malformed", "version", "wrong_county")


def test_decompression_bomb_is_refused(monkeypatch):
    county = KeyPair.generate()
    monkeypatch.setattr(envelope, "MAX_PAYLOAD", 10_000)
    blob = envelope.seal(b"\0" * 1_000_000, kind="push", sender=STATION, recipients=[county.public.enc])
    with pytest.raises(ProtocolError) as e:
        envelope.open_sealed(blob, county.enc_key)
    assert e.value.code == "too_large"
    assert zlib  # the payload compresses ~1000:1, which is the point of the test


def test_wrapped_secret_needs_the_passphrase(monkeypatch):
    monkeypatch.setenv("COUNTY_KDF_COST", "low")
    doc = wrap_secret(b"k" * 64, "县中心管理口令2026", label="county")
    assert unwrap_secret(doc, "县中心管理口令2026", label="county") == b"k" * 64
    with pytest.raises(ProtocolError):
        unwrap_secret(doc, "wrong passphrase", label="county")
    with pytest.raises(ProtocolError):
        unwrap_secret(doc, "县中心管理口令2026", label="other")


def test_scope_rules():
    assert scope_of(K.CASE_REGISTERED, "c1", station_org=VILLAGE, case_scope=None) == VILLAGE
    assert scope_of(K.CASE_FORWARDED, "c1", station_org=TOWN, case_scope=VILLAGE) == VILLAGE
    assert scope_of(K.CASE_DECIDED, "c1", station_org=COUNTY, case_scope=VILLAGE) == VILLAGE
    assert scope_of(K.USER_ADDED, "u1", station_org=VILLAGE, case_scope=None) == GLOBAL
    for kind, org, case in [
        (K.CASE_ACCEPTED, VILLAGE2, VILLAGE),
        (K.CASE_ACCEPTED, VILLAGE, None),
        (K.CATALOG_PUBLISHED, COUNTY, None),
        ("evil.kind", VILLAGE, None),
    ]:
        with pytest.raises(ProtocolError):
            scope_of(kind, "c1", station_org=org, case_scope=case)
    assert visible(VILLAGE, GLOBAL) and visible(VILLAGE, VILLAGE) and not visible(VILLAGE2, VILLAGE)
    assert visible(TOWN, VILLAGE) and visible(COUNTY, VILLAGE) and not visible(VILLAGE, TOWN)
    assert township_of(VILLAGE) == TOWN and township_of(COUNTY) == "" and township_of(GLOBAL) == ""
