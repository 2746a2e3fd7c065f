"""``county-center`` commands: Chinese help and errors, exit codes, never a traceback."""

from __future__ import annotations

import csv
import dataclasses
import json
import time
from pathlib import Path

import pytest
from openpyxl import Workbook

from schema import canonical
from schema import events as K
from schema.catalog import Catalog, default_catalog
from schema.events import Event, verify_chain
from sync import enrollment, envelope
from sync.crypto import KeyPair
from sync.messages import sign_doc
from sync.server import cli
from sync.server.audit import alarm_now
from sync.server.db import connect
from sync.server.ingest import ingest_segment
from sync.server.keystore import load_county, unlock
from tests.helpers import COUNTY, VILLAGE, VILLAGE2
from tests.sync.conftest import PASSPHRASE
from tests.sync.county_kit import enroll_direct, make_station

ROOT = Path(__file__).resolve().parents[2]


def has_chinese(text: str) -> bool:
    return any("\u4e00" <= c <= "\u9fff" for c in text)


@pytest.fixture
def cc(db_url, monkeypatch, capsys, tmp_path):
    """Run ``county-center`` in-process against a fresh database: ``cc("stations")`` → (code, out, err)."""
    monkeypatch.setenv("COUNTY_DB", db_url)
    monkeypatch.setenv("COUNTY_PASSPHRASE", PASSPHRASE)
    monkeypatch.setenv("COUNTY_LOG", str(tmp_path / "county-center.log"))
    monkeypatch.chdir(tmp_path)

    def run(*argv: str) -> tuple[int, str, str]:
        code = cli.main([str(a) for a in argv])
        out, err = capsys.readouterr()
        assert "Traceback" not in out + err
        if code == 2:
            assert has_chinese(err) and len(err.strip().splitlines()) <= 3, err
        return code, out, err

    run.url = db_url
    return run


def events_of(url: str, kind: str) -> list[dict]:
    cdb = connect(url)
    E = cdb.m.Event
    rows = [json.loads(r.data) for r in E.select().where(E.kind == kind).order_by(E.pos)]
    cdb.close()
    return rows


def test_init_once_then_refused(cc):
    code, out, _ = cc("init", "--code", COUNTY, "--name", "测试县", "--json")
    assert code == 0 and json.loads(out)["county"] == COUNTY
    code, _, err = cc("init", "--code", COUNTY, "--name", "测试县")
    assert code == 2 and "已初始化" in err
    cdb = connect(cc.url)
    assert load_county(cdb).name == "测试县"
    assert PASSPHRASE not in json.dumps(cdb.get_meta_json("keys.keypair"))


@pytest.mark.parametrize("backend", ["sqlite"])
def test_init_errors(cc, monkeypatch):
    assert cc("init", "--code", VILLAGE, "--name", "x")[0] == 2
    assert cc("init", "--code", "12345", "--name", "x")[0] == 2
    monkeypatch.delenv("COUNTY_PASSPHRASE")
    code, _, err = cc("init", "--code", COUNTY, "--name", "测试县")
    assert code == 2 and "COUNTY_PASSPHRASE" in err
    monkeypatch.setenv("COUNTY_PASSPHRASE", "short")
    assert cc("init", "--code", COUNTY, "--name", "测试县")[0] == 2
    monkeypatch.setenv("COUNTY_PASSPHRASE", PASSPHRASE)
    code, _, err = cc("stations")
    assert code == 2 and "尚未初始化" in err
    code, _, err = cc("--db", "sqlite:////nonexistent/dir/x.db", "stations")
    assert code == 2 and "不存在" in err
    code, _, err = cc("--db", "mysql://x", "stations")
    assert code == 2


@pytest.mark.parametrize("backend", ["sqlite"])
def test_help_is_chinese_everywhere(cc, capsys):
    parser = cli.build_parser()
    for argv in (
        ["--help"],
        ["init", "--help"],
        ["serve", "--help"],
        ["enroll", "--help"],
        ["catalog", "publish", "--help"],
        ["calendar", "set", "--help"],
        ["import", "--help"],
        ["export", "--help"],
        ["stations", "--help"],
    ):
        with pytest.raises(SystemExit) as e:
            parser.parse_args(argv)
        assert e.value.code == 0
        assert has_chinese(capsys.readouterr().out)
    code, _, err = cc("enroll", "--bogus")
    assert code == 2 and "--help" in err


