"""``county-center``: the county center's command line (Chinese help and messages).

Every error is one Chinese line on stderr: exit code 2 for something the user can fix,
70 for an internal fault (its traceback goes to the log file ``$COUNTY_LOG``, default
``county-center.log`` in the current directory, never to the screen). ``import`` exits 1
when some segment was refused. ``--json`` prints machine-readable output for scripts.
The admin passphrase comes from ``$COUNTY_PASSPHRASE`` or a prompt.
"""

from __future__ import annotations

import argparse
import datetime
import getpass
import json
import logging
import os
import socket
import ssl
import sys
from pathlib import Path
from typing import Any

from schema import events as K
from schema.cliparse import ChineseParser, GlobalOptions, human_time
from schema.errors import UserError
from schema.org import complete_org_code
from sync import bounded
from sync.errors import ProtocolError
from sync.server import audit, bundles, catalog_import, county_chain, pull, registry
from sync.server.config import CST, Settings, default_db_url, iso_of_ms
from sync.server.db import CountyDB, connect
from sync.server.keystore import (
    County,
    check_not_initialised,
    init_county,
    load_county,
    unlock,
    unlock_recovery,
)

EXIT_OK = 0
EXIT_PARTIAL = 1
EXIT_USER_ERROR = 2
EXIT_INTERNAL = 70

log = logging.getLogger("county_center")

CATALOG_HELP = """\
事项目录文件格式：
  .json  与软件自带的 schema/data/catalog.json 完全相同的格式
  .xlsx  “事项”工作表每行一个事项，“材料”工作表每行一项材料（按实施编码对应事项）
  .csv   事项表一个文件，材料表另一个文件（--materials 指定，或放在“<文件名>-材料.csv”）
事项表列名：实施编码 基本编码 事项名称 实施主体 事项类型 办件类型 决定层级 承诺时限 法定时限
  公示期 补正期限 收费（分） 收费说明 村级可受理 联办部门 设定依据 办事指南
材料表列名：实施编码 材料名称 材料形式 是否必需 是否容缺 份数 备注
时限写成“20工作日”“7自然日”，即办件写“0”；是/否列填“是”或“否”；联办部门用“、”分隔。
CSV/Excel 须用 --version 指定版本号。有错误时指出行号和列名，不发布任何内容。"""


def global_options() -> GlobalOptions:
    """``--db`` and ``--json``: accepted before or after any sub-command."""
    g = GlobalOptions()
    g.add(
        "--db",
        metavar="URL",
        help="数据库地址：sqlite:///文件路径 或 postgresql://用户@主机/库名（默认 $COUNTY_DB 或 sqlite:///county.db）",
    )
    g.add("--json", action="store_true", default=False, help="输出机器可读的 JSON（时间为 ISO 8601）")
    return g


