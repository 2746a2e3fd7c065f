"""Key slots: unlock, counters, recovery, file robustness, and the atomic writer."""

from __future__ import annotations

import base64
import json
import logging
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from schema.errors import NotFoundError, ValidationError
from schema.org import Role
from station.store import atomicfile, slotfile
from station.store import keyslots as ks
from station.store.atomicfile import atomic_write
from station.store.keyslots import (
    KdfParams,
    KeySlots,
    LockedOut,
    RecoveryError,
    SlotFileError,
    SlotFileTooNew,
    UnlockDelayed,
    UserDisabled,
    WrongPin,
    new_data_key,
    recover_data_key,
    validate_pin,
)

T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
ADMIN_PIN = "Xiang-2026!"
AGENT_PIN = "739154"


@pytest.fixture(autouse=True)
def low_kdf(monkeypatch):
    monkeypatch.setenv("STATION_KDF_COST", "low")


@pytest.fixture
def path(tmp_path) -> Path:
    return tmp_path / ks.FILE_NAME


@pytest.fixture
def key() -> bytearray:
    return new_data_key()


@pytest.fixture
def slots(path, key) -> KeySlots:
    s = KeySlots.create(path, "st-430102001")
    s.add_user(user_id="u-admin", login="admin", name="李主任", role=Role.ADMIN, pin=ADMIN_PIN, data_key=key)
    s.add_user(user_id="u-agent", login="Wang.F", name="王芳", role=Role.AGENT, pin=AGENT_PIN, data_key=key)
    return s


def fail(slots: KeySlots, login: str, at: datetime) -> WrongPin | LockedOut:
    with pytest.raises((WrongPin, LockedOut)) as exc:
        slots.unlock(login, "000999", now=at)
    return exc.value


def edit(path: Path, change) -> None:
    doc = json.loads(path.read_text("utf-8"))
    change(doc)
    path.write_text(json.dumps(doc), "utf-8")


# -- unlocking ----------------------------------------------------------------


def test_round_trip_through_a_fresh_load(slots, path, key):
    info, got = KeySlots.load(path).unlock("wang.f", AGENT_PIN)  # login is case-insensitive
    assert got == key and isinstance(got, bytearray)
    assert (info.user_id, info.login, info.name, info.role) == ("u-agent", "Wang.F", "王芳", Role.AGENT)
    assert not info.disabled and info.failures == 0 and not info.locked
    assert [u.login for u in KeySlots.load(path).users()] == ["admin", "Wang.F"]
    assert KeySlots.load(path).station_id == "st-430102001"


def test_full_width_digits_from_an_ime_unlock_the_same_slot(slots, key):
    assert slots.unlock("Wang.F", "７３９１５４")[1] == key


def test_unknown_login(slots):
    with pytest.raises(NotFoundError, match="没有用户“nobody”"):
        slots.find("nobody")
    with pytest.raises(NotFoundError):
        slots.unlock("nobody", AGENT_PIN)


def test_wrong_pin_says_how_many_tries_are_left_and_is_persisted(slots, path):
    err = fail(slots, "Wang.F", T0)
    assert isinstance(err, WrongPin)
    assert err.remaining == 9 and err.message == "PIN不正确，还可尝试9次"
    assert KeySlots.load(path).find("Wang.F").failures == 1
    assert KeySlots.load(path).find("admin").failures == 0  # counters are per slot


def test_wrong_pin_runs_the_kdf_first(slots, monkeypatch):
    calls = []
    real = ks._derive
    monkeypatch.setattr(ks, "_derive", lambda *a: calls.append(1) or real(*a))
    fail(slots, "Wang.F", T0)
    assert calls == [1]


def test_correct_pin_resets_the_counter(slots, path):
    fail(slots, "Wang.F", T0)
    fail(slots, "Wang.F", T0)
    info, _ = slots.unlock("Wang.F", AGENT_PIN, now=T0)
    assert info.failures == 0 and KeySlots.load(path).find("Wang.F").failures == 0


def test_attempt_is_counted_before_the_pin_is_tried(slots, path, monkeypatch):
    def power_cut(*_):
        raise KeyboardInterrupt

    monkeypatch.setattr(ks, "_unwrap", power_cut)
    with pytest.raises(KeyboardInterrupt):
        slots.unlock("Wang.F", AGENT_PIN, now=T0)
    assert KeySlots.load(path).find("Wang.F").failures == 1


