"""Enrollment, online and with request/response files: a forged or mismatched answer stores nothing."""

from __future__ import annotations

import json

import pytest

from schema.errors import UserError
from schema.org import Role
from station.replication import enroll as enrolling
from station.replication import identity as I
from station.replication.runner import sync_now
from station.store.keyslots import KeySlots, recover_data_key
from sync import enrollment
from sync.client import Offline
from sync.crypto import KeyPair, b64
from sync.errors import ProtocolError
from sync.messages import sign_doc
from tests.helpers import COUNTY, TOWN, VILLAGE, VILLAGE2, make_station
from tests.station.sync_kit import PASSPHRASE, reopen

CJK = range(0x4E00, 0xA000)


def not_enrolled(session) -> None:
    assert not I.enrolled(session)
    assert session.store.meta(I.COUNTY) is None and session.store.meta(I.KEYPAIR) is None
    assert not session.slots.has_recovery


def test_online_enrollment_stores_keys_county_url_and_recovery_slot(tmp_path, county):
    s = make_station(tmp_path / "v")
    code = county.code(VILLAGE, "village")
    result = enrolling.enroll_online(s, county.url, code.lower().replace("-", " "))  # typed loosely
    assert result.county_code == COUNTY and result.level == "village" and not result.reenrolled
    assert "测试县" in result.text()
    kp, c = I.require(s)
    assert c.station == county.county.station and c.sign_pub == county.county.public.sign
    assert c.recovery_pub == county.county.recovery_pub
    row = county.station_row(s.config.station_id)
    assert row.sign_pub == kp.public.to_dict()["sign_pub"] and row.org == VILLAGE
    # the URL is remembered in station.json, the private key only inside the encrypted database
    cfg = json.loads((tmp_path / "v" / "station.json").read_text())
    assert cfg["county_url"] == county.url
    assert kp.to_bytes().hex() not in (tmp_path / "v" / "station.json").read_text()
    # the county's recovery key opens the station's data key
    from sync.server.keystore import unlock_recovery

    slots = KeySlots.load(tmp_path / "v" / "keyslots.json")
    assert bytes(recover_data_key(slots, unlock_recovery(county.cdb, PASSPHRASE))) == bytes(s.data_key())
    s.close()
    with reopen(tmp_path / "v") as again:
        assert I.enrolled(again)


@pytest.mark.parametrize("case", ["wrong_code", "used_code", "wrong_org"])
def test_refused_codes_store_nothing(tmp_path, county, case):
    s = make_station(tmp_path / "v")
    if case == "wrong_code":
        code = "ABCD-EFGH-JKMN"
    elif case == "used_code":
        code = county.code(VILLAGE, "village")
        other = make_station(tmp_path / "o", org=VILLAGE)
        enrolling.enroll_online(other, county.url, code)
        other.close()
    else:
        code = county.code(VILLAGE2, "village")
    with pytest.raises(ProtocolError) as e:
        enrolling.enroll_online(s, county.url, code)
    assert e.value.code == "code" and any(ord(c) in CJK for c in e.value.message)
    not_enrolled(s)
    s.close()


def test_malformed_code_and_unreachable_server(tmp_path):
    s = make_station(tmp_path / "v")
    with pytest.raises(UserError, match="登记码应为12位"):
        enrolling.enroll_online(s, "http://127.0.0.1:9", "ABC")
    with pytest.raises(Offline) as e:
        enrolling.enroll_online(s, "http://127.0.0.1:9", "ABCD-EFGH-JKMN")
    assert "无法连接县中心" in e.value.message
    not_enrolled(s)
    s.close()


def test_offline_enrollment_with_request_and_response_files(tmp_path, county):
    from sync.server import registry

    s = make_station(tmp_path / "v")
    code = county.code(VILLAGE, "village")
    (tmp_path / "usb").mkdir()
    req = enrolling.write_request(s, tmp_path / "usb", code)
    assert req.parent == tmp_path / "usb" and req.exists()
    assert I.pending_enrollment(s) and not I.enrolled(s)
    # at the county: the admin answers the request file (what `county-center enroll --request-file` does)
    answer = registry.enroll(county.cdb, county.county, json.loads(req.read_text()), url=county.url)
    resp = tmp_path / "usb" / "answer.json"
    resp.write_text(json.dumps(answer, ensure_ascii=False))
    result = enrolling.apply_response_file(s, resp)
    assert result.url == county.url and I.enrolled(s) and I.pending_enrollment(s) is None
    assert s.config.county_url == county.url
    report = sync_now(s)
    assert report.ok, report.messages
    s.close()


