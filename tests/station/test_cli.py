"""The headless ``station`` command: the everyday flow, and bad input that must fail cleanly.

Every failure must be one Chinese message on stderr, a non-zero exit code, no traceback,
and the data saved before it must still be there.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from station.cli.main import main
from station.store import keyslots
from tests.helpers import COUNTY, PENSION, PIN, TOWN, VILLAGE, differ, id_number, material_names

AGENT_PIN = "739154"
ADMIN_PIN = PIN
IDENT = id_number(seq="011")
CJK = range(0x4E00, 0xA000)


@dataclass
class Result:
    rc: int
    out: str
    err: str

    @property
    def json(self):
        return json.loads(self.out)

    def failed_cleanly(self, *fragments: str) -> None:
        """Non-zero exit, one Chinese error line naming every fragment, no traceback."""
        assert self.rc != 0, (self.out, self.err)
        assert "Traceback" not in self.err and "Traceback" not in self.out
        assert self.err.startswith("错误："), self.err
        assert any(ord(c) in CJK for c in self.err)
        for f in fragments:
            assert f in self.err, (f, self.err)


class Cli:
    def __init__(self, data: Path, capsys, monkeypatch) -> None:
        self.data, self.capsys, self.monkeypatch = data, capsys, monkeypatch

    def __call__(self, *args: str, user: str | None = "agent1", pin: str | None = None, as_json: bool = False):
        pin = pin or (AGENT_PIN if user == "agent1" else ADMIN_PIN)
        self.monkeypatch.setenv("STATION_PIN", pin)
        argv = ["--data-dir", str(self.data)] + (["--json"] if as_json else []) + (["--user", user] if user else [])
        self.capsys.readouterr()
        rc = main([*argv, *args])
        out, err = self.capsys.readouterr()
        return Result(rc, out, err)

    def new_case(self, name="王秀英", ident=IDENT, received=None) -> Result:
        received = material_names(PENSION) if received is None else received
        return self("case", "new", "--item", PENSION, "--applicant", name, "--id-number", ident,
                    "--phone", "13800001234", "--received", *received, as_json=True)

    def case_count(self) -> int:
        r = self("case", "list", "--limit", "1000", user="admin1", as_json=True)
        assert r.rc == 0, r.err
        return len(r.json["items"])

    def intact(self, cases: int) -> None:
        """The saved data is all there and consistent."""
        assert self.case_count() == cases
        r = self("verify", user="admin1", as_json=True)
        assert r.rc == 0 and r.json["ok"], r.out


@pytest.fixture
def cli(tmp_path, capsys, monkeypatch, now, cli_logging):
    """A village station set up with its local administrator, who added the village agent."""
    c = Cli(tmp_path / "station", capsys, monkeypatch)
    r = c("init", "--org", VILLAGE, "--name", "东村便民服务室", "--user", "admin1", "--role", "admin",
          "--user-name", "李娟", user=None, pin=ADMIN_PIN)
    assert r.rc == 0, r.err
    monkeypatch.setenv("STATION_NEW_PIN", AGENT_PIN)
    r = c("user", "add", "agent1", "--role", "agent", "--name", "王芳", user="admin1")
    assert r.rc == 0, r.err
    monkeypatch.delenv("STATION_NEW_PIN")
    return c


@pytest.fixture
def saved(cli):
    """One saved, accepted case."""
    r = cli.new_case()
    assert r.rc == 0, r.err
    assert cli("case", "accept", r.json["case_no"]).rc == 0
    return r.json["case_no"]


# -- the everyday flow ---------------------------------------------------------------------------------------


def test_init_and_users(cli, monkeypatch):
    assert "已添加用户" not in cli("user", "list", user="admin1").out
    r = cli("user", "list", user="admin1", as_json=True)
    assert r.rc == 0
    assert [(u["login"], u["role"], u["locked"]) for u in r.json["items"]] == [
        ("admin1", "admin", False), ("agent1", "agent", False)]
    text = cli("user", "list", user="agent1").out
    assert "代办员" in text and "管理员" in text
    monkeypatch.setenv("STATION_NEW_PIN", "246813")
    r = cli("user", "add", "agent2", "--role", "agent", user="agent1")  # an agent cannot add users
    r.failed_cleanly("代办员不能添加代办员账号")
    r = cli("user", "add", "clerk2", "--role", "clerk", user="admin1")  # a village holds no township role
    r.failed_cleanly("村级工作站只能设置这些角色：代办员、管理员；窗口人员不能在村级工作站使用")


@pytest.mark.parametrize("org, role, allowed", [
    (VILLAGE, "reviewer", "代办员、管理员"),  # issue 8, finding 2: a village station claiming a county role
    (VILLAGE, "clerk", "代办员、管理员"),
    (TOWN, "agent", "窗口人员、管理员"),
    (COUNTY, "clerk", "审批人员、管理员"),
])
def test_init_refuses_a_role_the_station_level_cannot_hold(tmp_path, capsys, monkeypatch, now, cli_logging,
                                                         org, role, allowed):
    c = Cli(tmp_path / "station", capsys, monkeypatch)
    r = c("init", "--org", org, "--name", "某站", "--user", "u1", "--role", role, user=None, pin=ADMIN_PIN)
    r.failed_cleanly(f"工作站只能设置这些角色：{allowed}")
    assert not (tmp_path / "station").exists() or not any((tmp_path / "station").iterdir())


def test_catalog_search_and_show(cli):
    r = cli("catalog", "search", "ylbx", user=None)
    assert r.rc == 0 and "城乡居民基本养老保险参保登记" in r.out
    r = cli("catalog", "search", "ylbx", user=None, as_json=True)
    assert PENSION in [i["code"] for i in r.json["items"]]
    r = cli("catalog", "show", PENSION, user=None)
    assert r.rc == 0 and "申请材料：" in r.out and "承诺时限：3个工作日" in r.out.replace(" ", "")


def test_case_flow(cli, now):
    r = cli.new_case()
    assert r.rc == 0, r.err
    d = r.json
    assert {"case_no", "state", "item_code", "accepted_at", "due_date", "due_estimated"} <= set(d)
    assert (d["state"], d["item_code"], d["accepted_at"], d["due_date"], d["due_estimated"]) == (
        "received", PENSION, None, None, False)
    assert d["case_no"] == f"{VILLAGE}-20260302-01-0001"
    assert d["applicant"]["id_number"] == IDENT[:4] + "*" * 10 + IDENT[-4:]  # masked by default
    no = d["case_no"]

    r = cli("case", "accept", no, as_json=True)
    assert r.rc == 0 and r.json["state"] == "in_progress"
    assert (r.json["accepted_at"], r.json["due_date"], r.json["due_estimated"]) == (
        "2026-03-02T09:00:00+08:00", "2026-03-05", False)

    r = cli("case", "show", no, as_json=True)
    assert r.rc == 0 and r.json["state"] == "in_progress"
    assert [e["action"] for e in r.json["timeline"]] == ["收件登记", "受理"]
    assert IDENT not in r.out
    r = cli("case", "show", no, "--reveal-id", as_json=True)
    assert r.json["applicant"]["id_number"] == IDENT

    other = cli.new_case(name="李四", ident=id_number(seq="021")).json["case_no"]
    r = cli("case", "list", "--state", "待受理", as_json=True)
    assert [x["case_no"] for x in r.json["items"]] == [other]
    r = cli("case", "list", "--state", "in_progress")
    assert no in r.out and other not in r.out
    assert cli("case", "list", "--overdue").out.strip() == "没有符合条件的办件"
    now("2026-03-10T09:00:00+08:00")
    r = cli("case", "list", "--overdue", as_json=True)
    assert [x["case_no"] for x in r.json["items"]] == [no]

    for query in ("王秀英", "wxy", IDENT[-4:], no):
        r = cli("case", "search", query, as_json=True)
        assert [x["case_no"] for x in r.json["items"]] == [no], query
    assert cli("case", "search", "赵钱孙").out.strip() == "没有找到匹配的办件"

    r = cli("verify")
    assert r.rc == 0 and "全部一致" in r.out


def test_console_script(tmp_path):
    script = Path(sys.executable).with_name("station")
    data = str(tmp_path / "s")
    env = {**os.environ, "STATION_KDF_COST": "low", "STATION_NOW": "2026-03-02T09:00:00+08:00", "STATION_PIN": PIN}

    def run(*args):
        return subprocess.run([str(script), "--data-dir", data, *args], env=env, capture_output=True, text=True,
                              timeout=60)

    r = run("init", "--org", VILLAGE, "--name", "东村便民服务室", "--user", "agent1", "--role", "agent")
    assert r.returncode == 0, r.stderr
    r = run("--json", "case", "new", "--item", PENSION, "--applicant", "王秀英", "--id-number", IDENT,
            "--received", *material_names(PENSION))
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["state"] == "received"
    r = run("case", "new", "--item", PENSION, "--applicant", "王秀英", "--id-number", differ(IDENT))
    assert r.returncode == 2
    assert r.stderr.strip() == "错误：身份证号校验不通过，可能有数字输错，请对照证件逐位核对"
    env["STATION_PIN"] = "wrong-pin-1"
    r = run("case", "list")
    assert r.returncode == 2 and r.stderr.strip() == "错误：PIN不正确，还可尝试9次"


def test_console_script_on_a_tampered_database_prints_one_chinese_line(tmp_path):
    """SQLCipher's own (English) log lines must not reach the user either."""
    script = Path(sys.executable).with_name("station")
    data = tmp_path / "s"
    env = {**os.environ, "STATION_KDF_COST": "low", "STATION_NOW": "2026-03-02T09:00:00+08:00", "STATION_PIN": PIN}
    r = subprocess.run([str(script), "--data-dir", str(data), "init", "--org", VILLAGE, "--name", "东村",
                        "--user", "agent1", "--role", "agent"], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    _flip(data / "station.db", 4096 + 1000)
    r = subprocess.run([str(script), "--data-dir", str(data), "case", "list"], env=env, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "错误：数据库文件已损坏或被篡改（完整性校验失败）。请不要继续使用，联系县中心从备份或上级数据恢复"]


# -- bad input ------------------------------------------------------------------------------------------------


def test_wrong_pin(cli, saved):
    r = cli("case", "list", pin="000001x")
    r.failed_cleanly("PIN不正确", "还可尝试9次")
    r = cli("case", "list", pin="000001x")
    r.failed_cleanly("还可尝试8次")
    assert cli("case", "list").rc == 0  # the right PIN still works and resets the count
    cli.intact(1)


def test_locked_out_user(cli, saved, monkeypatch):
    monkeypatch.setattr(keyslots, "FREE_FAILURES", keyslots.MAX_FAILURES)  # no waiting between tries
    for left in range(9, 0, -1):
        cli("case", "list", pin="wrong-pin").failed_cleanly(f"还可尝试{left}次")
    cli("case", "list", pin="wrong-pin").failed_cleanly("已被锁定15分钟")
    cli("case", "list").failed_cleanly("已被锁定")  # the right PIN waits for the lock to end
    r = cli("user", "list", user="admin1", as_json=True)
    assert [u["locked"] for u in r.json["items"] if u["login"] == "agent1"] == [True]
    cli.intact(1)
    monkeypatch.setenv("STATION_NEW_PIN", "246813")
    assert cli("user", "reset-pin", "agent1", user="admin1").rc == 0
    assert cli("case", "list", pin="246813").rc == 0


def test_delay_after_repeated_wrong_pins(cli, saved):
    for _ in range(3):
        cli("case", "list", pin="wrong-pin").failed_cleanly("PIN不正确")
    cli("case", "list").failed_cleanly("请等待", "秒后再试")  # even the right PIN waits
    cli.intact(1)


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x40
    path.write_bytes(bytes(data))


def test_tampered_database(cli, saved):
    db = cli.data / "station.db"
    assert not db.with_name("station.db-wal").exists()
    _flip(db, 4096 + 1000)  # page 2
    for args in (("case", "list"), ("verify",), ("case", "show", saved)):
        cli(*args).failed_cleanly("数据库文件已损坏或被篡改")
    _flip(db, 4096 + 1000)  # restored: everything was left as it was
    cli.intact(1)


def test_tampered_page_found_by_verify(cli, saved):
    for i in range(20):
        assert cli.new_case(ident=id_number(seq=f"{100 + i:03d}")).rc == 0
    db = cli.data / "station.db"
    _flip(db, db.stat().st_size - 2000)  # the last page
    r = cli("verify", user="admin1")
    assert r.rc == 1 and "Traceback" not in r.err
    assert "发现 1 个问题" in r.out and "数据库完整性" in r.out


def test_truncated_database(cli, saved):
    db = cli.data / "station.db"
    original = db.read_bytes()
    db.write_bytes(original[: len(original) // 2])
    cli("case", "list").failed_cleanly("数据库文件已损坏")
    cli("case", "new", "--item", PENSION, "--applicant", "张三", "--id-number", IDENT).failed_cleanly("数据库文件已损坏")
    db.write_bytes(original)
    cli.intact(1)


def test_database_from_a_newer_version(cli, saved):
    from station.session import unlock

    with unlock(cli.data, "admin1", ADMIN_PIN) as s:
        s.db.execute_sql("INSERT INTO schema_migration (name, applied) VALUES ('0042_new_tables', '2030-01-01')")
    before = (cli.data / "station.db").read_bytes()
    r = cli("case", "list")
    r.failed_cleanly("数据库来自更新版本", "0042_new_tables", "数据未被改动")
    assert (cli.data / "station.db").read_bytes() == before
    cli("verify", user="admin1").failed_cleanly("数据库来自更新版本")


def test_invalid_id_number(cli, saved):
    bad = differ(IDENT)
    r = cli("case", "new", "--item", PENSION, "--applicant", "张三", "--id-number", bad)
    r.failed_cleanly("身份证号校验不通过")
    r = cli("case", "new", "--item", PENSION, "--applicant", "张三", "--id-number", "33052219500101")
    r.failed_cleanly("身份证号应为18位，当前为14位")
    cli.intact(1)


def test_unknown_item_code(cli, saved):
    r = cli("case", "new", "--item", "NO-SUCH-ITEM", "--applicant", "张三", "--id-number", IDENT)
    r.failed_cleanly("未找到事项编码“NO-SUCH-ITEM”")
    cli("catalog", "show", "NO-SUCH-ITEM", user=None).failed_cleanly("未找到事项编码")
    cli.intact(1)


def test_transitions_not_allowed(cli, saved):
    cli("case", "decide", saved, "--outcome", "approved").failed_cleanly("该事项由县级决定，村级代办员不能作出决定")
    cli("case", "deliver", saved).failed_cleanly("办件当前状态为“办理中”，不能送达")
    cli("case", "accept", saved).failed_cleanly("不能受理")
    cli("case", "rate", saved, "--level", "5").failed_cleanly("不能好差评")
    cli("case", "accept", "330522101001-20991231-01-0001").failed_cleanly("没有找到办件")
    r = cli("case", "show", saved, as_json=True)
    assert r.json["state"] == "in_progress" and [e["action"] for e in r.json["timeline"]] == ["收件登记", "受理"]
    cli.intact(1)


def test_full_disk(cli, saved, monkeypatch):
    from station.store import db as dbmod

    before = cli.case_count()
    # every new connection may not grow the file past its current size: SQLite answers SQLITE_FULL
    monkeypatch.setitem(dbmod.PRAGMAS, "max_page_count", 1)
    results = [cli.new_case(ident=id_number(seq=f"{200 + i:03d}")) for i in range(40)]
    full = [r for r in results if r.rc != 0]
    assert full, "the database never filled up"
    for r in full:
        r.failed_cleanly("磁盘空间不足，本次操作未保存")
    written = sum(1 for r in results if r.rc == 0)
    monkeypatch.delitem(dbmod.PRAGMAS, "max_page_count")
    cli.intact(before + written)  # nothing half-written: every case is whole, the chain verifies
    assert cli.new_case(ident=id_number(seq="999")).rc == 0


def test_init_twice(cli, saved):
    r = cli("init", "--org", VILLAGE, "--name", "东村便民服务室", "--user", "other", "--role", "agent", user=None)
    r.failed_cleanly("已有工作站，不能重复初始化")
    cli.intact(1)


def test_bad_arguments_are_explained_in_chinese(cli):
    r = cli("case", "list", "--state", "flying")
    r.failed_cleanly("未知状态“flying”")
    with pytest.raises(SystemExit) as info:
        main(["--data-dir", str(cli.data), "case", "new"])
    assert info.value.code == 2
    assert "命令参数有误" in cli.capsys.readouterr().err


def test_change_own_pin_needs_the_old_one(cli, saved, monkeypatch):
    monkeypatch.setenv("STATION_NEW_PIN", "582046")
    cli("user", "change-pin", pin="wrong-pin").failed_cleanly("PIN不正确")
    r = cli("user", "change-pin")
    assert r.rc == 0 and "已修改 agent1 的PIN" in r.out
    cli("case", "list").failed_cleanly("PIN不正确")  # the old PIN is gone
    assert cli("case", "list", pin="582046").rc == 0
    monkeypatch.setenv("STATION_NEW_PIN", "12")
    cli("user", "change-pin", pin="582046").failed_cleanly("PIN至少需要6位")
    cli.intact(1)


def test_reset_pin_is_for_a_higher_role_and_of_oneself_is_the_change_path(cli, saved, monkeypatch):
    monkeypatch.setenv("STATION_NEW_PIN", "582046")
    cli("user", "reset-pin", "admin1").failed_cleanly("代办员不能重置PIN")
    assert cli("case", "list", user="admin1").rc == 0  # the admin's PIN is untouched
    cli("user", "reset-pin", "agent1", pin="wrong-pin").failed_cleanly("PIN不正确")  # oneself: the old PIN
    assert cli("user", "reset-pin", "agent1").rc == 0
    assert cli("case", "list", pin="582046").rc == 0
    monkeypatch.setenv("STATION_NEW_PIN", "246813")
    assert cli("user", "reset-pin", "agent1", user="admin1").rc == 0  # the admin resets the agent's
    assert cli("case", "list", pin="246813").rc == 0
    r = cli("case", "list", user="admin1", as_json=True)
    assert r.rc == 0
    from station.session import unlock

    with unlock(cli.data, "admin1", ADMIN_PIN) as s:
        hows = [json.loads(b)["how"] for (b,) in s.db.execute_sql(
            "SELECT body FROM event WHERE kind = 'user.pin_reset' ORDER BY seq").fetchall()]
    assert hows == ["changed", "reset"]