def test_delay_after_three_failures(slots, path, key, monkeypatch):
    for _ in range(3):
        fail(slots, "Wang.F", T0)  # the first three cost nothing but the KDF
    with pytest.raises(UnlockDelayed) as exc:
        slots.unlock("Wang.F", AGENT_PIN, now=T0)  # even the right PIN must wait
    assert exc.value.seconds == 1 and exc.value.message == "PIN错误次数过多，请等待1秒后再试"

    with monkeypatch.context() as m:
        m.setattr(ks, "_derive", lambda *a: pytest.fail("KDF run during the delay"))
        with pytest.raises(UnlockDelayed):
            slots.unlock("Wang.F", "000999", now=T0 + timedelta(seconds=0.5))
    assert KeySlots.load(path).find("Wang.F").failures == 3  # waiting attempts aren't counted

    t1 = T0 + timedelta(seconds=1)
    assert fail(slots, "Wang.F", t1).remaining == 6
    with pytest.raises(UnlockDelayed) as exc:  # 4 failures: 2 s from the last one
        slots.unlock("Wang.F", AGENT_PIN, now=t1 + timedelta(seconds=0.5))
    assert exc.value.seconds == 2
    assert slots.unlock("Wang.F", AGENT_PIN, now=t1 + timedelta(seconds=2))[1] == key


def test_clock_turned_back_waits_at_most_one_delay(slots):
    for i in range(5):
        fail(slots, "Wang.F", T0 + timedelta(hours=1, minutes=10 * i))
    with pytest.raises(UnlockDelayed) as exc:
        slots.unlock("Wang.F", AGENT_PIN, now=T0)
    assert exc.value.seconds == 4


def test_lock_after_ten_failures_is_temporary_and_grows(slots, path, key):
    t = T0
    for i in range(9):
        assert fail(slots, "Wang.F", t).remaining == 9 - i
        t += timedelta(minutes=10)
    err = fail(slots, "Wang.F", t)
    assert isinstance(err, LockedOut) and err.seconds == 15 * 60
    assert err.message.startswith("该用户已连续输错10次，已被锁定15分钟，请于")
    assert "向县中心申请恢复" in err.message
    assert KeySlots.load(path).find("Wang.F").locked
    with pytest.raises(LockedOut) as exc:
        slots.unlock("Wang.F", AGENT_PIN, now=t + timedelta(minutes=14))  # right PIN, still locked
    assert exc.value.seconds == 60
    # After the lock, one more guess; a wrong one locks for an hour, then 4 h, then a day each.
    for n, seconds in ((11, 3600), (12, 4 * 3600), (13, 24 * 3600), (14, 24 * 3600)):
        t += timedelta(seconds=ks._delay(n - 1))
        err = fail(slots, "Wang.F", t)
        assert isinstance(err, LockedOut) and (err.seconds, err.failures) == (seconds, n)
        with pytest.raises(LockedOut):
            slots.unlock("Wang.F", AGENT_PIN, now=t + timedelta(seconds=seconds - 1))
    info, got = slots.unlock("Wang.F", AGENT_PIN, now=t + timedelta(days=1))  # never locked for good
    assert got == key and info.failures == 0 and not info.locked


def test_a_higher_role_resets_a_locked_pin_at_once(slots, path, key):
    t = T0
    for _ in range(10):
        fail(slots, "Wang.F", t)
        t += timedelta(minutes=10)
    slots.reset_pin("Wang.F", "582046", key)
    info = KeySlots.load(path).find("Wang.F")
    assert info.failures == 0 and not info.locked
    assert slots.unlock("Wang.F", "582046", now=t)[1] == key


def test_reset_pin_replaces_the_old_pin(slots, path, key):
    old_salt = json.loads(path.read_text("utf-8"))["users"][1]["slot"]["salt"]
    slots.reset_pin("wang.f", "582046", key)
    assert json.loads(path.read_text("utf-8"))["users"][1]["slot"]["salt"] != old_salt
    assert isinstance(fail(slots, "Wang.F", T0), WrongPin)  # old PIN
    assert slots.unlock("Wang.F", "582046", now=T0)[1] == key