def test_enroll_revoke_stations_users(cc, tmp_path):
    cc("init", "--code", COUNTY, "--name", "测试县", "--url", "http://county.example:8470")
    code, out, _ = cc("enroll", "--org", VILLAGE, "--role", "village", "--json")
    assert code == 0
    enroll_code, fingerprint = json.loads(out)["code"], json.loads(out)["fingerprint"]
    assert len(enroll_code) == 14 and enroll_code.count("-") == 2
    code, out, _ = cc("enroll", "--org", VILLAGE, "--role", "village")
    assert code == 0 and f"县中心密钥指纹：{fingerprint}" in out  # printed beside the code
    code, _, err = cc("enroll", "--org", VILLAGE, "--role", "township")
    assert code == 2 and "不符" in err
    assert cc("enroll", "--org", "330523101001", "--role", "village")[0] == 2  # another county
    # offline: the station's request file → answer file
    st = make_station(VILLAGE, "village", role="admin")  # its first user is the local admin
    req, resp = tmp_path / "req.json", tmp_path / "resp.json"
    req.write_text(json.dumps(st.enroll_request(enroll_code)), encoding="utf-8")
    code, out, _ = cc("enroll", "--request-file", req, "--response-file", resp)
    assert code == 0 and st.id in out
    answer = json.loads(resp.read_text(encoding="utf-8"))
    opened = enrollment.open_answer(
        answer, enrollment.derive(enroll_code, COUNTY).key, json.loads(req.read_text(encoding="utf-8"))
    )
    assert opened.county["url"] == "http://county.example:8470"
    assert enrollment.fingerprint(opened.sign_pub, opened.enc_pub, opened.recovery_pub) == fingerprint
    assert fingerprint in out
    code, _, err = cc("enroll", "--request-file", tmp_path / "missing.json", "--response-file", resp)
    assert code == 2
    # A request file changed on the stick (another key put in, re-signed) fails the code's check;
    # no answer is written.
    code2 = json.loads(cc("enroll", "--org", VILLAGE2, "--role", "village", "--json")[1])["code"]
    other = make_station(VILLAGE2, "village")
    real = other.enroll_request(code2)
    liar = KeyPair.generate()
    swapped = sign_doc({**json.loads(real["h"]), **liar.public.to_dict()}, liar) | {"m": real["m"]}
    req.write_text(json.dumps(swapped), encoding="utf-8")
    resp2 = tmp_path / "resp2.json"
    code, _, err = cc("enroll", "--request-file", req, "--response-file", resp2)
    assert code == 2 and "登记码校验" in err and not resp2.exists()
    for deep in ("[" * 6000 + "]" * 6000, json.dumps({"h": "[" * 6000, "s": ""})):  # issue #8, finding 7
        req.write_text(deep, encoding="utf-8")
        code, _, err = cc("enroll", "--request-file", req, "--response-file", resp)
        assert code == 2 and has_chinese(err), err
    # the station pushes a user, then shows up in the listings
    cdb = connect(cc.url)
    county = load_county(cdb)
    st.record(
        K.USER_ADDED,
        "u1",
        {"user_id": "u1", "login": "wang", "name": "王芳", "role": "agent", "org": VILLAGE},
    )  # the admin adds an agent
    assert ingest_segment(cdb, unlock(cdb, PASSPHRASE), st.segment(county=COUNTY)).status == "stored"
    code, out, _ = cc("stations", "--json")
    (row,) = json.loads(out)
    assert (row["id"], row["org"], row["status"], row["head_seq"]) == (st.id, VILLAGE, "active", 3)
    assert row["pending"] >= 1  # its own enrollment event, at least
    code, out, _ = cc("stations")
    assert code == 0 and "正常" in out and st.id in out
    code, out, _ = cc("users")
    assert code == 0 and "王芳" in out and "wang" in out
    # revoke
    code, out, _ = cc("revoke", st.id, "--reason", "电脑丢失")
    assert code == 0 and "已吊销" in out
    assert cc("revoke", st.id)[0] == 2
    assert cc("revoke", "no-such-station")[0] == 2
    assert cc("revoke", county.station)[0] == 2
    (ev,) = events_of(cc.url, K.STATION_REVOKED)
    assert ev["body"] == {"station": st.id, "reason": "电脑丢失"} and ev["station"] == county.station
    assert "已吊销" in cc("stations")[1]


