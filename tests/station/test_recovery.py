"""Lockout and county recovery, end to end: the one agent of a village PC, a real county center.

The station side runs through the real ``station`` CLI, the county side through the real
``county-center`` CLI on the same database the real server (uvicorn on 127.0.0.1) serves. The
attack tests sign what they like with real keys.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from schema import events as K
from station.cli.main import main as station_main
from station.replication.runner import sync_now
from station.store import keyslots as ks
from station.store.keyslots import KeySlots
from sync import recovery as wire_format
from sync.crypto import KeyPair
from sync.server import recovery as county_recovery
from sync.server.cli import main as county_main
from tests.helpers import PIN, VILLAGE, differ
from tests.station.sync_kit import PASSPHRASE, enrolled_station, ok, register_case

NEW_PIN = "Xin-2026-mima"


class Run:
    def __init__(self, capsys, monkeypatch, data: Path, county) -> None:
        self.capsys, self.monkeypatch, self.data, self.county = capsys, monkeypatch, data, county

    def station(self, *args: str, pin: str | None = PIN, new_pin: str | None = None):
        for name, value in (("STATION_PIN", pin), ("STATION_NEW_PIN", new_pin)):
            if value is None:
                self.monkeypatch.delenv(name, raising=False)
            else:
                self.monkeypatch.setenv(name, value)
        self.capsys.readouterr()
        rc = station_main(["--data-dir", str(self.data), "--json", *args])
        out, err = self.capsys.readouterr()
        return rc, (json.loads(out) if out.strip().startswith("{") else out), err

    def county_cli(self, *args: str):
        self.monkeypatch.setenv("COUNTY_PASSPHRASE", PASSPHRASE)
        self.capsys.readouterr()
        rc = county_main(["--db", self.county.db_url, *args])
        out, err = self.capsys.readouterr()
        return rc, out, err


@pytest.fixture
def village(tmp_path, county, capsys, monkeypatch, cli_logging):
    """The one agent of a village PC, enrolled and synced once (the county knows the agent)."""
    root = tmp_path / "village"
    with enrolled_station(root, county, org=VILLAGE) as s:
        register_case(s)
        ok(sync_now(s))
    return Run(capsys, monkeypatch, root, county)


def lock_out(root: Path) -> None:
    """Ten wrong PINs, the last one just now: the agent is locked out."""
    now = datetime.now(UTC)
    for i in range(ks.MAX_FAILURES):
        with pytest.raises((ks.WrongPin, ks.LockedOut)):
            KeySlots.load(root / ks.FILE_NAME).unlock("agent1", "000999", now=now - timedelta(minutes=10 * (9 - i)))


def events_of_kind(root: Path, kind: str) -> list[dict]:
    from station.session import unlock

    with unlock(root, "agent1", NEW_PIN) as s:
        rows = s.db.execute_sql("SELECT body FROM event WHERE kind = ? ORDER BY seq", (kind,)).fetchall()
    return [json.loads(r[0]) for r in rows]


def test_locked_out_agent_recovers_through_two_files(village, tmp_path):
    lock_out(village.data)
    rc, _, err = village.station("case", "list")
    assert rc == 2 and "已被锁定15分钟" in err  # the right PIN waits too

    usb = tmp_path / "usb"
    usb.mkdir()
    rc, started, err = village.station("recover", "--request-file", str(usb), pin=None, new_pin=NEW_PIN)
    assert rc == 0, err
    request_file, code = Path(started["file"]), started["check_code"]
    assert request_file.parent == usb and len(code) == 9

    answer_file = usb / "answer.json"
    # Without the code read out over the phone (non-interactive): nothing is written.
    rc, out, err = village.county_cli("recover", str(request_file), "--response-file", str(answer_file))
    assert rc == 2 and "--check" in err and not answer_file.exists()
    assert "东村便民服务室" in out and code in out and "agent1" in out
    rc, _, err = village.county_cli("recover", str(request_file), "--response-file", str(answer_file),
                                    "--check", differ(code))
    assert rc == 2 and "核对码不一致" in err and not answer_file.exists()
    rc, out, err = village.county_cli("recover", str(request_file), "--response-file", str(answer_file),
                                      "--check", code.replace("-", ""))
    assert rc == 0, err
    assert answer_file.exists()

    # The answer alone is useless: the wrong new PIN does not open it (and is counted).
    rc, _, err = village.station("recover", "--response-file", str(answer_file), pin=None, new_pin=differ(NEW_PIN))
    assert rc == 2 and "新PIN不正确" in err
    rc, done, err = village.station("recover", "--response-file", str(answer_file), pin=None, new_pin=NEW_PIN)
    assert rc == 0 and done["recovered"], err

    rc, cases, err = village.station("case", "list", pin=NEW_PIN)
    assert rc == 0 and len(cases["items"]) == 1, err
    rc, _, err = village.station("case", "list", pin=PIN)
    assert rc == 2 and "PIN不正确" in err
    # Audited on both sides.
    resets = events_of_kind(village.data, K.USER_PIN_RESET)
    assert resets[-1]["how"] == "recovered" and resets[-1]["request"] == started["request_id"]
    rc, out, _ = village.county_cli("--json", "audit")
    codes = [r["code"] for r in json.loads(out) if r["endpoint"] == "recovery"]
    assert "recovery_approved" in codes
    # A used answer cannot be applied again.
    rc, _, err = village.station("recover", "--response-file", str(answer_file), pin=None, new_pin=NEW_PIN)
    assert rc == 2 and "没有待处理的恢复申请" in err


def test_locked_out_agent_recovers_online(village):
    lock_out(village.data)
    rc, started, err = village.station("recover", "--online", pin=None, new_pin=NEW_PIN)
    assert rc == 0, err
    assert started["url"] == village.county.url

    rc, waiting, err = village.station("recover", "--fetch", pin=None, new_pin=NEW_PIN)
    assert rc == 4 and waiting["status"] == "pending", err
    assert waiting["check_code"] == started["check_code"]  # shown again for the phone call

    rc, out, err = village.county_cli("--json", "recover", "--list")
    listed = json.loads(out)
    assert rc == 0 and [r["id"] for r in listed] == [started["request_id"]]
    assert listed[0]["check_code"] == started["check_code"] and listed[0]["login"] == "agent1"
    assert listed[0]["staff_known"] is True
    rc, _, err = village.county_cli("recover", "--approve", started["request_id"], "--check", started["check_code"])
    assert rc == 0, err

    rc, done, err = village.station("recover", "--fetch", pin=None, new_pin=NEW_PIN)
    assert rc == 0 and done["recovered"], err
    rc, cases, err = village.station("case", "list", pin=NEW_PIN)
    assert rc == 0 and len(cases["items"]) == 1, err
    assert events_of_kind(village.data, K.USER_PIN_RESET)[-1]["how"] == "recovered"
    rc, out, _ = village.county_cli("--json", "audit")
    codes = [r["code"] for r in json.loads(out) if r["endpoint"] == "recovery"]
    assert {"recovery_requested", "recovery_approved"} <= set(codes)


def test_refused_online_request_says_so(village):
    rc, started, err = village.station("recover", "--online", pin=None, new_pin=NEW_PIN)
    assert rc == 0, err
    rc, _, err = village.county_cli("recover", "--refuse", started["request_id"], "--reason", "电话无人接听")
    assert rc == 0, err
    rc, _, err = village.station("recover", "--fetch", pin=None, new_pin=NEW_PIN)
    assert rc == 2 and "县中心拒绝了这次恢复申请：电话无人接听" in err
    rc, _, err = village.station("case", "list", pin=PIN)  # nothing changed for the agent
    assert rc == 0, err


def test_a_new_request_replaces_the_old_one(village, tmp_path):
    rc, first, _ = village.station("recover", "--request-file", str(tmp_path / "a.json"), pin=None, new_pin=NEW_PIN)
    rc, second, _ = village.station("recover", "--request-file", str(tmp_path / "b.json"), pin=None,
                                    new_pin=NEW_PIN)
    assert rc == 0 and first["request_id"] != second["request_id"]
    rc, _, err = village.county_cli("recover", str(tmp_path / "a.json"), "--response-file", str(tmp_path / "ra"),
                                    "--check", first["check_code"])
    assert rc == 0, err
    rc, _, err = village.station("recover", "--response-file", str(tmp_path / "ra"), pin=None, new_pin=NEW_PIN)
    assert rc == 2 and "不是该用户最近一次申请的答复" in err


# -- attacks, with real keys ------------------------------------------------------------------------


def request_of(village, tmp_path) -> dict:
    path = tmp_path / "req.json"
    rc, _, err = village.station("recover", "--request-file", str(path), pin=None, new_pin=NEW_PIN)
    assert rc == 0, err
    return json.loads(path.read_text("utf-8"))


def test_county_refuses_a_request_not_certified_by_the_station(village, tmp_path):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    genuine = request_of(village, tmp_path)
    doc = json.loads(genuine["h"])
    # An attacker with a copy of the data directory but not the station key certifies their own key.
    rogue = Ed25519PrivateKey.generate()
    rogue_pub = rogue.public_key().public_bytes_raw()
    doc["cert"] = wire_format.requester_cert(KeyPair.generate(), doc["station"], rogue_pub)
    forged = wire_format.make_request(
        rogue, doc["cert"], request_id=doc["id"], station=doc["station"], org=doc["org"],
        station_name=doc["station_name"], county=doc["county"], user_id=doc["user"]["user_id"],
        login=doc["user"]["login"], name=doc["user"]["name"], role=doc["user"]["role"], at=doc["at"],
        eph=rogue_pub, slot=__import__("base64").b64decode(doc["slot"]),
    )
    path = tmp_path / "forged.json"
    path.write_text(json.dumps(forged), "utf-8")
    rc, _, err = village.county_cli("recover", str(path), "--response-file", str(tmp_path / "r"), "--check", "1")
    assert rc == 2 and "恢复申请无效" in err and "签名" in err
    # A genuine request with one byte of its text changed.
    tampered = dict(genuine, h=genuine["h"].replace(doc["station_name"], differ(doc["station_name"])))
    with pytest.raises(Exception, match="签名"):
        county_recovery.review(village.county.cdb, village.county.county, tampered)


def test_county_refuses_a_revoked_station(village, tmp_path):
    wire = request_of(village, tmp_path)
    village.county.revoke(json.loads(wire["h"])["station"])
    with pytest.raises(Exception, match="已被注销"):
        county_recovery.review(village.county.cdb, village.county.county, wire)


def test_station_refuses_an_answer_not_signed_by_its_county(village, tmp_path):
    wire = request_of(village, tmp_path)
    cdb, county = village.county.cdb, village.county.county
    from sync.server.keystore import unlock_recovery

    item = county_recovery.review(cdb, county, wire)
    recovery_key = unlock_recovery(cdb, PASSPHRASE)
    genuine = county_recovery.answer(cdb, county, recovery_key, item, check=item.request.check_code)
    # Same content, signed by another county key.
    from dataclasses import replace

    other = replace(county, key=KeyPair.generate())
    forged = county_recovery.answer(cdb, other, recovery_key, item, check=item.request.check_code)
    for bad, why in ((forged, "签名"), (dict(genuine, s=forged["s"]), "签名")):
        path = tmp_path / "bad.json"
        path.write_text(json.dumps(bad), "utf-8")
        rc, _, err = village.station("recover", "--response-file", str(path), pin=None, new_pin=NEW_PIN)
        assert rc == 2 and why in err, err
    assert KeySlots.load(village.data / ks.FILE_NAME).pending_recovery("agent1") is not None  # still usable
    path = tmp_path / "good.json"
    path.write_text(json.dumps(genuine), "utf-8")
    rc, _, err = village.station("recover", "--response-file", str(path), pin=None, new_pin=NEW_PIN)
    assert rc == 0, err


def test_recovery_endpoint_refuses_garbage_with_4xx_and_an_audit_row(village):
    import requests

    url = village.county.url + "/v1/recovery"
    for body in (b"{", b"[" * 5000 + b"]" * 5000, json.dumps({"h": "{}", "s": ""}).encode(), b"x" * 40_000):
        r = requests.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=10)
        assert 400 <= r.status_code < 500 and set(r.json()) >= {"error", "reason"}, (r.status_code, r.text)
    r = requests.get(url + "/" + "0" * 32, timeout=10)
    assert r.status_code == 400 and r.json()["error"] == "not_found"
    r = requests.get(url + "/not-an-id", timeout=10)
    assert r.status_code == 400
    audit = json.loads(village.county_cli("--json", "audit")[1])
    assert sum(1 for a in audit if a["endpoint"] == "recovery" and a["status"] >= 400) >= 6


def test_a_backup_restored_on_a_new_pc_is_recovered_and_bound_to_that_pc(device_store, village, tmp_path):
    """Slots bound to the old PC's device secret cannot open on a new PC; the county recovery can."""
    import shutil

    import keyring

    from tests.keyring_backend import MemoryKeyring

    slots_doc = json.loads((village.data / ks.FILE_NAME).read_text("utf-8"))
    assert slots_doc["users"][0]["slot"]["device"] is True  # bound to the old PC
    new_pc = tmp_path / "new-pc"
    shutil.copytree(village.data, new_pc)
    keyring.set_keyring(MemoryKeyring())  # the new PC's own, empty credential store
    village.data = new_pc
    rc, _, err = village.station("case", "list")
    assert rc == 2 and "设备密钥" in err  # the right PIN alone does not open it here

    rc, started, err = village.station("recover", "--request-file", str(tmp_path / "req.json"), pin=None,
                                       new_pin=NEW_PIN)
    assert rc == 0, err
    rc, _, err = village.county_cli("recover", str(tmp_path / "req.json"), "--response-file",
                                    str(tmp_path / "answer.json"), "--check", started["check_code"])
    assert rc == 0, err
    rc, _, err = village.station("recover", "--response-file", str(tmp_path / "answer.json"), pin=None,
                                 new_pin=NEW_PIN)
    assert rc == 0, err
    rc, cases, err = village.station("case", "list", pin=NEW_PIN)
    assert rc == 0 and len(cases["items"]) == 1, err
    after = json.loads((new_pc / ks.FILE_NAME).read_text("utf-8"))
    assert after["users"][0]["slot"]["device"] is True and after["device"]["check"] != slots_doc["device"]["check"]