def build_parser() -> ChineseParser:
    p = ChineseParser(
        prog="county-center",
        global_options=global_options(),
        description="政务便民服务县中心（同步服务器与管理命令）。--db、--json 可写在命令前或命令后。",
        epilog="管理口令从 $COUNTY_PASSPHRASE 读取，未设置时在终端提示输入。",
    )
    sub = p.add_subparsers(dest="command")

    def cmd(name: str, help_: str, func, **kw) -> argparse.ArgumentParser:
        s = sub.add_parser(name, help=help_, **kw)
        s.set_defaults(func=func)
        return s

    s = cmd("init", "初始化县中心：建库、生成县中心密钥（用管理口令加密保存）", cmd_init)
    s.add_argument("--code", required=True, metavar="CODE", help="县的区划代码：6位（如 330522）或12位")
    s.add_argument("--name", required=True, help="县中心名称，如“某县政务服务中心”")
    s.add_argument(
        "--url", default="", help="工作站访问县中心的地址（登记时告知工作站），如 http://10.0.0.5:8470"
    )

    s = cmd(
        "serve",
        "启动同步服务（需要管理口令）",
        cmd_serve,
        epilog="对外服务请用 https：--tls-cert 证书 --tls-key 私钥，或放在 nginx 等反向代理之后（见 docs/county-center.md）。",
    )
    s.add_argument("--host", default="127.0.0.1", help="监听地址（默认 127.0.0.1；对外服务用 0.0.0.0）")
    s.add_argument("--port", type=int, default=8470, help="端口（默认 8470；0 表示任选空闲端口）")
    s.add_argument(
        "--url", default="", help="工作站访问县中心的地址（默认为数据库中保存的地址或 http(s)://主机:端口）"
    )
    s.add_argument(
        "--tls-cert",
        type=Path,
        default=None,
        help="TLS证书文件（PEM，含中间证书）；与 --tls-key 一起给出时用 https 服务",
    )
    s.add_argument(
        "--tls-key", type=Path, default=None, help="TLS私钥文件（PEM，不加密；只应让运行本服务的账户可读）"
    )

    s = cmd(
        "enroll",
        "生成工作站一次性登记码，或答复离线登记请求文件",
        cmd_enroll,
        epilog="在线登记：county-center enroll --org 330522101001 --role village，把显示的登记码和县中心密钥指纹\n"
        "当面或电话告知工作站（不要通过网络发送登记码；7天内有效，只能用一次）。\n"
        "离线登记：county-center enroll --request-file 请求.json --response-file 答复.json（需要管理口令）。",
    )
    s.add_argument("--org", metavar="CODE", help="工作站所属单位的区划代码：村12位；乡镇9位或12位；县6位或12位")
    s.add_argument("--role", help="工作站层级：village 村级 / township 乡镇级 / county 县级")
    s.add_argument("--name", default="", help="工作站名称（可选）")
    s.add_argument("--days", type=int, default=registry.CODE_DAYS, help="登记码有效天数（默认7）")
    s.add_argument("--request-file", type=Path, help="工作站导出的离线登记请求文件")
    s.add_argument("--response-file", type=Path, help="写出的登记答复文件（带回工作站导入）")

    s = cmd(
        "recover",
        "答复工作站用户的恢复申请（PIN被锁定或遗忘）：核对后用恢复密钥放行（需要管理口令）",
        cmd_recover,
        epilog="U盘申请：county-center recover 申请文件 --response-file 答复文件 [--check 核对码]\n"
        "联网申请：county-center recover --list 查看；county-center recover --approve 申请编号 [--check 核对码]；"
        "county-center recover --refuse 申请编号 --reason 原因\n"
        "批准前请用县中心登记的电话联系该工作站，请对方读出屏幕上的核对码，与这里显示的一致才可批准。",
    )
    s.add_argument("request_file", nargs="?", type=Path, metavar="FILE", help="工作站写出的恢复申请文件（U盘）")
    s.add_argument("--response-file", type=Path, help="写出的答复文件（带回工作站导入）")
    s.add_argument("--check", default=None, help="工作站屏幕上的核对码（不给出时在终端提示输入）")
    s.add_argument("--list", action="store_true", help="列出联网提交、等待处理的恢复申请")
    s.add_argument("--approve", metavar="ID", default=None, help="批准一个联网提交的恢复申请（申请编号）")
    s.add_argument("--refuse", metavar="ID", default=None, help="拒绝一个联网提交的恢复申请（申请编号）")
    s.add_argument("--reason", default="", help="拒绝的原因（会告知工作站）")

    s = cmd("revoke", "吊销工作站（电脑丢失、报废等）：之后它不能再同步", cmd_revoke)
    s.add_argument("station", metavar="STATION", help="工作站编号（见 county-center stations）")
    s.add_argument("--reason", default="", help="吊销原因（会告知该工作站）")

    cmd("stations", "列出工作站：最后联系时间、已收到的记录、待下载条数、报警数", cmd_stations)
    cmd("users", "列出各工作站的人员（来自工作站上传的用户记录）", cmd_users)

    cat = sub.add_parser("catalog", help="事项目录").add_subparsers(dest="sub", metavar="操作")
    s = cat.add_parser("publish", help="发布事项目录（json/csv/xlsx）", description=CATALOG_HELP)
    s.add_argument("file", type=Path, metavar="FILE", help="事项目录文件（.json、.xlsx 或 .csv）")
    s.add_argument(
        "--version", dest="catalog_version", default=None, help="版本号（CSV/Excel 必填），如 2027.1"
    )
    s.add_argument("--date", default=None, help="发布日期 YYYY-MM-DD（默认今天）")
    s.add_argument("--materials", type=Path, default=None, help="CSV格式时的材料表文件")
    s.set_defaults(func=cmd_catalog_publish)

    cal = sub.add_parser("calendar", help="工作日历").add_subparsers(dest="sub", metavar="操作")
    s = cal.add_parser("set", help="设定某天为工作日或休息日（覆盖国家日历，发布到所有工作站）")
    s.add_argument("day", metavar="DATE", help="日期 YYYY-MM-DD")
    s.add_argument("kind", metavar="KIND", help="workday 工作日 / rest 休息日")
    s.set_defaults(func=cmd_calendar_set)

    s = cmd(
        "import",
        "导入工作站的U盘数据包（文件或目录，需要管理口令）；每个文件单独判断，"
        "有文件或同步段被拒收时退出码为1",
        cmd_import,
    )
    s.add_argument("path", type=Path, metavar="PATH", help="数据包文件（*.cvs），或存放数据包的文件夹（如U盘）")

    s = cmd("export", "为某工作站导出下发数据包到目录（如U盘，需要管理口令）", cmd_export)
    s.add_argument("--station", required=True, help="工作站编号")
    s.add_argument("--out", required=True, type=Path, help="输出目录")

    s = cmd(
        "alarms",
        "查看报警：链分叉、时钟异常、已吊销工作站的同步尝试、签名不符、重放等"
        "（未通过签名校验的请求只记来源地址，不记它声称的工作站）",
        cmd_alarms,
    )
    s.add_argument("--limit", type=int, default=100, help="最多显示条数")
    s.add_argument("--station", default=None, help="只看某个工作站")

    s = cmd("audit", "查看审计日志（所有被拒绝的请求）", cmd_audit)
    s.add_argument("--limit", type=int, default=100, help="最多显示条数")
    return p


