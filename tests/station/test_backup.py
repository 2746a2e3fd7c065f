"""Backup and restore: one encrypted file, consistent during a sync, and nothing replaced unless it all checks."""

from __future__ import annotations

import hashlib
import json
import threading
import zipfile
from pathlib import Path

import pytest

from station.cli.main import main
from station.replication import identity as I
from station.replication.push import set_batch
from station.replication.runner import sync_now
from station.services import backup as B
from station.services.verify import verify_station
from station.session import unlock
from tests.helpers import PIN, VILLAGE, VILLAGE2, case_rows, differ, make_station
from tests.station.sync_kit import check_marks, enrolled_station, ok, register_case
from tests.station.test_privacy import leaks


def snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root`` and its hash: "nothing replaced" means this did not change."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def events(s) -> list[tuple]:
    return s.db.execute_sql("SELECT id, station, seq, hash FROM event ORDER BY station, seq").fetchall()


@pytest.fixture
def station(tmp_path, now):
    s = make_station(tmp_path / "station")
    for n in range(5):
        register_case(s, n)
    yield s
    if not s.db.is_closed():
        s.close()


def test_backup_then_restore_gives_the_same_station(station, tmp_path):
    usb = tmp_path / "usb"
    usb.mkdir()
    result = B.create_backup(station, usb)
    assert result.path.parent == usb and result.path.name.startswith(f"{VILLAGE}-01_")
    assert result.path.name.endswith(".station-backup") and result.events == len(events(station))
    assert [p.name for p in usb.iterdir()] == [result.path.name]  # no temporary file left on the stick
    assert leaks(usb) == []  # the applicants' names, ID numbers and phones are nowhere in clear
    assert B.last_backup(station) == result.created_at
    before_events, before_cases = events(station), case_rows(station)
    station.close()

    target = tmp_path / "new-pc"
    r = B.restore_backup(result.path, target, "agent1", PIN)
    assert r.kept_aside is None and r.events == len(before_events)
    with unlock(target, "agent1", PIN) as s:
        assert events(s) == before_events and case_rows(s) == before_cases
        assert verify_station(s).ok


def test_restore_over_a_station_keeps_the_old_one_aside(station, tmp_path):
    backup = B.create_backup(station, tmp_path / "b.station-backup").path
    register_case(station, 99)  # made after the backup: it stays in the folder kept aside
    later = events(station)
    station.close()
    root = tmp_path / "station"
    with pytest.raises(B.BackupError, match="--replace"):
        B.restore_backup(backup, root, "agent1", PIN)
    r = B.restore_backup(backup, root, "agent1", PIN, replace=True)
    assert r.kept_aside is not None and r.kept_aside.name.startswith("station.before-restore-")
    with unlock(r.kept_aside, "agent1", PIN) as old:
        assert events(old) == later
    with unlock(root, "agent1", PIN) as s:
        assert len(events(s)) == len(later) - 2 and verify_station(s).ok


def _rewrite(src: Path, dst: Path, change) -> None:
    """Copy a backup, passing each member's bytes through ``change(name, data)``."""
    with zipfile.ZipFile(src) as z, zipfile.ZipFile(dst, "w") as out:
        for name in z.namelist():
            out.writestr(name, change(name, z.read(name)))


def _flip(data: bytes, at: int) -> bytes:
    b = bytearray(data)
    b[at] ^= 0x01
    return bytes(b)


def _with_hashes(manifest: bytes, **files: bytes) -> bytes:
    """An attacker who also recomputes the manifest's hashes (but has no data key for its HMAC)."""
    doc = json.loads(manifest)
    for name, data in files.items():
        doc["files"][name] = hashlib.sha256(data).hexdigest()
    return json.dumps(doc).encode()


