"""Device-bound key slots: a copied data directory without this PC's credential store stays shut.

The credential store is a real ``keyring`` backend registered programmatically
(``tests.keyring_backend``); "no store" is keyring's own ``fail`` backend, as on a PC without one.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import keyring
import pytest
from cryptography.exceptions import InvalidTag

from schema.org import Role
from station.store import devicesecret
from station.store import keyslots as ks
from station.store.keyslots import DeviceSecretMissing, KeySlots, new_data_key
from tests.keyring_backend import MemoryKeyring

PIN = "739154"
ROOT = Path(__file__).resolve().parents[2]


def make(path: Path, key: bytearray) -> KeySlots:
    s = KeySlots.create(path, "st-430102001")
    s.add_user(user_id="u-agent", login="Wang.F", name="王芳", role=Role.AGENT, pin=PIN, data_key=key)
    return s


def doc(path: Path) -> dict:
    return json.loads(path.read_text("utf-8"))


def test_slots_are_bound_to_the_device_and_a_copy_does_not_open(tmp_path, device_store):
    key = new_data_key()
    path = tmp_path / "pc" / ks.FILE_NAME
    path.parent.mkdir()
    make(path, key)
    d = doc(path)
    assert d["device"]["name"] == "st-430102001" and d["users"][0]["slot"]["device"] is True
    assert list(device_store.entries) == [(devicesecret.SERVICE, "st-430102001")]
    assert KeySlots.load(path).unlock("Wang.F", PIN)[1] == key
    assert KeySlots.load(path).protection().text().startswith("PIN + 本机设备密钥")

    copy = tmp_path / "stick"
    shutil.copytree(path.parent, copy)
    keyring.set_keyring(MemoryKeyring())  # another PC: its own, empty store
    with pytest.raises(DeviceSecretMissing, match="设备密钥"):
        KeySlots.load(copy / ks.FILE_NAME).unlock("Wang.F", PIN)
    assert KeySlots.load(copy / ks.FILE_NAME).find("Wang.F").failures == 0  # nothing tried, nothing counted

    # An attacker's own tool: the right PIN's Argon2id output alone does not open the slot.
    slot = doc(path)["users"][0]["slot"]
    stretched = ks._derive(PIN, ks._unb64(slot["salt"]), ks.KdfParams(**slot["kdf"]))
    with pytest.raises(InvalidTag):
        ks._open(stretched, "u-agent", slot, None)


def test_another_secret_under_the_same_name_is_refused(tmp_path, device_store):
    path = tmp_path / ks.FILE_NAME
    make(path, new_data_key())
    other = MemoryKeyring()
    other.entries = {k: __import__("base64").b64encode(os.urandom(32)).decode() for k in device_store.entries}
    keyring.set_keyring(other)
    with pytest.raises(DeviceSecretMissing):
        KeySlots.load(path).unlock("Wang.F", PIN)


def test_file_only_without_a_store_warns_and_binds_at_the_next_unlock(tmp_path):
    key = new_data_key()
    path = tmp_path / ks.FILE_NAME
    make(path, key)  # the conftest's fail backend: no credential store on this "PC"
    assert doc(path)["device"] is None and doc(path)["users"][0]["slot"]["device"] is False
    protection = KeySlots.load(path).protection()
    assert protection.file_only and protection.store is None
    assert protection.text().startswith("警告：本机没有可用的系统凭据库") and "离线猜测PIN" in protection.text()

    store = MemoryKeyring()
    before = keyring.get_keyring()
    keyring.set_keyring(store)
    try:
        assert KeySlots.load(path).protection().text().startswith("1个用户的PIN尚未绑定本机设备密钥")
        info, got = KeySlots.load(path).unlock("Wang.F", PIN)  # upgrade on the next unlock
        assert got == key and info.device_bound
        assert doc(path)["users"][0]["slot"]["device"] is True and store.entries
        assert KeySlots.load(path).unlock("Wang.F", PIN)[1] == key
    finally:
        keyring.set_keyring(before)
    with pytest.raises(DeviceSecretMissing):  # bound now: without the store it no longer opens
        KeySlots.load(path).unlock("Wang.F", PIN)


def test_version_1_files_still_open_and_upgrade(tmp_path, device_store):
    """A file written by the previous program (format 1: no device, no recovery requests)."""
    key = new_data_key()
    path = tmp_path / ks.FILE_NAME
    keyring.set_keyring(keyring.backends.fail.Keyring())
    make(path, key)
    d = doc(path)
    d["version"] = 1
    del d["device"]
    for u in d["users"]:
        del u["recovery_pending"]
        del u["slot"]["device"]
    path.write_text(json.dumps(d), "utf-8")
    path.with_name(path.name + ".bak").unlink()
    keyring.set_keyring(device_store)
    info, got = KeySlots.load(path).unlock("Wang.F", PIN)
    assert got == key and info.device_bound
    assert doc(path)["version"] == ks.VERSION and doc(path)["users"][0]["slot"]["device"] is True


def test_a_broken_store_is_no_store(tmp_path, device_store, monkeypatch):
    def broken(*_):
        raise keyring.errors.KeyringLocked("locked")

    monkeypatch.setattr(device_store, "get_password", broken)
    assert devicesecret.load_or_create("x") is None
    with pytest.raises(devicesecret.DeviceSecretError, match="无法读取系统凭据"):
        devicesecret.load("x")
    path = tmp_path / ks.FILE_NAME
    make(path, new_data_key())
    assert doc(path)["device"] is None  # fell back to file-only, the admin sees the warning


def test_cli_copy_of_a_data_directory_cannot_be_opened_with_the_right_pin(tmp_path):
    """The real console script with a store shared between processes (a file-backed keyring)."""
    script = Path(sys.executable).with_name("station")
    store = tmp_path / "pc-store.json"
    env = {**os.environ, "STATION_KDF_COST": "low", "STATION_PIN": PIN, "PYTHONPATH": str(ROOT),
           "PYTHON_KEYRING_BACKEND": "tests.keyring_backend.FileKeyring", "TEST_KEYRING_FILE": str(store)}

    def run(data: Path, *args: str, **extra: str):
        return subprocess.run([str(script), "--data-dir", str(data), *args], env={**env, **extra},
                              capture_output=True, text=True, timeout=60)

    data = tmp_path / "station"
    r = run(data, "init", "--org", "330522101001", "--name", "东村便民服务室", "--user", "agent1", "--role", "agent")
    assert r.returncode == 0, r.stderr
    assert "警告" not in r.stdout + r.stderr  # bound: no file-only warning
    assert run(data, "case", "list").returncode == 0
    shutil.copytree(data, tmp_path / "copy")
    r = run(tmp_path / "copy", "case", "list", TEST_KEYRING_FILE=str(tmp_path / "other-pc.json"))
    assert r.returncode == 2 and r.stderr.startswith("错误：本机缺少该数据目录的设备密钥"), r.stderr
    r = run(tmp_path / "copy", "case", "list")  # on the original PC the copy opens (a backup restored there)
    assert r.returncode == 0, r.stderr

    # Without any store the CLI warns the admin at init and in the user list.
    bare = {"PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    r = run(tmp_path / "bare", "init", "--org", "330522101001", "--name", "西村", "--user", "agent1",
            "--role", "agent", **bare)
    assert r.returncode == 0 and "警告：本机没有可用的系统凭据库" in r.stderr, r.stderr
    r = run(tmp_path / "bare", "user", "list", **bare)
    assert r.returncode == 0 and "警告：本机没有可用的系统凭据库" in r.stderr
