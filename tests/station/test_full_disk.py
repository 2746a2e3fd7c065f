"""A full disk on the village PC: the agent can still log in, read and export (a real tmpfs)."""

from __future__ import annotations

import json

import pytest

from station.cli.main import main
from station.store import keyslots as ks
from tests.helpers import PIN, VILLAGE
from tests.station.sync_kit import enrolled_station, register_case
from tests.station.test_keyslots_guard import fill


@pytest.fixture
def disk(tmpfs):
    return tmpfs("16m")


def test_full_disk_still_lets_the_agent_log_in_read_and_export(disk, tmp_path, county, capsys, monkeypatch,
                                                                cli_logging):
    root = disk / "station"
    with enrolled_station(root, county, org=VILLAGE) as s:
        case_no = register_case(s).case_no
    fill(disk)
    monkeypatch.setenv("STATION_PIN", PIN)

    def station(*args):
        capsys.readouterr()
        rc = main(["--data-dir", str(root), *args])
        return rc, *capsys.readouterr()

    rc, out, err = station("case", "list")
    assert rc == 0 and case_no in out, err
    assert err.startswith("提示：磁盘空间已满：已动用预留空间，现在可以查看和导出")
    rc, out, err = station("case", "show", case_no)
    assert rc == 0 and "王秀英" in out, err
    usb = tmp_path / "usb"
    usb.mkdir()
    rc, out, err = station("--json", "bundle", "export", str(usb))
    assert rc == 0, err
    assert json.loads(out)["ok"] and list(usb.iterdir())


def test_full_disk_without_any_room_says_so(disk, county, capsys, monkeypatch, cli_logging):
    root = disk / "station"
    with enrolled_station(root, county, org=VILLAGE):
        pass
    (root / (ks.FILE_NAME + ".reserve")).unlink()  # the reserve was used up before
    fill(disk)
    monkeypatch.setenv("STATION_PIN", PIN)
    capsys.readouterr()
    rc = main(["--data-dir", str(root), "case", "list"])
    err = capsys.readouterr().err
    assert rc == 2 and err.strip().splitlines()[-1] == (
        "错误：磁盘空间已满，无法打开数据库（至少需要约1 MB空闲空间）。请删除不需要的文件后重试，数据没有受影响")
    assert "硬盘或U盘故障" not in err
