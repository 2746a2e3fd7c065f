"""Villagers' data never appears in plaintext on disk, and damage to the database is noticed."""

from __future__ import annotations

from pathlib import Path

import pytest

from station.cli.main import main
from station.services import cases, queries
from station.services.verify import verify_station
from station.session import unlock
from station.store.db import DatabaseProblem
from tests.helpers import PENSION, PIN, id_number, make_station, material_names

NAME = "测试哨兵甲乙"
IDENT = id_number(region="330522", birth="19770707", seq="913")
PHONE = "13912378946"
SENTINELS = {"name": NAME.encode("utf-8"), "id": IDENT.encode("ascii"), "phone": PHONE.encode("ascii"),
             "name-utf16": NAME.encode("utf-16-le")}


def leaks(root: Path) -> list[tuple[str, str]]:
    """(file, sentinel) for every sentinel found in any file under ``root``."""
    found = []
    for path in sorted(root.rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            found += [(path.name, label) for label, s in SENTINELS.items() if s in data]
    return found


def files(root: Path) -> set[str]:
    return {p.name for p in root.rglob("*") if p.is_file()}


@pytest.fixture
def cli_env(monkeypatch, now, cli_logging):
    monkeypatch.setenv("STATION_PIN", PIN)


def test_the_scanner_sees_plaintext(tmp_path):
    (tmp_path / "control.txt").write_bytes(b"..." + NAME.encode() + b"...")
    assert leaks(tmp_path) == [("control.txt", "name")]


def _busy_case(data: Path, monkeypatch) -> str:
    """Register via the CLI (so station.log exists) and act on the case through the services."""
    rc = main(["--data-dir", str(data), "case", "new", "--item", PENSION, "--applicant", NAME,
               "--id-number", IDENT, "--phone", PHONE, "--received", *material_names(PENSION)[:2],
               "--note", "哨兵备注"])
    assert rc == 0
    with unlock(data, "agent1", PIN) as s:
        no = queries.search_cases(s, NAME)[0].case_no
        cases.act(s, no, "notify-missing")
        cases.act(s, no, "supplement", {"materials": material_names(PENSION)[2:]})
        cases.act(s, no, "accept")
        assert cases.reveal_id_number(s, no) == IDENT
        cases.act(s, no, "forward", {"opinion": f"申请人{NAME}材料齐全"})
    # an unexpected error whose message quotes the villager: the log gets frames, not the message
    monkeypatch.setattr(cases, "get", lambda *a, **k: (_ for _ in ()).throw(RuntimeError(f"boom {NAME} {IDENT}")))
    assert main(["--data-dir", str(data), "case", "show", no]) == 70
    monkeypatch.undo()
    return no


def test_no_plaintext_in_any_file_with_the_wal_present_or_after_closing(tmp_path, cli_env, monkeypatch):
    data = tmp_path / "station"
    make_station(data).close()
    monkeypatch.setenv("STATION_PIN", PIN)
    no = _busy_case(data, monkeypatch)
    assert "RuntimeError" in (data / "logs" / "station.log").read_text(encoding="utf-8")

    # two sessions open at once, one writing: the WAL holds the newest pages
    first = unlock(data, "agent1", PIN)
    second = unlock(data, "agent1", PIN)
    try:
        assert cases.reveal_id_number(first, no) == IDENT  # a write (an audit event) on one connection
        assert queries.search_cases(second, PHONE)[0].case_no == no  # the data is really there
        wal = data / "station.db-wal"
        assert wal.exists() and wal.stat().st_size > 0
        assert {"station.db", "station.db-wal", "station.db-shm", "keyslots.json", "station.json",
                "station.log"} <= files(data)  # logs/station.log
        assert leaks(data) == []
        assert leaks(tmp_path) == []  # nothing next to the data directory either
    finally:
        second.close()
        first.close()
    assert leaks(tmp_path) == []
    with unlock(data, "agent1", PIN) as s:
        assert verify_station(s).ok


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def _station_with_cases(root: Path, n: int = 30) -> None:
    s = make_station(root)
    for i in range(n):
        cases.register(s, item_code=PENSION, name="王秀英", id_number=id_number(seq=f"{i:03d}"),
                       received=material_names(PENSION))
    s.close()
    assert not (root / "station.db-wal").exists()  # closing checkpointed everything into the file


@pytest.mark.parametrize("where", ["second page", "middle", "last page"])
def test_a_flipped_byte_is_detected(tmp_path, now, where):
    root = tmp_path / "station"
    _station_with_cases(root)
    db = root / "station.db"
    size = db.stat().st_size
    page = 4096
    assert size >= 4 * page
    offset = {"second page": page + 1500, "middle": (size // page // 2) * page + 777, "last page": size - 100}[where]
    _flip(db, offset)
    try:
        s = unlock(root, "agent1", PIN)
    except DatabaseProblem as e:
        assert "数据库文件已损坏或被篡改" in e.message
        return
    with s:
        report = verify_station(s)
    assert not report.ok
    assert any(p.startswith("数据库完整性") for p in report.problems), report.problems


def test_a_truncated_database_gives_a_clear_error(tmp_path, now, cli_env, capsys):
    root = tmp_path / "station"
    _station_with_cases(root)
    db = root / "station.db"
    with db.open("r+b") as f:
        f.truncate(db.stat().st_size // 2 + 123)
    rc = main(["--data-dir", str(root), "case", "list"])
    err = capsys.readouterr().err
    assert rc != 0
    assert "数据库文件已损坏" in err and "Traceback" not in err
