"""The station's log: where it is, that it rotates, and that it tells a technician what sync did — without personal data."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from station import logs
from station.config import DataDir, default_data_dir, default_log_dir
from station.replication.runner import sync_now
from station.services import backup, cases
from tests.helpers import PENSION, VILLAGE, material_names
from tests.station.sync_kit import enrolled_station, ok
from tests.station.test_privacy import IDENT, NAME, PHONE, leaks


@pytest.fixture
def logging_to(cli_logging):
    """Set up the station log for ``data`` and hand back its text reader."""

    def setup(data: Path):
        path = logs.setup(DataDir(data))
        assert path is not None

        def text() -> str:
            for h in logging.getLogger().handlers:
                h.flush()
            return path.read_text(encoding="utf-8")

        return text

    return setup


def test_where_the_log_is(tmp_path, monkeypatch):
    assert DataDir(tmp_path / "d").log == tmp_path / "d" / "logs" / "station.log"
    monkeypatch.delenv("STATION_DATA_DIR", raising=False)
    assert DataDir(default_data_dir()).log == default_log_dir() / "station.log"
    monkeypatch.setenv("STATION_DATA_DIR", str(tmp_path / "env"))
    assert default_data_dir() == tmp_path / "env"
    assert DataDir(default_data_dir()).log == tmp_path / "env" / "logs" / "station.log"


def test_sync_decisions_are_logged_without_personal_data(tmp_path, county, now, logging_to):
    s = enrolled_station(tmp_path / "v", county, org=VILLAGE)
    text = logging_to(tmp_path / "v")
    view = cases.register(s, item_code=PENSION, name=NAME, id_number=IDENT, phone=PHONE,
                          received=material_names(PENSION))
    cases.act(s, view.case_no, "accept")
    ok(sync_now(s))
    backup.create_backup(s, tmp_path / "usb" / "b.station-backup")
    log = text()
    station = s.config.station_id[:8]
    assert f"sync ok: station={station} pushed=" in log
    assert "pull: pages=" in log and "backup written" in log
    assert leaks(tmp_path / "v" / "logs") == []
    assert NAME not in log and IDENT not in log and PHONE not in log
    s.close()


def test_the_log_rotates_and_a_failed_rotation_is_silent(tmp_path, monkeypatch, logging_to, capsys):
    monkeypatch.setattr(logs, "MAX_BYTES", 2000)
    (tmp_path / "d").mkdir()
    text = logging_to(tmp_path / "d")
    handler = next(h for h in logging.getLogger().handlers if isinstance(h, logs._Handler))
    handler.maxBytes = 2000
    for i in range(100):
        logging.getLogger("station.test").info("line %d %s", i, "x" * 50)
    folder = tmp_path / "d" / "logs"
    assert sorted(p.name for p in folder.iterdir())[:2] == ["station.log", "station.log.1"]
    assert len(list(folder.iterdir())) <= logs.BACKUPS + 1
    assert "line 99" in text()
    # Windows refuses to rename a file another process holds open: the rotation is skipped quietly
    monkeypatch.setattr("os.rename", lambda *a: (_ for _ in ()).throw(PermissionError(13, "in use")))
    for i in range(100):
        logging.getLogger("station.test").info("after %d %s", i, "y" * 50)
    assert "after 99" in text()
    assert "Traceback" not in capsys.readouterr().err