def test_calendar_set(cc):
    cc("init", "--code", COUNTY, "--name", "测试县")
    assert cc("calendar", "set", "2027-02-06", "workday")[0] == 0
    assert cc("calendar", "set", "2027-02-08", "休息日")[0] == 0
    assert cc("calendar", "set", "2027-13-01", "rest")[0] == 2
    assert cc("calendar", "set", "2027-02-09", "maybe")[0] == 2
    bodies = [e["body"] for e in events_of(cc.url, K.CALENDAR_SET)]
    assert bodies == [
        {"day": "2027-02-06", "workday": True, "source": "county"},
        {"day": "2027-02-08", "workday": False, "source": "county"},
    ]
    # the county chain is a gapless hash chain
    cdb = connect(cc.url)
    county = load_county(cdb)
    E = cdb.m.Event
    chain = [json.loads(r.data) for r in E.select().where(E.station == county.station).order_by(E.seq)]
    verify_chain([Event.from_dict(d) for d in chain])
    assert all(d["actor"] == "county-center" and d["org"] == COUNTY for d in chain)


# -- catalog -------------------------------------------------------------------------------------------


def _catalog_tables(catalog: Catalog) -> tuple[list[list], list[list]]:
    def limit(tl):
        return "" if tl is None else f"{tl.days}{tl.unit.label}"

    items = [
        [
            "实施编码",
            "基本编码",
            "事项名称",
            "实施主体",
            "事项类型",
            "办件类型",
            "决定层级",
            "承诺时限",
            "法定时限",
            "公示期",
            "补正期限",
            "收费（分）",
            "收费说明",
            "村级可受理",
            "联办部门",
            "即办层级",
            "设定依据",
            "办事指南",
        ]
    ]
    mats = [["实施编码", "材料名称", "材料形式", "是否必需", "是否容缺", "份数", "备注"]]
    for it in catalog.items:
        items.append(
            [
                it.impl_code,
                it.basic_code,
                it.name,
                it.department,
                it.item_type,
                it.case_type.label,
                it.decide_level.label,
                limit(it.promise_limit),
                limit(it.legal_limit),
                limit(it.publicity),
                limit(it.supplement_limit),
                it.fee_fen,
                it.fee_note,
                "是" if it.village_may_accept else "否",
                "、".join(it.co_departments),
                "、".join(lv.label for lv in it.immediate_levels),
                it.basis,
                it.guide,
            ]
        )
        for m in it.materials:
            mats.append(
                [
                    it.impl_code,
                    m.name,
                    m.form.label,
                    "是" if m.required else "否",
                    "是" if m.rongque else "否",
                    m.count,
                    m.note,
                ]
            )
    return items, mats


def _write_csv(path: Path, rows: list[list]) -> None:
    with open(path, "w", encoding="utf-8-sig", newline="") as f:
        csv.writer(f).writerows(rows)


