"""Key slots under pressure: parallel processes, a full disk, a read-only disk.

The parallel tests run real processes against one file (the lock is what they prove); the
disk tests mount a real, tiny tmpfs (root only; skipped where mounting is not permitted).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from schema.org import Role
from station.store import keyslots as ks
from station.store import slotfile
from station.store.keyslots import CounterUnwritable, KeySlots, SlotFileError, WrongPin, new_data_key

AGENT_PIN = "739154"
T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def key() -> bytearray:
    return new_data_key()


def make_slots(path: Path, key: bytearray) -> KeySlots:
    s = KeySlots.create(path, "st-430102001")
    s.add_user(user_id="u-agent", login="Wang.F", name="王芳", role=Role.AGENT, pin=AGENT_PIN, data_key=key)
    return s


# -- parallel processes ------------------------------------------------------------------------

GUESSER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from station.store import keyslots as ks

    ks.FREE_FAILURES = ks.MAX_FAILURES  # no delays: only the counter decides how many guesses get in
    tried = 0
    real = ks._unwrap

    def counting(*args):
        global tried
        tried += 1
        return real(*args)

    ks._unwrap = counting
    path, go, rounds = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
    while not go.exists():
        time.sleep(0.001)
    for _ in range(rounds):
        try:
            ks.KeySlots.load(path).unlock("Wang.F", "000999")
        except (ks.WrongPin, ks.LockedOut):
            pass
    print(tried)
    """
)

READER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from station.store import keyslots as ks

    path, go, rounds, pin = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    while not go.exists():
        time.sleep(0.001)
    problems = []
    for _ in range(rounds):
        try:
            slots = ks.KeySlots.load(path)
            if slots.restored_from_backup:
                problems.append("backup")
            slots.unlock("Wang.F", pin)
        except Exception as e:  # noqa: BLE001 - reported to the test
            problems.append(f"{type(e).__name__}: {e}")
    print(len(problems), problems[:3])
    """
)


def run_parallel(script: str, n: int, *args: str, tmp_path: Path) -> list[str]:
    go = tmp_path / "go"
    env = {**os.environ, "STATION_KDF_COST": "low", "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen([sys.executable, "-c", script, args[0], str(go), *args[1:]], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(n)
    ]
    go.touch()
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        outs.append(out.strip())
    return outs


def test_parallel_wrong_pins_get_exactly_the_allowed_number_of_guesses(tmp_path, key):
    path = tmp_path / ks.FILE_NAME
    make_slots(path, key)
    outs = run_parallel(GUESSER, 8, str(path), "5", tmp_path=tmp_path)  # 40 attempts in all
    assert sum(int(o) for o in outs) == ks.MAX_FAILURES
    info = KeySlots.load(path).find("Wang.F")
    assert info.failures == ks.MAX_FAILURES and info.locked


def test_parallel_right_pins_never_fail_nor_read_the_backup(tmp_path, key):
    """Before the lock, concurrent read-only commands failed with 无法保存密钥文件…请检查磁盘空间."""
    path = tmp_path / ks.FILE_NAME
    make_slots(path, key)
    outs = run_parallel(READER, 6, str(path), "25", AGENT_PIN, tmp_path=tmp_path)
    assert outs == ["0 []"] * 6
    assert KeySlots.load(path).find("Wang.F").failures == 0


# -- a real full (and read-only) disk ------------------------------------------------------------


@pytest.fixture
def small_disk(tmpfs):
    return tmpfs("512k")


def fill(disk: Path) -> None:
    """Fill the filesystem to the last byte."""
    fd = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        for size in (64 * 1024, 1):
            try:
                while True:
                    os.write(fd, bytes(size))
            except OSError:
                pass
    finally:
        os.close(fd)


def test_full_disk_gives_up_the_reserve_and_keeps_counting(small_disk, key, caplog):
    path = small_disk / ks.FILE_NAME
    make_slots(path, key)
    assert path.with_name(path.name + ".reserve").exists()
    fill(small_disk)
    with pytest.raises(WrongPin) as exc:
        KeySlots.load(path).unlock("Wang.F", "000999", now=T0)
    assert exc.value.remaining == 9  # counted: the reserve made room
    assert KeySlots.load(path).find("Wang.F").failures == 1
    assert "released the key slot reserve" in caplog.text
    info, got = KeySlots.load(path).unlock("Wang.F", AGENT_PIN, now=T0)
    assert got == key and info.failures == 0


def test_full_disk_without_reserve_still_opens_for_the_right_pin(small_disk, key):
    path = small_disk / ks.FILE_NAME
    make_slots(path, key)
    path.with_name(path.name + ".reserve").unlink()
    fill(small_disk)
    slots = KeySlots.load(path)
    info, got = slots.unlock("Wang.F", AGENT_PIN, now=T0)
    assert got == key
    assert len(slots.notices) == 1 and "磁盘空间已满" in slots.notices[0] and "可以查看和导出" in slots.notices[0]

    # Wrong PINs: up to FREE_FAILURES unrecorded tries in this program run, then refused.
    for _ in range(ks.FREE_FAILURES):
        with pytest.raises(WrongPin, match="本次错误未能记录"):
            KeySlots.load(path).unlock("Wang.F", "000999", now=T0)
    with pytest.raises(CounterUnwritable) as refused:
        KeySlots.load(path).unlock("Wang.F", AGENT_PIN, now=T0)
    assert "磁盘空间已满" in refused.value.message and "暂不能再尝试" in refused.value.message
    assert KeySlots.load(path).find("Wang.F").failures == 0  # nothing could be written

    (small_disk / "filler").unlink()  # space again: counting resumes, the right PIN opens
    info, got = KeySlots.load(path).unlock("Wang.F", AGENT_PIN, now=T0)
    assert got == key and info.failures == 0


def test_full_disk_refuses_a_user_who_was_already_failing(small_disk, key):
    path = small_disk / ks.FILE_NAME
    make_slots(path, key)
    for i in range(ks.FREE_FAILURES):
        with pytest.raises(WrongPin):
            KeySlots.load(path).unlock("Wang.F", "000999", now=T0 + timedelta(minutes=i))
    path.with_name(path.name + ".reserve").unlink()
    fill(small_disk)
    with pytest.raises(CounterUnwritable, match="磁盘空间已满"):
        KeySlots.load(path).unlock("Wang.F", AGENT_PIN, now=T0 + timedelta(hours=1))


def test_read_only_disk_names_the_cause(small_disk, key):
    path = small_disk / ks.FILE_NAME
    make_slots(path, key)
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    slots = KeySlots.load(path)  # reading needs no lock file
    info, got = slots.unlock("Wang.F", AGENT_PIN, now=T0)
    assert got == key and "磁盘为只读" in slots.notices[0]
    with pytest.raises(SlotFileError, match="磁盘为只读"):
        slots.disable("Wang.F")


def test_write_errors_name_their_cause(tmp_path, key, monkeypatch):
    path = tmp_path / ks.FILE_NAME
    slots = make_slots(path, key)
    for err, text in [
        (PermissionError(13, "Permission denied"), "没有写入权限"),
        (OSError(5, "Input/output error"), "Input/output error"),
    ]:
        def broken(*_, e=err, **__):
            raise e

        monkeypatch.setattr(slotfile, "atomic_write", broken)
        with pytest.raises(SlotFileError) as exc:
            slots.disable("Wang.F")
        assert text in exc.value.message and "磁盘空间" not in exc.value.message
    assert json.loads(path.read_text("utf-8"))["users"][0]["disabled"] is False