def tampered_backups(src: Path, tmp: Path, other: Path) -> dict[str, Path]:
    with zipfile.ZipFile(src) as z:
        parts = {n: z.read(n) for n in z.namelist()}
    with zipfile.ZipFile(other) as z:
        other_slots = z.read("keyslots.json")
    db = _flip(parts["station.db"], len(parts["station.db"]) // 2)
    config = parts["station.json"].replace(VILLAGE.encode(), VILLAGE2.encode())
    cases = {
        # a page of the database changed and the manifest's hash with it: the HMAC catches it
        "database page": lambda n, d: db if n == "station.db" else (
            _with_hashes(d, **{"station.db": db}) if n == "manifest.json" else d),
        # only the database changed: its hash in the manifest catches it
        "database only": lambda n, d: db if n == "station.db" else d,
        # the settings say another village
        "settings": lambda n, d: config if n == "station.json" else (
            _with_hashes(d, **{"station.json": config}) if n == "manifest.json" else d),
        # the manifest claims another head
        "manifest": lambda n, d: d.replace(b'"head_seq": ', b'"head_seq": 9') if n == "manifest.json" else d,
        # another station's key slots slipped in
        "key slots": lambda n, d: other_slots if n == "keyslots.json" else (
            _with_hashes(d, **{"keyslots.json": other_slots}) if n == "manifest.json" else d),
        "extra member": None,
        "truncated": None,
    }
    out = {}
    for label, change in cases.items():
        path = tmp / f"{label}.station-backup"
        if change is not None:
            _rewrite(src, path, change)
        elif label == "extra member":
            _rewrite(src, path, lambda n, d: d)
            with zipfile.ZipFile(path, "a") as z:
                z.writestr("../../evil.txt", b"x")
        else:
            path.write_bytes(src.read_bytes()[: src.stat().st_size // 2])
        out[label] = path
    return out


def test_a_tampered_backup_is_refused_and_nothing_is_replaced(station, tmp_path, now):
    good = B.create_backup(station, tmp_path / "good.station-backup").path
    other_station = make_station(tmp_path / "other")
    other = B.create_backup(other_station, tmp_path / "other.station-backup").path
    other_station.close()
    station.close()
    root = tmp_path / "station"
    before = snapshot(root)
    bad = tampered_backups(good, tmp_path, other)
    for label, path in bad.items():
        with pytest.raises(B.BackupError) as e:
            B.restore_backup(path, root, "agent1", PIN, replace=True)
        assert "未做任何改动" in e.value.message, (label, e.value.message)
        assert snapshot(root) == before, label
        assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".station")) == [], label
    with pytest.raises(B.BackupError, match="PIN不正确"):
        B.restore_backup(good, root, "agent1", differ(PIN), replace=True)
    assert snapshot(root) == before
    assert not (tmp_path / "evil.txt").exists()


def test_backup_during_a_running_sync_restores_to_a_station_that_syncs_every_event_once(tmp_path, now):
    """The snapshot is taken while the sync thread is between two pushes on its own connection."""
    from tests.station.sync_kit import CountyServer

    with CountyServer(tmp_path / "county") as county:
        other = enrolled_station(tmp_path / "village2", county, org=VILLAGE2)
        register_case(other, 500)
        ok(sync_now(other))  # the county holds someone else's events too: the pull has work
        other.close()
        s = enrolled_station(tmp_path / "station", county, org=VILLAGE)
        for n in range(30):
            register_case(s, n)
        set_batch(s, 10)  # several pushes: the backup lands in the middle
        usb = tmp_path / "usb"
        usb.mkdir()
        in_push, backed_up, taken = threading.Event(), threading.Event(), {}

        def progress(stage, done, total):
            if stage == "上传本站记录" and done and not in_push.is_set():
                in_push.set()
                assert backed_up.wait(30)

        def run_sync():
            fork = s.fork()
            try:
                taken["report"] = sync_now(fork, progress=progress)
            finally:
                fork.close()

        thread = threading.Thread(target=run_sync)
        thread.start()
        assert in_push.wait(30)
        taken["backup"] = B.create_backup(s, usb)
        acked_at_backup = I.acked(s)
        backed_up.set()
        thread.join(60)
        ok(taken["report"])
        assert 0 < acked_at_backup < s.store.head()[0]  # really mid-sync: some pushed, some not
        own_events = s.store.head()[0]
        s.close()

        r = B.restore_backup(taken["backup"].path, tmp_path / "station", "agent1", PIN, replace=True)
        assert r.enrolled
        with unlock(tmp_path / "station", "agent1", PIN) as restored:
            assert verify_station(restored).ok
            assert I.acked(restored) == acked_at_backup
            ok(sync_now(restored))  # re-sends what the county already has: same receipts, no copies
            register_case(restored, 77)
            ok(sync_now(restored))
            assert check_marks(restored, county) == own_events + 2
            rows = events(restored)
            assert len({r[0] for r in rows}) == len(rows)  # every event once at the station
            assert len({(r[1], r[2]) for r in rows}) == len(rows)
            assert verify_station(restored).ok
        held = county.events_of(r.station_id)
        assert [seq for seq, _ in held] == list(range(1, own_events + 3))  # at the county: once each


def test_backup_and_restore_commands(tmp_path, capsys, monkeypatch, now, cli_logging):
    data, usb = tmp_path / "station", tmp_path / "usb"
    make_station(data).close()
    usb.mkdir()
    monkeypatch.setenv("STATION_PIN", PIN)
    assert main(["--data-dir", str(data), "backup", str(usb), "--json"]) == 0
    made = json.loads(capsys.readouterr().out)["file"]
    assert Path(made).exists()
    assert main(["restore", made, "--data-dir", str(data), "--user", "agent1"]) == 2
    assert "--replace" in capsys.readouterr().err
    assert main(["restore", made, "--data-dir", str(data), "--replace"]) == 0  # its one user: no --user needed
    out = capsys.readouterr().out
    assert "校验全部通过" in out and "before-restore" in out
    assert main(["--data-dir", str(data), "backup", str(data)]) == 2  # not inside the station itself
    assert "不能放在工作站的数据目录里" in capsys.readouterr().err