def test_catalog_publish_json_csv_xlsx_round_trip(cc, tmp_path):
    cc("init", "--code", COUNTY, "--name", "测试县")
    src = ROOT / "schema" / "data" / "catalog.json"
    code, out, _ = cc("catalog", "publish", src, "--json")
    assert code == 0 and json.loads(out)["items"] == len(default_catalog().items)
    code, _, err = cc("catalog", "publish", src)
    assert code == 2 and "已经发布过" in err
    items, mats = _catalog_tables(default_catalog())
    _write_csv(tmp_path / "目录.csv", items)
    _write_csv(tmp_path / "目录-材料.csv", mats)
    assert cc("catalog", "publish", tmp_path / "目录.csv")[0] == 2  # --version is required
    assert (
        cc("catalog", "publish", tmp_path / "目录.csv", "--version", "2027.1", "--date", "2027-01-01")[0] == 0
    )
    wb = Workbook()
    ws = wb.active
    ws.title = "事项"
    for r in items:
        ws.append(r)
    ws2 = wb.create_sheet("材料")
    for r in mats:
        ws2.append(r)
    wb.save(tmp_path / "目录.xlsx")
    assert (
        cc("catalog", "publish", tmp_path / "目录.xlsx", "--version", "2027.2", "--date", "2027-01-01")[0]
        == 0
    )
    published = events_of(cc.url, K.CATALOG_PUBLISHED)
    assert [e["subject"] for e in published] == ["2026.1", "2027.1", "2027.2"]
    expected = {**default_catalog().to_dict(), "county": COUNTY}
    for e in published:
        assert Catalog.from_dict(e["body"]).to_dict() == e["body"]  # valid catalogs
        assert e["body"]["items"] == expected["items"]  # every format carries the same items
        assert e["body"]["county"] == COUNTY


@pytest.mark.parametrize("backend", ["sqlite"])
@pytest.mark.parametrize(
    "row,col,value,words",
    [
        (2, 6, "外星级", ["第2行", "决定层级"]),
        (3, 7, "", ["第3行", "承诺时限", "不能为空"]),
        (2, 7, "二十天", ["第2行", "承诺时限"]),
        (4, 13, "也许", ["第4行", "村级可受理"]),
        (2, 11, "-5", ["第2行", "收费"]),
        (3, 0, "", ["第3行", "实施编码"]),
    ],
)
def test_catalog_csv_bad_rows_name_the_row_and_field(cc, tmp_path, row, col, value, words):
    cc("init", "--code", COUNTY, "--name", "测试县")
    items, mats = _catalog_tables(default_catalog())
    items[row - 1][col] = value
    _write_csv(tmp_path / "c.csv", items)
    _write_csv(tmp_path / "c-材料.csv", mats)
    code, _, err = cc("catalog", "publish", tmp_path / "c.csv", "--version", "9")
    assert code == 2 and all(w in err for w in words), err
    assert events_of(cc.url, K.CATALOG_PUBLISHED) == []


@pytest.mark.parametrize("backend", ["sqlite"])
def test_catalog_bad_files(cc, tmp_path):
    cc("init", "--code", COUNTY, "--name", "测试县")
    items, mats = _catalog_tables(default_catalog())
    _write_csv(tmp_path / "c.csv", items)
    mats[3][2] = "羊皮卷"
    _write_csv(tmp_path / "c-材料.csv", mats)
    code, _, err = cc("catalog", "publish", tmp_path / "c.csv", "--version", "9")
    assert code == 2 and "第4行" in err and "材料形式" in err
    mats[3][2] = "原件"
    mats[3][0] = "NOPE"
    _write_csv(tmp_path / "c-材料.csv", mats)
    code, _, err = cc("catalog", "publish", tmp_path / "c.csv", "--version", "9")
    assert code == 2 and "NOPE" in err
    (tmp_path / "c-材料.csv").unlink()
    assert "材料表" in cc("catalog", "publish", tmp_path / "c.csv", "--version", "9")[2]
    (tmp_path / "x.xlsx").write_bytes(b"not a zip")
    assert "Excel" in cc("catalog", "publish", tmp_path / "x.xlsx", "--version", "9")[2]
    (tmp_path / "x.json").write_text('{"version": "1", "items": [{"impl_code": "A"}]}', encoding="utf-8")
    assert cc("catalog", "publish", tmp_path / "x.json")[0] == 2
    (tmp_path / "other.json").write_text(
        json.dumps({**default_catalog().to_dict(), "county": "330523000000"})
    )
    assert "不是本县" in cc("catalog", "publish", tmp_path / "other.json")[2]
    assert cc("catalog", "publish", tmp_path / "nothing.json")[0] == 2
    assert cc("catalog", "publish", tmp_path / "x.txt")[0] == 2
    (tmp_path / "deep.json").write_text("[" * 6000 + "]" * 6000)
    assert "嵌套" in cc("catalog", "publish", tmp_path / "deep.json")[2]
    assert events_of(cc.url, K.CATALOG_PUBLISHED) == []