# -- helpers -----------------------------------------------------------------------------------------


def _db(args) -> CountyDB:
    return connect(getattr(args, "db", None) or default_db_url())


def _passphrase(*, confirm: bool = False) -> str:
    env = os.environ.get("COUNTY_PASSPHRASE")
    if env:
        return env
    if not sys.stdin.isatty():
        raise UserError("需要管理口令：请设置环境变量 COUNTY_PASSPHRASE，或在终端中运行以便输入")
    first = getpass.getpass("县中心管理口令：")
    if confirm:
        if len(first) < 8:
            raise UserError("管理口令至少8个字符")
        if getpass.getpass("再次输入管理口令：") != first:
            raise UserError("两次输入的管理口令不一致")
    return first


def _unlocked(cdb: CountyDB) -> County:
    load_county(cdb)  # "not initialised" before asking for a passphrase
    return unlock(cdb, _passphrase())


def _out(args, data: Any, text: str | None = None) -> None:
    if getattr(args, "json", False):
        print(json.dumps(data, ensure_ascii=False, indent=1))
    elif text is not None:
        print(text)


def _table(rows: list[list[str]], header: list[str]) -> str:
    def width(s: str) -> int:
        return sum(2 if ord(c) > 0x2E80 else 1 for c in s)

    allrows = [header] + rows
    widths = [max(width(r[i]) for r in allrows) for i in range(len(header))]
    return "\n".join(
        "  ".join(c + " " * (widths[i] - width(c)) for i, c in enumerate(r)).rstrip() for r in allrows
    )


# -- commands --------------------------------------------------------------------------------------------


def cmd_init(args) -> int:
    cdb = _db(args)
    check_not_initialised(cdb)  # before asking for a passphrase
    code = complete_org_code(args.code, "county")
    county = init_county(
        cdb, code=code, name=args.name, passphrase=_passphrase(confirm=True), url=args.url
    )
    _out(
        args,
        {
            "county": county.code,
            "name": county.name,
            "station": county.station,
            "db": cdb.url,
            "fingerprint": county.fingerprint,
        },
        f"县中心已初始化：{county.name}（{county.code}）\n县中心编号：{county.station}\n数据库：{cdb.url}\n"
        f"县中心密钥指纹：{county.fingerprint}\n"
        "请牢记管理口令：丢失后无法恢复县中心密钥。",
    )
    return EXIT_OK


