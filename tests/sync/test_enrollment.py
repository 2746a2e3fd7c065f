"""The enrollment protocol (sync.enrollment) on its own: the code stays home, both sides prove it."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from schema.errors import ValidationError
from sync import enrollment
from sync.crypto import KeyPair, b64, x25519_public
from sync.errors import ProtocolError
from sync.messages import sign_doc
from tests.helpers import COUNTY, OTHER_COUNTY, VILLAGE, VILLAGE2, differ

CODE = "K7QX-M2PD-9TRW"
OTHER_CODE = "K7QX-M2PD-9TRX"
STATION = "0190a0a0-0000-7000-8000-000000000001"


def request(key: KeyPair | None = None, code: str = CODE, **over):
    key = key or KeyPair.generate()
    fields = dict(station=STATION, org=VILLAGE, name="东村便民服务室", at="2026-03-05T09:00:00+08:00")
    fields.update(over)
    return key, enrollment.make_request(key, enrollment.derive(code, COUNTY), **fields)


def county_info(county: KeyPair, recovery: bytes) -> dict:
    return {
        "code": COUNTY,
        "name": "测试县",
        **county.public.to_dict(),
        "recovery_pub": b64(recovery),
        "station": "county-chain",
        "url": "http://county",
    }


def answer_to(wire, *, code: str = CODE, county: KeyPair | None = None, recovery: bytes = b"r" * 32):
    county = county or KeyPair.generate()
    req = enrollment.read_request(wire)
    key = enrollment.derive(code, COUNTY).key
    return enrollment.make_answer(county, key, req, county=county_info(county, recovery), level="village")


def test_codes_are_normalised_and_checked():
    assert enrollment.normalize_code(" k7qx m2pd-9trw ") == "K7QXM2PD9TRW"
    assert enrollment.format_code("K7QXM2PD9TRW") == CODE
    for bad in ("", "K7QX-M2PD", "K7QX-M2PD-9TRW-2", "K7QX-M2PD-9TR0", "KIQX-M2PD-9TRW"):
        with pytest.raises(ValidationError, match="登记码应为12位"):
            enrollment.normalize_code(bad)


def test_the_stretched_code_depends_on_code_and_county_and_spelling_does_not_matter():
    one = enrollment.derive(CODE, COUNTY)
    assert enrollment.derive("k7qxm2pd9trw", COUNTY) == one
    assert len(one.code_id) == 32 and len(one.key) == 32
    others = [enrollment.derive(OTHER_CODE, COUNTY), enrollment.derive(CODE, OTHER_COUNTY)]
    for other in others:
        assert other.code_id != one.code_id and other.key != one.key
    assert one.key.hex() not in repr(one) and CODE not in repr(one)


def test_the_request_carries_no_code_and_proves_it():
    key, wire = request()
    doc = json.loads(wire["h"])
    assert "code" not in doc and enrollment.normalize_code(CODE) not in json.dumps(wire)
    req = enrollment.read_request(wire)
    assert req.keys == key.public and req.station == STATION and req.org == VILLAGE
    enrollment.check_request(req, enrollment.derive(CODE, COUNTY).key)
    with pytest.raises(ProtocolError) as e:
        enrollment.check_request(req, enrollment.derive(OTHER_CODE, COUNTY).key)
    assert e.value.code == "code" and "登记码校验" in e.value.message
    _, again = request(key)
    assert json.loads(again["h"])["nonce"] != doc["nonce"]  # every request is fresh


@pytest.mark.parametrize("change", ["station", "org", "keys"])
def test_a_request_changed_and_re_signed_fails_the_code(change):
    key, wire = request()
    doc = json.loads(wire["h"])
    liar = KeyPair.generate()
    if change == "station":
        doc["station"] = differ(STATION)
    elif change == "org":
        doc["org"] = VILLAGE2
    else:
        doc.update(liar.public.to_dict())
    forged = sign_doc(doc, liar if change == "keys" else key) | {"m": wire["m"]}
    req = enrollment.read_request(forged)  # the signature is fine ...
    with pytest.raises(ProtocolError, match="登记码校验"):  # ... the code's MAC is not
        enrollment.check_request(req, enrollment.derive(CODE, COUNTY).key)


def test_requests_that_cannot_be_read_are_malformed():
    key, wire = request()
    for bad in (
        {k: v for k, v in wire.items() if k != "m"},
        sign_doc({**json.loads(wire["h"]), "code_id": "ABC"}, key) | {"m": wire["m"]},
        sign_doc({**json.loads(wire["h"]), "sign_pub": "xx"}, key) | {"m": wire["m"]},
    ):
        with pytest.raises(ProtocolError) as e:
            enrollment.read_request(bad)
        assert e.value.code == "malformed"
    with pytest.raises(ProtocolError) as e:
        enrollment.read_request({**wire, "s": sign_doc({}, KeyPair.generate())["s"]})
    assert e.value.code == "signature"


def test_the_answer_is_accepted_only_with_the_code_and_for_this_request():
    _, wire = request()
    county = KeyPair.generate()
    answer = answer_to(wire, county=county)
    key = enrollment.derive(CODE, COUNTY).key
    got = enrollment.open_answer(answer, key, wire)
    assert got.sign_pub == county.public.sign and got.recovery_pub == b"r" * 32
    assert (got.station, got.org, got.level) == (STATION, VILLAGE, "village")

    def refused(ans, k=key, req=wire) -> str:
        with pytest.raises(ProtocolError) as e:
            enrollment.open_answer(ans, k, req)
        assert e.value.code == "enroll"
        return e.value.message

    # Someone who saw the request but not the code: any county key, any recovery key, no valid MAC.
    assert "登记码校验" in refused(answer_to(wire, code=OTHER_CODE))
    assert "登记码校验" in refused(answer, enrollment.derive(OTHER_CODE, COUNTY).key)
    assert "登记码校验" in refused({k: v for k, v in answer.items() if k != "m"})
    tampered = dict(answer, h=answer["h"].replace('"level":"village"', '"level":"county"'))
    assert "登记码校验" in refused(tampered)
    # The code is right but the answer is for another request of ours (or another station's).
    _, second = request()
    assert "不是对本站这次登记申请的答复" in refused(answer_to(second), req=wire)
    # A MAC over a header signed by another key than the one it names.
    liar = KeyPair.generate()
    resigned = dict(answer, s=sign_doc(json.loads(answer["h"]), liar)["s"])
    assert "签名校验失败" in refused(resigned)
    assert "登记答复无效" in refused({"h": "{}", "s": ""})


def test_the_county_keeps_the_confirmation_key_sealed_to_itself():
    secret = enrollment.derive(CODE, COUNTY)
    county = KeyPair.generate()
    sealed = enrollment.seal_key(secret.key, county.public.enc, secret.code_id)
    assert secret.key.hex() not in sealed and b64(secret.key) not in sealed
    assert enrollment.open_key(sealed, county.enc_key, secret.code_id) == secret.key
    with pytest.raises(Exception):  # noqa: B017 - another county's key, or another code id: no key
        enrollment.open_key(sealed, X25519PrivateKey.generate(), secret.code_id)
    with pytest.raises(Exception):  # noqa: B017
        enrollment.open_key(sealed, county.enc_key, differ(secret.code_id))


def test_the_fingerprint_covers_all_three_county_keys():
    keys = [b"s" * 32, b"e" * 32, x25519_public(X25519PrivateKey.generate())]
    fp = enrollment.fingerprint(*keys)
    groups = fp.split(" ")
    assert len(groups) == 5 and all(len(g) == 4 for g in groups) and fp == fp.upper()
    for i in range(3):
        other = list(keys)
        other[i] = bytes([keys[i][0] ^ 1]) + keys[i][1:]
        assert enrollment.fingerprint(*other) != fp