def test_disabled_user_cannot_unlock_and_keeps_no_key_material(slots, path, key):
    slots.disable("Wang.F")
    with pytest.raises(UserDisabled):
        slots.unlock("Wang.F", AGENT_PIN)
    with pytest.raises(UserDisabled):
        slots.reset_pin("Wang.F", "582046", key)
    entry = json.loads(path.read_text("utf-8"))["users"][1]
    assert entry["disabled"] is True and entry["slot"] is None
    assert KeySlots.load(path).find("Wang.F").disabled
    assert slots.unlock("admin", ADMIN_PIN)[1] == key


def test_slot_moved_to_another_user_does_not_open(slots, path):
    # Same PIN for both, so only the user id in the AAD tells the slots apart.
    _, unlocked = slots.unlock("admin", ADMIN_PIN)
    slots.reset_pin("admin", AGENT_PIN, unlocked)
    edit(path, lambda d: d["users"][1].update(slot=d["users"][0]["slot"]))
    with pytest.raises(WrongPin):
        KeySlots.load(path).unlock("Wang.F", AGENT_PIN)
    assert KeySlots.load(path).unlock("admin", AGENT_PIN)[1] == unlocked


def test_add_user_rules(slots, key):
    def add(**kw):
        args = dict(user_id="u-3", login="zhao", name="赵六", role=Role.CLERK, pin="582046", data_key=key)
        slots.add_user(**args | kw)

    with pytest.raises(ValidationError, match="已被使用"):
        add(login="ADMIN")
    with pytest.raises(ValidationError, match="已存在"):
        add(user_id="u-agent")
    for bad in ("", "a" * 33, "张三", "a b"):
        with pytest.raises(ValidationError, match="登录名"):
            add(login=bad)
    with pytest.raises(ValidationError, match="姓名"):
        add(name=" ")
    with pytest.raises(ValidationError, match="PIN"):
        add(pin="111111")
    with pytest.raises(ValueError, match="does not belong"):
        add(data_key=new_data_key())  # a caller bug that would lock the user out of the database
    add(login="zhao.liu-2_x")
    assert slots.find("ZHAO.LIU-2_X").role is Role.CLERK


def test_each_change_rereads_the_file(slots, path, key):
    ui = KeySlots.load(path)  # e.g. the login screen, open all day
    slots.reset_pin("Wang.F", "582046", key)  # e.g. the admin CLI
    fail(ui, "admin", T0)  # the UI writes its counter without undoing the reset
    assert KeySlots.load(path).unlock("Wang.F", "582046")[1] == key


def test_create_refuses_to_overwrite(slots, path):
    with pytest.raises(SlotFileError, match="已存在"):
        KeySlots.create(path, "st-other")


# -- recovery -------------------------------------------------------------------


def test_recovery_round_trip(slots, path, key):
    county = X25519PrivateKey.generate()
    assert not slots.has_recovery
    slots.set_recovery(county.public_key().public_bytes_raw(), key)
    assert KeySlots.load(path).has_recovery
    assert recover_data_key(KeySlots.load(path), county.private_bytes_raw()) == key
    assert recover_data_key(json.loads(path.read_text("utf-8")), county) == key  # the county's offline tool

    with pytest.raises(RecoveryError, match="不匹配"):
        recover_data_key(slots, X25519PrivateKey.generate().private_bytes_raw())


def test_recovery_slot_is_bound_to_its_station(slots, path, key, tmp_path):
    county = X25519PrivateKey.generate()
    slots.set_recovery(county.public_key().public_bytes_raw(), key)
    other = KeySlots.create(tmp_path / "other.json", "st-430102002")
    other.set_recovery(county.public_key().public_bytes_raw(), new_data_key())
    doc = json.loads(path.read_text("utf-8"))
    doc["recovery"] = json.loads((tmp_path / "other.json").read_text("utf-8"))["recovery"]
    with pytest.raises(RecoveryError):
        recover_data_key(doc, county)


def test_no_recovery_slot_and_bad_keys(slots, key):
    with pytest.raises(RecoveryError, match="没有恢复槽"):
        recover_data_key(slots, X25519PrivateKey.generate())
    with pytest.raises(ValidationError, match="公钥无效"):
        slots.set_recovery(b"short", key)
    slots.set_recovery(X25519PrivateKey.generate().public_key().public_bytes_raw(), key)
    with pytest.raises(RecoveryError, match="格式无效"):
        recover_data_key(slots, b"short")
    with pytest.raises(SlotFileError):
        recover_data_key({"format": "something else"}, X25519PrivateKey.generate())