def _forged_answers(county, s, code):
    """(name, wire) answers that must all be refused, for the request ``s`` has under way."""
    from dataclasses import replace

    wire = I.pending_enrollment(s)["request"]
    request = enrollment.read_request(wire)
    good_county = county.county.info(county.url)
    liar = KeyPair.generate()
    real = county.county.unlocked
    key = enrollment.derive(code, COUNTY).key
    guessed = enrollment.derive("ZZZZ-ZZZZ-ZZZZ", COUNTY).key

    def answer(signer, cty, *, k=key, req=request, level="village"):
        return enrollment.make_answer(signer, k, req, county=cty, level=level)

    tampered = answer(real, good_county)
    tampered["h"] = tampered["h"].replace('"level":"village"', '"level":"county"')
    other_county = {**good_county, "code": "330523000000"}
    liar_county = {**good_county, **liar.public.to_dict(), "recovery_pub": b64(b"r" * 32)}
    other_request = enrollment.make_request(
        KeyPair.generate(),
        enrollment.derive(code, COUNTY),
        station="0190a0a0-0000-7000-8000-00000000beef",
        org=VILLAGE,
        name="另一台",
        at="2026-03-05",
    )
    return [
        ("a relay without the code, naming itself", answer(liar, liar_county, k=guessed)),
        ("the real county's keys signed by someone else", answer(liar, good_county)),
        (
            "a liar naming itself with the real signature",
            answer(liar, liar_county) | {"s": answer(real, good_county)["s"]},
        ),
        ("tampered after signing", tampered),
        ("without its MAC", {k: v for k, v in answer(real, good_county).items() if k != "m"}),
        ("for another code", answer(real, good_county, k=guessed)),
        ("for another station", answer(real, good_county, req=enrollment.read_request(other_request))),
        ("for another org", answer(real, good_county, req=replace(request, org=VILLAGE2))),
        ("from another county", answer(real, other_county)),
        ("no keys", answer(real, {"code": COUNTY, "station": "x"})),
        ("a bad level", answer(real, good_county, level="province")),
        ("not a signed doc", {"h": "{}", "s": ""}),
        ("wrong type", sign_doc({"t": "receipt", "v": 1}, real)),
    ]


def test_forged_or_mismatched_answers_are_refused(tmp_path, county):
    s = make_station(tmp_path / "v")
    code = county.code(VILLAGE, "village")
    (tmp_path / "usb").mkdir()
    enrolling.write_request(s, tmp_path / "usb" / "req.json", code)
    for name, wire in _forged_answers(county, s, code):
        f = tmp_path / "usb" / "answer.json"
        f.write_text(json.dumps(wire))
        with pytest.raises(UserError) as e:
            enrolling.apply_response_file(s, f)
        assert any(ord(c) in CJK for c in e.value.message), name
        assert not I.enrolled(s), name
        assert I.pending_enrollment(s), name  # the request is still open: a good answer can follow
    assert not s.slots.has_recovery


@pytest.mark.parametrize("content", [b"", b"\xff\xfe garbage", b'{"h": "x"', b"[]", b"null"])
def test_damaged_response_files(tmp_path, county, content):
    s = make_station(tmp_path / "v")
    enrolling.write_request(s, tmp_path / "req.json", county.code(VILLAGE, "village"))
    f = tmp_path / "answer.json"
    f.write_bytes(content)
    with pytest.raises(UserError):
        enrolling.apply_response_file(s, f)
    with pytest.raises(UserError, match="找不到"):
        enrolling.apply_response_file(s, tmp_path / "missing.json")
    not_enrolled(s)
    s.close()


def test_answer_without_a_request(tmp_path, county):
    s = make_station(tmp_path / "v")
    f = tmp_path / "answer.json"
    f.write_text("{}")
    with pytest.raises(UserError, match="没有待处理的离线登记申请"):
        enrolling.apply_response_file(s, f)
    s.close()


def test_reenrollment_replaces_the_key(tmp_path, county):
    s = make_station(tmp_path / "t", org=TOWN, role=Role.CLERK, login="clerk1", name="城关镇便民服务中心")
    enrolling.enroll_online(s, county.url, county.code(TOWN, "township"))
    old = I.keypair(s)
    assert sync_now(s).ok
    result = enrolling.enroll_online(s, county.url, county.code(TOWN, "township"))
    assert result.reenrolled
    new = I.keypair(s)
    assert new.public != old.public
    assert county.station_row(s.config.station_id).sign_pub == new.public.to_dict()["sign_pub"]
    report = sync_now(s)
    assert report.ok, report.messages
    assert I.revoked(s) is None  # the registry's history of our old key does not revoke us
    s.close()


def test_writing_the_request_twice_keeps_one_key(tmp_path, county):
    from sync.server import registry

    s = make_station(tmp_path / "v")
    code = county.code(VILLAGE, "village")
    first = enrolling.write_request(s, tmp_path / "r1.json", code)
    enrolling.write_request(s, tmp_path / "r2.json", code)  # the agent was not sure the first one worked
    answer = registry.enroll(county.cdb, county.county, json.loads(first.read_text()), url=county.url)
    f = tmp_path / "answer.json"
    f.write_text(json.dumps(answer))
    enrolling.apply_response_file(s, f)
    assert county.station_row(s.config.station_id).sign_pub == I.keypair(s).public.to_dict()["sign_pub"]
    assert sync_now(s).ok
    s.close()
