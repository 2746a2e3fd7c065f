"""``station enroll``, ``station sync``, ``station sync-status``, ``station bundle``: exit codes and messages.

Every failure is one Chinese line on stderr, no traceback, the documented exit code (2 refused
or bad input, 3 offline), and everything saved before is still there.
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from pathlib import Path

import pytest

from station.cli.main import main
from tests.helpers import PIN, TOWN, VILLAGE

CJK = range(0x4E00, 0xA000)


@dataclass
class Result:
    rc: int
    out: str
    err: str

    @property
    def json(self):
        return json.loads(self.out)

    def failed_cleanly(self, rc: int, *fragments: str) -> None:
        assert self.rc == rc, (self.rc, self.out, self.err)
        assert "Traceback" not in self.err and "Traceback" not in self.out
        assert self.err.startswith("错误："), self.err
        assert any(ord(c) in CJK for c in self.err)
        for f in fragments:
            assert f in self.err, (f, self.err)


class Cli:
    def __init__(self, data: Path, capsys, monkeypatch, login: str = "agent1") -> None:
        self.data, self.capsys, self.monkeypatch, self.login = data, capsys, monkeypatch, login

    def __call__(self, *args: str, as_json: bool = False) -> Result:
        self.monkeypatch.setenv("STATION_PIN", PIN)
        argv = ["--data-dir", str(self.data), "--user", self.login] + (["--json"] if as_json else [])
        self.capsys.readouterr()
        rc = main([*argv, *args])
        out, err = self.capsys.readouterr()
        return Result(rc, out, err)

    def init(self, org: str, role: str = "agent", name: str = "东村便民服务室") -> None:
        self.monkeypatch.setenv("STATION_PIN", PIN)
        assert (
            main(
                [
                    "--data-dir",
                    str(self.data),
                    "init",
                    "--org",
                    org,
                    "--name",
                    name,
                    "--user",
                    self.login,
                    "--role",
                    role,
                ]
            )
            == 0
        )




@pytest.fixture
def cli(tmp_path, capsys, monkeypatch, cli_logging):
    c = Cli(tmp_path / "v", capsys, monkeypatch)
    c.init(VILLAGE)
    return c


def closed_port_url() -> str:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}"


def new_case(cli: Cli) -> None:
    from tests.helpers import PENSION, id_number, material_names

    r = cli(
        "case",
        "new",
        "--item",
        PENSION,
        "--applicant",
        "王秀英",
        "--id-number",
        id_number(),
        "--phone",
        "13800001234",
        "--received",
        *material_names(PENSION),
        as_json=True,
    )
    assert r.rc == 0, r.err


def test_help_documents_the_exit_codes(capsys):
    for cmd in (["sync"], ["enroll"], ["bundle", "export"]):
        with pytest.raises(SystemExit) as e:
            main([*cmd, "--help"])
        assert e.value.code == 0
        out = capsys.readouterr().out
        assert "退出码" in out and "0  全部完成" in out and "3  无法连接县中心" in out and "2  " in out


def test_enroll_sync_and_status(cli, county):
    r = cli("enroll", "--server", county.url, "--code", county.code(VILLAGE, "village"))
    assert r.rc == 0 and "已登记到测试县" in r.out, r.err
    new_case(cli)
    r = cli("sync")
    assert r.rc == 0, r.err
    assert "[上传本站记录] 3/3" in r.out and "同步成功" in r.out and r.err == ""
    r = cli("sync", as_json=True)
    assert r.rc == 0 and r.json["outcome"] == "ok" and r.json["pushed"] == 0
    r = cli("sync-status", "--history", "5", as_json=True)
    assert r.rc == 0
    st = r.json
    assert st["enrolled"] and st["online"] and st["pending"] == 0 and st["last_success"]
    assert len(st["history"]) == 2 and st["history"][0]["outcome"] == "ok"
    r = cli("sync-status", "--history", "3")
    assert "在线" in r.out and "待上传 0 条" in r.out and "县中心：测试县" in r.out


def test_enroll_needs_one_clear_mode(cli, county):
    cli("enroll", "--server", county.url).failed_cleanly(2, "--code")
    cli("enroll", "--code", "ABCD-EFGH-JKMN").failed_cleanly(2, "登记方式")
    cli("enroll", "--server", county.url, "--code", "x").failed_cleanly(2, "登记码应为12位")
    cli("enroll", "--server", county.url, "--code", "ABCD-EFGH-JKMN").failed_cleanly(2, "登记码不正确")
    cli("enroll", "--server", closed_port_url(), "--code", "ABCD-EFGH-JKMN").failed_cleanly(
        3, "无法连接县中心"
    )
    cli("enroll", "--server", "county.example", "--code", "ABCD-EFGH-JKMN").failed_cleanly(2, "县中心地址")
    r = cli("sync-status", as_json=True)
    assert r.rc == 0 and not r.json["enrolled"]


def test_offline_enrollment_through_files(cli, county, tmp_path):
    from sync.server import registry

    req = tmp_path / "usb" / "request.json"
    req.parent.mkdir()
    r = cli("enroll", "--request-file", str(req), "--code", county.code(VILLAGE, "village"))
    assert r.rc == 0 and "--response-file" in r.out, r.err
    answer = registry.enroll(county.cdb, county.county, json.loads(req.read_text()), url=county.url)
    resp = tmp_path / "usb" / "answer.json"
    bad = tmp_path / "usb" / "bad.json"
    tampered = dict(answer, h=answer["h"].replace('"level":"village"', '"level":"township"'))
    bad.write_text(json.dumps(tampered))
    cli("enroll", "--response-file", str(bad)).failed_cleanly(2, "登记码校验")
    bad.write_text("{broken")
    cli("enroll", "--response-file", str(bad)).failed_cleanly(2, "不是有效的登记答复文件")
    resp.write_text(json.dumps(answer))
    r = cli("enroll", "--response-file", str(resp))
    assert r.rc == 0 and "已登记到测试县" in r.out
    # the fingerprint the admin printed beside the code, for the person to compare
    assert f"县中心密钥指纹：{county.county.fingerprint}" in r.out
    assert cli("sync").rc == 0
    status = cli("sync-status")
    assert f"县中心密钥指纹：{county.county.fingerprint}" in status.out
    assert cli("sync-status", as_json=True).json["county_fingerprint"] == county.county.fingerprint


def test_sync_before_enrollment_and_offline(cli, county):
    cli("sync").failed_cleanly(2, "尚未登记到县中心")
    assert cli("enroll", "--server", county.url, "--code", county.code(VILLAGE, "village")).rc == 0
    new_case(cli)
    r = cli("sync", "--server", closed_port_url())
    r.failed_cleanly(3, "无法连接县中心", "不会丢失")
    assert "离线" in cli("sync-status").out
    r = cli("sync", as_json=True)  # the remembered URL was not replaced by the dead one
    assert r.rc == 0 and r.json["pushed"] == 3


def test_sync_refused_exits_2_with_the_reason(cli, county):
    assert cli("enroll", "--server", county.url, "--code", county.code(VILLAGE, "village")).rc == 0
    assert cli("sync").rc == 0
    station = json.loads((cli.data / "station.json").read_text())["station_id"]
    county.revoke(station, "设备报废")
    new_case(cli)
    r = cli("sync")
    r.failed_cleanly(2, "注销", "设备报废")
    r = cli("sync-status", as_json=True)
    assert r.json["revoked"] and r.json["pending_own"] == 1
    r = cli("verify", as_json=True)
    assert r.rc == 0 and r.json["ok"]
    cli("bundle", "export", str(cli.data.parent)).failed_cleanly(2, "注销")


def test_bundles_through_the_cli(tmp_path, capsys, monkeypatch, cli_logging, county):
    v = Cli(tmp_path / "v", capsys, monkeypatch)
    v.init(VILLAGE)
    t = Cli(tmp_path / "t", capsys, monkeypatch, login="clerk1")
    t.init(TOWN, "clerk", "城关镇便民服务中心")
    assert t("enroll", "--server", county.url, "--code", county.code(TOWN, "township")).rc == 0
    assert v("enroll", "--server", county.url, "--code", county.code(VILLAGE, "village")).rc == 0
    assert v("sync").rc == 0 and t("sync").rc == 0
    new_case(v)
    usb = tmp_path / "usb"
    usb.mkdir()
    r = v("bundle", "export", str(usb))
    assert r.rc == 0 and "已导出 1 个文件" in r.out, r.err
    [f] = sorted(usb.glob("*.cvs"))
    good = f.read_bytes()
    f.write_bytes(good[:-40])  # the copy to the stick was cut short
    r = t("bundle", "import", str(usb))
    r.failed_cleanly(2, f.name, "本机数据未受影响")
    f.write_bytes(good)
    r = t("bundle", "import", str(usb), as_json=True)
    assert r.rc == 0 and r.json["segments"] == 1 and r.json["events"] == 1
    r = t("sync")
    assert r.rc == 0 and "转交下级 1 条" in r.out, r.err
    t("bundle", "import", str(tmp_path / "missing")).failed_cleanly(2, "找不到")
    r = t("bundle", "import", str(tmp_path / "county"))  # a folder with no sync files in it
    assert r.rc == 0 and "没有同步数据文件" in r.out