# -- the file -------------------------------------------------------------------


def test_secrets_never_reach_disk_or_logs(slots, path, key, caplog):
    caplog.set_level(logging.DEBUG)
    county = X25519PrivateKey.generate()
    slots.set_recovery(county.public_key().public_bytes_raw(), key)
    slots.unlock("Wang.F", AGENT_PIN)
    fail(slots, "Wang.F", T0)
    slots.reset_pin("Wang.F", "582046", key)
    needles = [AGENT_PIN, ADMIN_PIN, "582046", key.hex(), key.hex().upper(), base64.b64encode(key).decode()]
    files = list(path.parent.iterdir())
    # No temp files left; the lock file and the disk-space reserve hold nothing.
    assert {f.name for f in files} == {"keyslots.json", "keyslots.json.bak", "keyslots.json.lock",
                                       "keyslots.json.reserve"}
    assert path.with_name("keyslots.json.reserve").read_bytes() == bytes(ks.RESERVE_BYTES)
    for f in files:
        raw = f.read_bytes()
        assert bytes(key) not in raw
        for needle in needles:
            assert needle.encode() not in raw, (f.name, needle)
    for needle in needles:
        assert needle not in caplog.text


@pytest.mark.parametrize(
    "damage",
    [
        lambda raw: b"",
        lambda raw: raw[: len(raw) // 2],  # truncated
        lambda raw: b"\xff\xfe" + raw,
        lambda raw: raw.replace(b'"nonce": "', b'"nonce": "!!'),
        lambda raw: json.dumps({"format": "station-keyslots", "version": 1}).encode(),
        lambda raw: json.dumps(["not", "an", "object"]).encode(),
    ],
)
def test_corrupt_file_without_backup(path, damage):
    s = KeySlots.create(path, "st-1")
    s.add_user(user_id="u", login="a", name="甲", role=Role.AGENT, pin=AGENT_PIN, data_key=new_data_key())
    path.with_name("keyslots.json.bak").unlink()
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(SlotFileError) as exc:
        KeySlots.load(path)
    assert (
        exc.value.message.startswith("密钥文件损坏或缺失：")
        and "请联系县中心使用恢复密钥" in exc.value.message
    )


def test_missing_file(path):
    with pytest.raises(SlotFileError, match="找不到"):
        KeySlots.load(path)


def test_tampered_kdf_cost_is_rejected(slots, path):
    edit(path, lambda d: d["users"][0]["slot"]["kdf"].update(memory_kib=2**40))
    path.with_name("keyslots.json.bak").unlink()
    with pytest.raises(SlotFileError):
        KeySlots.load(path)


def test_newer_version_asks_for_an_upgrade_and_never_falls_back(slots, path):
    edit(path, lambda d: d.update(version=ks.VERSION + 1))
    with pytest.raises(SlotFileTooNew, match="更新版本.*请升级本程序"):
        KeySlots.load(path)


def test_backup_fallback_when_main_file_is_corrupt(slots, path, key, caplog):
    path.write_bytes(path.read_bytes()[:40])
    with caplog.at_level(logging.WARNING):
        restored = KeySlots.load(path)
    assert restored.restored_from_backup and "using its .bak" in caplog.text
    # The backup is the previous generation: the agent added last is missing.
    assert [u.login for u in restored.users()] == ["admin"]
    assert restored.unlock("admin", ADMIN_PIN)[1] == key
    # That write repaired the main file and kept the good backup.
    assert not KeySlots.load(path).restored_from_backup
    assert json.loads(path.with_name("keyslots.json.bak").read_text("utf-8"))["users"][0]["login"] == "admin"


def test_revocations_do_not_come_back_through_the_backup(slots, path, key):
    slots.reset_pin("Wang.F", "582046", key)
    slots.disable("admin")
    path.write_bytes(b"{")
    restored = KeySlots.load(path)
    assert restored.restored_from_backup
    with pytest.raises(UserDisabled):
        restored.unlock("admin", ADMIN_PIN)
    with pytest.raises(WrongPin):
        restored.unlock("Wang.F", AGENT_PIN)
    assert restored.unlock("Wang.F", "582046")[1] == key


# -- PINs and parameters ----------------------------------------------------------


@pytest.mark.parametrize(
    "pin", ["739154", "000001", "135790", "Xiang-2026!", "岳麓山下的老樟树", "县中心2026年", "abcd1234", "a1" * 32]
)
def test_validate_pin_accepts(pin):
    validate_pin(pin)


@pytest.mark.parametrize(
    ("pin", "message"),
    [
        ("12345", "PIN至少需要6位"),
        ("abc", "PIN至少需要6位"),
        ("x1" * 33, "PIN或口令不能超过64个字符"),
        ("a" * 32, ks.PASSPHRASE_RULE),
        ("abc1234", ks.PASSPHRASE_RULE),
        ("zhangsan", ks.PASSPHRASE_RULE),
        ("abc def", "PIN不能包含空格或控制字符"),
        ("abcdef\t", "PIN不能包含空格或控制字符"),
        ("000000", "PIN过于简单，请不要使用相同或连续的数字"),
        ("888888888", "PIN过于简单，请不要使用相同或连续的数字"),
        ("123456", "PIN过于简单，请不要使用相同或连续的数字"),
        ("654321", "PIN过于简单，请不要使用相同或连续的数字"),
        ("567890", "PIN过于简单，请不要使用相同或连续的数字"),
        ("１２３４５６", "PIN过于简单，请不要使用相同或连续的数字"),
    ],
)
def test_validate_pin_rejects(pin, message):
    with pytest.raises(ValidationError) as exc:
        validate_pin(pin)
    assert exc.value.message == message and exc.value.field == "pin"


def test_kdf_presets(monkeypatch):
    # PRODUCTION is what the module documents as measured (~0.23 s per unlock on the
    # 2-vCPU dev VM); no timing is asserted here.
    assert ks.PRODUCTION == KdfParams(alg="argon2id", iterations=4, memory_kib=128 * 1024, lanes=2)
    assert ks.LOW == KdfParams(iterations=1, memory_kib=8, lanes=1)
    assert ks.kdf_params_from_env() is ks.LOW
    monkeypatch.delenv("STATION_KDF_COST")
    assert ks.kdf_params_from_env() is ks.PRODUCTION


def test_slot_stores_its_own_kdf_params(slots, path, key):
    stronger = KdfParams(iterations=2, memory_kib=64, lanes=1)
    slots.reset_pin("Wang.F", "582046", key, params=stronger)
    assert json.loads(path.read_text("utf-8"))["users"][1]["slot"]["kdf"] == {
        "alg": "argon2id",
        "iterations": 2,
        "memory_kib": 64,
        "lanes": 1,
    }
    assert slots.unlock("Wang.F", "582046")[1] == key


# -- atomic writes ----------------------------------------------------------------


def test_atomic_write_keeps_the_previous_generation(tmp_path):
    target, bak = tmp_path / "f.json", tmp_path / "f.json.bak"
    atomic_write(target, b"one", backup=bak)
    assert target.read_bytes() == b"one" and not bak.exists()
    atomic_write(target, b"two", backup=bak)
    assert (target.read_bytes(), bak.read_bytes()) == (b"two", b"one")
    atomic_write(target, b"three")
    assert (target.read_bytes(), bak.read_bytes()) == (b"three", b"one")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.json", "f.json.bak"]


def test_atomic_write_failure_leaves_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "f.json"
    target.write_bytes(b"old")

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        atomic_write(target, b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]


def test_failed_save_is_a_user_error(slots, monkeypatch):
    def read_only(*_, **__):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(slotfile, "atomic_write", read_only)
    with pytest.raises(SlotFileError, match="无法保存密钥文件"):
        slots.disable("Wang.F")


def test_windows_replace_retries_while_a_scanner_holds_the_file(tmp_path, monkeypatch):
    real, calls = os.replace, []

    def flaky(src, dst):
        calls.append(src)
        if len(calls) < 3:
            raise PermissionError(13, "being scanned")
        real(src, dst)

    monkeypatch.setattr(atomicfile, "_IS_WINDOWS", True)
    monkeypatch.setattr(os, "replace", flaky)
    monkeypatch.setattr(atomicfile.time, "sleep", lambda s: None)
    atomic_write(tmp_path / "f", b"data")
    assert (tmp_path / "f").read_bytes() == b"data" and len(calls) == 3