# -- bundles -------------------------------------------------------------------------------------------------


def _bundle(st, county, segments, *, cursor=0, extra_recipients=(), signer=None, made=0) -> bytes:
    """``made``: minutes before now that the file was made (its signed time)."""
    payload = {
        "t": "bundle",
        "v": 1,
        "from": st.id,
        "made_at": "2026-03-02T10:00:00+08:00",
        "segments": segments,
        "cursor": cursor,
        "acked": 0,
    }
    return envelope.seal(
        canonical.encode(payload),
        kind="bundle",
        sender=st.id,
        recipients=[county.public.enc, *extra_recipients],
        signer=signer or st.key,
        at_ms=int(time.time() * 1000) - made * 60_000,
    )


def test_import_and_export_bundles(cc, tmp_path):
    cc("init", "--code", COUNTY, "--name", "测试县")
    cdb = connect(cc.url)
    county = load_county(cdb)
    unlocked = unlock(cdb, PASSPHRASE)
    v, v2 = make_station(VILLAGE, "village"), make_station(VILLAGE2, "village")
    enroll_direct(cdb, unlocked, v)
    enroll_direct(cdb, unlocked, v2)
    for _ in range(3):
        v.register()
    usb = tmp_path / "usb"
    usb.mkdir()
    (usb / "a1.cvs").write_bytes(_bundle(v, county, [v.segment(1, 2, county=COUNTY)], cursor=1, made=20))
    (usb / "a2.cvs").write_bytes(_bundle(v, county, [v.segment(1, 3, county=COUNTY)], cursor=2, made=10))
    (usb / "b.cvs").write_bytes(b"CVSYNC garbage")
    whole = _bundle(v, county, [v.segment(1, 3, county=COUNTY)])
    (usb / "b2.cvs").write_bytes(whole[: len(whole) // 2])  # a copy interrupted half-way
    flipped = bytearray(whole)
    flipped[-10] ^= 1
    (usb / "b3.cvs").write_bytes(bytes(flipped))
    elsewhere = dataclasses.replace(county, public=KeyPair.generate().public)  # another county's key
    (usb / "c.cvs").write_bytes(_bundle(v, elsewhere, []))
    (usb / "notes.txt").write_text("ignored")
    code, out, _ = cc("import", usb, "--json")
    results = {Path(r["file"]).name: r for r in json.loads(out)}
    assert code == 1  # b.cvs was refused
    assert results["a1.cvs"]["status"] == "imported" and results["a2.cvs"]["status"] == "imported"
    assert [(s["status"], s["stored"]) for s in results["a1.cvs"]["segments"]] == [("stored", 2)]
    assert [(s["status"], s["stored"]) for s in results["a2.cvs"]["segments"]] == [("stored", 1)]
    assert results["b.cvs"]["status"] == "refused" and results["c.cvs"]["status"] == "skipped"
    assert results["b2.cvs"]["status"] == "refused" and "不完整" in results["b2.cvs"]["message"]
    assert results["b3.cvs"]["status"] == "refused" and "签名" in results["b3.cvs"]["message"]
    assert "notes.txt" not in results
    assert cdb.m.Station.get_by_id(v.id).head_seq == 3
    assert cdb.m.Station.get_by_id(v.id).last_cursor == 2
    code, out, _ = cc("import", usb / "a2.cvs")  # again: all duplicates
    assert code == 0 and "新收0条" in out
    # an older file imported later (or a copy of one) does not move the cursor back
    assert cc("import", usb / "a1.cvs")[0] == 0
    assert cdb.m.Station.get_by_id(v.id).last_cursor == 2
    # export a return file for v2 and open it as v2
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    code, out, _ = cc("export", "--station", v2.id, "--out", out_dir, "--json")
    assert code == 0
    info = json.loads(out)
    blob = Path(info["file"]).read_bytes()
    assert Path(info["file"]).suffix == ".cvs" and not list(out_dir.glob("*.part"))
    ret = v2.open_return(county, blob)
    kinds = [e["kind"] for p in ret["pages"] for e in p["events"]]
    assert kinds.count(K.STATION_ENROLLED) == 2 and K.CASE_REGISTERED not in kinds  # v's cases are not v2's
    assert ret["receipts"] == []
    assert info["events"] == len(kinds)
    assert cc("export", "--station", "nope", "--out", out_dir)[0] == 2
    assert cc("export", "--station", v2.id, "--out", tmp_path / "missing")[0] == 2
    code, out, _ = cc("audit")
    assert code == 0 and "import" in out


def test_each_file_of_a_folder_is_judged_on_its_own(cc, tmp_path):
    """Issue #8, finding 7: a 12 KB hostile file beside a valid one made ``import`` exit 70 and skip the
    valid file. Now: the valid file is imported, each bad file gets one line naming it, exit 1."""
    cc("init", "--code", COUNTY, "--name", "测试县")
    cdb = connect(cc.url)
    county = load_county(cdb)
    v, ghost = make_station(VILLAGE, "village"), make_station(VILLAGE2, "village")
    enroll_direct(cdb, unlock(cdb, PASSPHRASE), v)
    v.register()
    usb = tmp_path / "usb"
    usb.mkdir()
    (usb / "good.cvs").write_bytes(_bundle(v, county, [v.segment(county=COUNTY)]))
    deep = b"[" * 6000 + b"]" * 6000  # a 12 KB header nested 6,000 deep
    (usb / "deep.cvs").write_bytes(
        envelope.MAGIC + bytes([envelope.VERSION]) + len(deep).to_bytes(4, "big") + deep + bytes(100)
    )
    nasty = canonical.encode({"t": "bundle", "v": 1, "from": v.id, "segments": []})[:-1] + b',"x":'
    nasty += b"[" * 5000 + b"]" * 5000 + b"}"  # signed by v itself: refused for its nesting, not a crash
    (usb / "nested.cvs").write_bytes(
        envelope.seal(nasty, kind="bundle", sender=v.id, recipients=[county.public.enc], signer=v.key)
    )
    (usb / "forged.cvs").write_bytes(
        _bundle(v, county, [v.segment(county=COUNTY)], signer=KeyPair.generate())
    )
    (usb / "ghost.cvs").write_bytes(_bundle(ghost, county, [], signer=ghost.key))
    code, out, err = cc("import", usb)
    assert code == 1 and err == ""
    lines = {line.split()[1]: line for line in out.splitlines() if line.split()[1].endswith(".cvs")}
    assert lines["good.cvs"].startswith("已导入") and "新收3条" in lines["good.cvs"]  # 2 bootstrap events + 1
    assert "嵌套" in lines["deep.cvs"] and "嵌套" in lines["nested.cvs"]
    assert "签名" in lines["forged.cvs"] and "登记" in lines["ghost.cvs"]
    assert len(out.splitlines()) == 5
    assert cdb.m.Station.get_by_id(v.id).head_seq == 3
    # the forged file names v, but the alarm names where it came from, not v
    alarms = json.loads(cc("alarms", "--json")[1])
    assert [(a["kind"], a["station"], a["source"]) for a in alarms] == [("signature", "", "usb")]
    assert alarms[0]["detail"]["claimed"] == v.id


def test_alarms_command(cc):
    cc("init", "--code", COUNTY, "--name", "测试县")
    code, out, _ = cc("alarms")
    assert code == 0 and "没有报警" in out
    cdb = connect(cc.url)
    alarm_now(cdb, "fork", "st-1", first=1, last=2)
    code, out, _ = cc("alarms", "--json")
    assert json.loads(out)[0]["kind"] == "fork"
    assert "链分叉" in cc("alarms")[1]


@pytest.mark.parametrize("backend", ["sqlite"])
def test_internal_errors_exit_70_without_traceback(cc, monkeypatch, tmp_path):
    cc("init", "--code", COUNTY, "--name", "测试县")
    assert cc("alarms", "--limit", "1")[0] == 0

    def boom(*args, **kwargs):
        raise RuntimeError("kaboom")

    monkeypatch.setattr(cli.audit, "alarms", boom)
    code, _, err = cc("alarms")
    assert code == 70 and has_chinese(err) and "kaboom" not in err
    assert "kaboom" in (tmp_path / "county-center.log").read_text(encoding="utf-8")