def cmd_serve(args) -> int:
    import uvicorn

    from sync.server.app import create_app

    tls = _tls_options(args.tls_cert, args.tls_key)
    cdb = _db(args)
    county = _unlocked(cdb)
    if not 0 <= args.port <= 65535:
        raise UserError("端口应在0到65535之间")
    # proto=IPPROTO_TCP: asyncio sets TCP_NODELAY only on such sockets; without it every keep-alive
    # answer waits ~40 ms for a delayed ACK (Nagle).
    sock = socket.socket(
        socket.AF_INET6 if ":" in args.host else socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP
    )
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((args.host, args.port))
    except OSError as e:
        raise UserError(f"无法监听 {args.host}:{args.port}（{e.strerror}），端口可能已被占用") from None
    sock.listen(2048)  # connections queue from now on, even before uvicorn takes the socket
    port = sock.getsockname()[1]
    settings = Settings(
        db_url=cdb.url,
        host=args.host,
        port=port,
        public_url=args.url or cdb.get_meta("url") or "",
        tls=tls is not None,
    )
    app = create_app(settings, cdb=cdb, county=county)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    scheme = "https" if tls else "http"
    print(f"县中心已启动：{scheme}://{args.host}:{port}（{county.name}，按 Ctrl+C 停止）", flush=True)
    config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_keep_alive=30, **(tls or {}))
    uvicorn.Server(config).run(sockets=[sock])
    return EXIT_OK


def _tls_options(cert: Path | None, key: Path | None) -> dict[str, str] | None:
    """uvicorn's ssl options, after checking that the files load and belong together (Chinese errors)."""
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise UserError("启用 https 需要同时给出 --tls-cert（证书）和 --tls-key（私钥）")
    for path, what in ((cert, "证书"), (key, "私钥")):
        if not path.is_file():
            raise UserError(f"找不到TLS{what}文件 {path}")
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(str(cert), str(key))
    except (ssl.SSLError, OSError, ValueError) as e:
        raise UserError(
            f"无法加载TLS证书和私钥（{getattr(e, 'reason', None) or e}）：请确认是PEM格式、私钥未加密且与证书配对"
        ) from None
    return {"ssl_certfile": str(cert), "ssl_keyfile": str(key)}


def cmd_enroll(args) -> int:
    cdb = _db(args)
    if args.request_file or args.response_file:
        if not (args.request_file and args.response_file):
            raise UserError("离线登记需要同时给出 --request-file 和 --response-file")
        if args.org or args.role:
            raise UserError("离线登记不用 --org/--role：单位和登记码在请求文件中")
        return _enroll_offline(args, cdb)
    if not (args.org and args.role):
        raise UserError("生成登记码需要 --org（单位代码）和 --role（village/township/county）")
    if not 1 <= args.days <= 90:
        raise UserError("登记码有效天数应在1到90之间")
    county = load_county(cdb)
    org = complete_org_code(args.org, args.role if args.role in registry.LEVEL_LABELS else None)
    code = registry.make_code(cdb, county, org=org, level=args.role, name=args.name, days=args.days)
    _out(
        args,
        {
            "code": code,
            "org": org,
            "level": args.role,
            "days": args.days,
            "fingerprint": county.fingerprint,
        },
        f"登记码：{code}\n（只显示这一次；{args.days}天内有效，只能用一次；单位 {org}）\n"
        f"县中心密钥指纹：{county.fingerprint}\n"
        "请当面或电话告知登记码和指纹，不要通过网络发送登记码；工作站登记后显示的指纹应与此一致。",
    )
    return EXIT_OK


def _enroll_offline(args, cdb: CountyDB) -> int:
    try:
        text = args.request_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        raise UserError(f"无法读取登记请求文件 {args.request_file}") from None
    try:
        wire = bounded.loads(text, "登记请求文件")
    except ProtocolError:
        raise UserError("登记请求文件不是有效的登记请求（内容已损坏或过于复杂）") from None
    county = _unlocked(cdb)
    answer = registry.enroll(cdb, county, wire, url=cdb.get_meta("url") or "")
    doc = json.loads(answer["h"])
    tmp = args.response_file.with_name(args.response_file.name + ".part")
    try:
        tmp.write_text(json.dumps(answer, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, args.response_file)
    except OSError as e:
        raise UserError(f"无法写入答复文件 {args.response_file}（{e.strerror}）") from None
    _out(
        args,
        {
            "station": doc["station"],
            "org": doc["org"],
            "level": doc["level"],
            "file": str(args.response_file),
            "fingerprint": county.fingerprint,
        },
        f"已登记工作站 {doc['station']}（{doc['org']}），答复文件：{args.response_file}\n"
        f"县中心密钥指纹：{county.fingerprint}（工作站应用答复后显示的指纹应与此一致）",
    )
    return EXIT_OK


def cmd_recover(args) -> int:
    from sync import recovery as wire_format
    from sync.server import recovery

    modes = [bool(args.request_file), args.list, bool(args.approve), bool(args.refuse)]
    if sum(modes) != 1:
        raise UserError("请选择一种操作：申请文件（U盘）、--list、--approve 申请编号 或 --refuse 申请编号")
    cdb = _db(args)
    county = load_county(cdb)
    if args.list:
        items = recovery.pending(cdb, county)
        text = "\n\n".join(i.text() for i in items) if items else "没有待处理的恢复申请。"
        _out(args, [i.to_dict() for i in items], text)
        return EXIT_OK
    if args.refuse:
        item = recovery.refuse_stored(cdb, county, args.refuse, reason=args.reason)
        _out(args, item.to_dict(), f"已拒绝恢复申请 {item.request.id}（{item.request.login}），工作站取答复时会看到")
        return EXIT_OK
    if args.request_file:
        if not args.response_file:
            raise UserError("请用 --response-file 指定答复文件写到哪里（如U盘上的文件）")
        try:
            raw = args.request_file.read_bytes()[: wire_format.MAX_BYTES + 1]
        except OSError as e:
            raise UserError(f"无法读取恢复申请文件 {args.request_file}（{e.strerror}）") from None
        item = _checked(cdb, county, lambda: recovery.review(cdb, county, wire_format.parse_wire(raw, "恢复申请文件")))
    else:
        item = recovery.stored(cdb, county, args.approve)
    if not getattr(args, "json", False):
        print(item.text(), flush=True)
    check = args.check or _ask_check()
    passphrase = _passphrase()
    county = unlock(cdb, passphrase)
    recovery_key = unlock_recovery(cdb, passphrase)
    if args.request_file:
        signed = recovery.answer(cdb, county, recovery_key, item, check=check)
        _write_answer(args.response_file, signed)
        done = f"已批准并写出答复文件 {args.response_file}，请交回该工作站，由该用户用申请时设置的新PIN导入"
    else:
        recovery.approve_stored(cdb, county, recovery_key, args.approve, check=check)
        done = "已批准。工作站联网后，由该用户用申请时设置的新PIN获取答复"
    _out(args, {**item.to_dict(), "approved": True}, done)
    return EXIT_OK


def _checked(cdb: CountyDB, county: County, review):
    """A reviewed request; a refused one is audited and told in Chinese."""
    from sync.errors import ProtocolError
    from sync.server.audit import record_refusal

    try:
        return review()
    except ProtocolError as e:
        record_refusal(cdb, remote="file", station="", endpoint="recovery", status=e.http_status, code=e.code,
                       reason=e.message)
        raise UserError(f"恢复申请无效，不能处理：{e.message}") from None


def _ask_check() -> str:
    if not sys.stdin.isatty():
        raise UserError("请用 --check 给出工作站屏幕上的核对码（电话核对后）")
    return input("请输入工作站用户读出的核对码：")


def _write_answer(path: Path, signed: dict) -> None:
    tmp = path.with_name(path.name + ".part")
    try:
        tmp.write_text(json.dumps(signed, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, path)
    except OSError as e:
        raise UserError(f"无法写入答复文件 {path}（{e.strerror}）") from None


def cmd_revoke(args) -> int:
    cdb = _db(args)
    county = load_county(cdb)
    r = registry.revoke(cdb, county, args.station, args.reason)
    _out(args, r, f"已吊销工作站 {r['station']}（{r['name']}）；吊销通知会随下载发往各工作站")
    return EXIT_OK


def cmd_stations(args) -> int:
    cdb = _db(args)
    county = load_county(cdb)
    S, A = cdb.m.Station, cdb.m.Alarm
    from peewee import fn

    alarm_counts = dict(A.select(A.station, fn.COUNT(A.id)).group_by(A.station).tuples())
    rows = []
    for s in S.select().where(S.id != county.station).order_by(S.org, S.enrolled_at):
        rows.append(
            {
                "id": s.id,
                "org": s.org,
                "name": s.name,
                "level": s.level,
                "status": s.status,
                "enrolled": s.enrolled_at,
                "last_seen": iso_of_ms(s.last_seen),
                "head_seq": s.head_seq,
                "pending": pull.count_pending(cdb, s),
                "alarms": alarm_counts.get(s.id, 0),
            }
        )
    labels = {"active": "正常", "revoked": "已吊销"}
    text = (
        _table(
            [
                [
                    r["id"],
                    r["org"],
                    r["name"],
                    registry.LEVEL_LABELS.get(r["level"], r["level"]),
                    labels.get(r["status"], r["status"]),
                    human_time(r["enrolled"]),
                    human_time(r["last_seen"], empty="从未"),
                    str(r["head_seq"]),
                    str(r["pending"]),
                    str(r["alarms"]),
                ]
                for r in rows
            ],
            ["编号", "单位", "名称", "层级", "状态", "登记时间", "最后联系", "已收到", "待下载", "报警"],
        )
        if rows
        else "尚无登记的工作站。用 county-center enroll --org 单位代码 --role 层级 生成登记码。"
    )
    _out(args, rows, text)
    return EXIT_OK


def cmd_users(args) -> int:
    cdb = _db(args)
    load_county(cdb)
    St = cdb.m.Staff
    rows = [
        {
            "user_id": s.user_id,
            "login": s.login,
            "name": s.name,
            "role": s.role,
            "org": s.org,
            "station": s.station,
            "disabled": s.disabled,
        }
        for s in St.select().order_by(St.org, St.login)
    ]
    roles = {"agent": "代办员", "clerk": "窗口人员", "reviewer": "审批人员", "admin": "管理员"}
    text = (
        _table(
            [
                [
                    r["login"],
                    r["name"],
                    roles.get(r["role"], r["role"]),
                    r["org"],
                    r["station"],
                    "已停用" if r["disabled"] else "正常",
                ]
                for r in rows
            ],
            ["登录名", "姓名", "角色", "单位", "工作站", "状态"],
        )
        if rows
        else "尚无人员记录（工作站同步后出现）。"
    )
    _out(args, rows, text)
    return EXIT_OK


def cmd_catalog_publish(args) -> int:
    cdb = _db(args)
    county = load_county(cdb)
    catalog = catalog_import.load_catalog(
        args.file, county, version=args.catalog_version, date=args.date, materials=args.materials
    )
    ev = catalog_import.publish(cdb, county, catalog)
    _out(
        args,
        {"version": catalog.version, "items": len(catalog.items), "event": ev.id, "seq": ev.seq},
        f"已发布事项目录 {catalog.version}（{len(catalog.items)}个事项），各工作站下次同步时更新",
    )
    return EXIT_OK


def cmd_calendar_set(args) -> int:
    try:
        day = datetime.date.fromisoformat(args.day).isoformat()
    except ValueError:
        raise UserError(f"日期“{args.day}”格式不对，应为 YYYY-MM-DD") from None
    kind = args.kind.strip().lower()
    if kind in ("workday", "工作日", "上班"):
        workday = True
    elif kind in ("rest", "休息日", "休息", "holiday", "假日"):
        workday = False
    else:
        raise UserError(f"类型“{args.kind}”应为 workday（工作日）或 rest（休息日）")
    cdb = _db(args)
    county = load_county(cdb)
    with cdb.write():
        ev = county_chain.append(
            cdb, county, K.CALENDAR_SET, day, {"day": day, "workday": workday, "source": "county"}
        )
    _out(
        args,
        {"day": day, "workday": workday, "event": ev.id},
        f"已设定 {day} 为{'工作日' if workday else '休息日'}，各工作站下次同步时更新",
    )
    return EXIT_OK


def cmd_import(args) -> int:
    cdb = _db(args)
    county = _unlocked(cdb)
    results = bundles.import_path(cdb, county, args.path)
    if not results:
        raise UserError(f"{args.path} 中没有数据包文件（*.cvs）")
    labels = {"imported": "已导入", "skipped": "已跳过", "refused": "有拒收"}
    lines = []
    for r in results:
        lines.append(f"{labels[r.status]}  {Path(r.path).name}  {r.message}")
        refused = [s for s in r.results if s.error is not None]
        lines.extend(f"    工作站 {s.station}：{s.error.message}" for s in refused[:3])
        if len(refused) > 3:
            lines.append(f"    另有{len(refused) - 3}段被拒收（见 county-center audit）")
    _out(args, [r.to_dict() for r in results], "\n".join(lines))
    return EXIT_PARTIAL if any(r.status == "refused" for r in results) else EXIT_OK


def cmd_export(args) -> int:
    cdb = _db(args)
    county = _unlocked(cdb)
    r = bundles.export(cdb, county, args.station, args.out)
    _out(args, r, f"已导出 {r['events']} 条记录到 {r['file']}（从游标 {r['from']} 起），请交给该工作站导入")
    return EXIT_OK


def cmd_alarms(args) -> int:
    cdb = _db(args)
    load_county(cdb)
    rows = audit.alarms(cdb, station=args.station, limit=max(1, args.limit))
    for r in rows:
        r["time"] = iso_of_ms(r["at"])
    text = (
        _table(
            [
                [
                    human_time(r["time"]),
                    r["label"],
                    r["station"],
                    r["source"],
                    json.dumps(r["detail"], ensure_ascii=False),
                ]
                for r in rows
            ],
            ["时间", "类型", "工作站", "来源", "详情"],
        )
        if rows
        else "没有报警。"
    )
    _out(args, rows, text)
    return EXIT_OK


def cmd_audit(args) -> int:
    cdb = _db(args)
    load_county(cdb)
    rows = audit.audit_rows(cdb, limit=max(1, args.limit))
    for r in rows:
        r["time"] = iso_of_ms(r["at"])
    text = (
        _table(
            [
                [
                    human_time(r["time"]),
                    r["remote"],
                    r["station"],
                    r["endpoint"],
                    str(r["status"]),
                    r["code"],
                    r["reason"],
                ]
                for r in rows
            ],
            ["时间", "来源", "工作站", "接口", "状态", "代码", "原因"],
        )
        if rows
        else "审计日志为空。"
    )
    _out(args, rows, text)
    return EXIT_OK


# -- entry point ---------------------------------------------------------------------------------------------


def _log_internal() -> None:
    path = os.environ.get("COUNTY_LOG") or "county-center.log"
    try:
        handler = logging.FileHandler(path, encoding="utf-8")
    except OSError:
        handler = None
    if handler is not None:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        log.addHandler(handler)
    log.exception("internal error in county-center")
    if handler is not None:
        log.removeHandler(handler)
        handler.close()


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:
        return int(e.code or 0) if isinstance(e.code, int) else EXIT_USER_ERROR
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USER_ERROR
    try:
        return args.func(args)
    except UserError as e:
        print(f"错误：{e.message}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("已中断", file=sys.stderr)
        return EXIT_USER_ERROR
    except Exception:  # noqa: BLE001 - never a traceback on screen
        _log_internal()
        print("错误：县中心程序内部错误，详情已写入日志 county-center.log；请联系技术支持", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["main", "build_parser", "CST"]
