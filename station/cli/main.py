"""``station``: the terminal UI (no sub-command) and the headless command line (the same operations).

Errors are one Chinese line on stderr and a non-zero exit code; nothing a
user types produces a traceback. Unexpected failures are logged to the data
directory's ``station.log`` without personal data.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import traceback
from pathlib import Path

from schema.errors import UserError


class _LazyCommands:
    """``station.cli.commands``, imported only when a sub-command runs.

    It pulls in the services, peewee and SQLCipher (about half a second); starting the
    terminal UI must not wait for them before its first frame.
    """

    def __getattr__(self, name: str):
        def call(*args, **kwargs):
            from station.cli import commands as real

            return getattr(real, name)(*args, **kwargs)

        return call


commands = _LazyCommands()

EXIT_USER_ERROR = 2
EXIT_OFFLINE = 3
EXIT_INTERNAL = 70

SYNC_EXIT_CODES = """退出码：
  0  全部完成
  2  县中心拒收了部分内容、本站已被注销，或输入/文件有误（原因见错误提示）
  3  无法连接县中心（本机数据已保存，网络恢复后再同步即可）"""


def default_data_dir() -> Path:
    env = os.environ.get("STATION_DATA_DIR")
    if env:
        return Path(env)
    if os.name == "nt":
        return Path(os.environ.get("APPDATA", Path.home())) / "station"
    return Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "station"


class ChineseParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's own messages are English; keep them, add a hint
        self.print_usage(sys.stderr)
        print(f"错误：命令参数有误（{message}）。用 --help 查看用法", file=sys.stderr)
        raise SystemExit(EXIT_USER_ERROR)


def build_parser() -> argparse.ArgumentParser:
    p = ChineseParser(prog="station", description="政务便民服务工作站。不带命令运行时打开终端界面；带命令时在命令行中执行该操作",
                      epilog="例：station --data-dir D（打开终端界面）；station --data-dir D case list（命令行）")
    p.add_argument("--data-dir", type=Path, default=None, help="数据目录（默认 $STATION_DATA_DIR 或用户数据目录）")
    p.add_argument("--json", action="store_true", help="输出机器可读的 JSON")
    p.add_argument("--user", dest="login", default=None, help="登录名（默认 $STATION_USER；只有一个用户时可省略）")
    sub = p.add_subparsers(dest="command", parser_class=ChineseParser, metavar="命令")
    ROLE_HELP = (
        "角色：agent 代办员 / clerk 窗口人员 / reviewer 审批人员 / admin 管理员。"
        "村级工作站只能有代办员、管理员；乡镇级：窗口人员、管理员；县级：审批人员、管理员"
    )

    s = sub.add_parser("init", help="首次使用：离线初始化工作站并创建第一个用户")
    s.add_argument("--org", required=True, help="12位统计用区划代码")
    s.add_argument("--name", required=True, help="工作站名称，如“城关镇东村便民服务室”")
    s.add_argument("--user", dest="init_login", required=True, help="第一个用户的登录名")
    s.add_argument("--role", required=True, help=ROLE_HELP)
    s.add_argument("--user-name", default=None, help="第一个用户的姓名")
    s.add_argument("--station-no", type=int, default=1, help="工作站编号（同一单位多台电脑时区分，1–99）")
    s.set_defaults(func=commands.init)

    u = sub.add_parser("user", help="用户管理").add_subparsers(dest="sub", parser_class=ChineseParser, metavar="操作")
    s = u.add_parser("add", help="添加用户（只有管理员能添加；新用户PIN来自提示或 $STATION_NEW_PIN）")
    s.add_argument("new_login", metavar="LOGIN")
    s.add_argument("--role", required=True, help=ROLE_HELP)
    s.add_argument("--name", default=None, help="姓名")
    s.set_defaults(func=commands.user_add)
    u.add_parser("list", help="列出用户").set_defaults(func=commands.user_list)
    s = u.add_parser("disable", help="停用用户")
    s.add_argument("target", metavar="LOGIN")
    s.set_defaults(func=commands.user_disable)
    s = u.add_parser("reset-pin", help="重置用户PIN（新PIN来自提示或 $STATION_NEW_PIN）")
    s.add_argument("target", metavar="LOGIN")
    s.set_defaults(func=commands.user_reset_pin)

    c = sub.add_parser("catalog", help="事项目录").add_subparsers(dest="sub", parser_class=ChineseParser, metavar="操作")
    s = c.add_parser("search", help="按名称、编码或拼音首字母查找事项（如 ylbx）")
    s.add_argument("text")
    s.set_defaults(func=commands.catalog_search)
    s = c.add_parser("show", help="显示事项的办事指南")
    s.add_argument("code")
    s.set_defaults(func=commands.catalog_show)

    k = sub.add_parser("case", help="办件").add_subparsers(dest="sub", parser_class=ChineseParser, metavar="操作")
    s = k.add_parser("new", help="收件登记")
    s.add_argument("--item", required=True, help="事项实施编码")
    s.add_argument("--applicant", required=True, help="申请人姓名")
    s.add_argument("--id-number", required=True, help="申请人18位身份证号")
    s.add_argument("--phone", default=None, help="联系电话（手机）")
    s.add_argument("--received", nargs="*", default=[], metavar="MATERIAL", help="已收取的材料名称")
    s.add_argument("--received-at", default=None, help="补录纸质登记时的收件时间（ISO 8601）")
    s.add_argument("--note", default="", help="备注")
    s.set_defaults(func=commands.case_new)

    def action(name: str, help_: str, func, *args: tuple) -> None:
        s = k.add_parser(name, help=help_)
        s.add_argument("case", metavar="CASE", help="办件编号")
        for flags, kw in args:
            s.add_argument(*flags, **kw)
        s.add_argument("--at", default=None, help="补录时的实际办理时间（ISO 8601）")
        s.set_defaults(func=func)

    opinion = (("--opinion",), {"default": "", "help": "意见"})
    action("accept", "受理（可容缺受理）", commands.case_accept,
           (("--rongque",), {"nargs": "*", "default": [], "metavar": "MATERIAL", "help": "容缺的材料"}), opinion)
    action("immediate", "即办：当场受理并办结", commands.case_immediate, opinion,
           (("--certificate",), {"default": "", "help": "证照编号"}))
    action("notify-missing", "一次性告知所缺材料", commands.case_notify_missing,
           (("--missing",), {"nargs": "*", "default": None, "metavar": "MATERIAL", "help": "缺少的材料（默认全部缺件）"}),
           opinion)
    action("supplement", "补正：登记补交的材料", commands.case_supplement,
           (("--materials",), {"nargs": "+", "required": True, "metavar": "MATERIAL"}))
    action("lapse", "补正期满未补，按补正不来办结", commands.case_lapse, opinion)
    action("refuse", "不予受理（须写明理由）", commands.case_refuse, (("--reason",), {"required": True}))
    action("forward", "转报上级", commands.case_forward, opinion)
    action("return", "退回下级（须写明理由）", commands.case_return, (("--reason",), {"required": True}))
    action("special", "启动特别程序（延长审批/公示/核查），暂停计时", commands.case_special,
           (("--procedure",), {"required": True}), (("--reason",), {"required": True}),
           (("--days",), {"type": int, "default": None}))
    action("special-end", "结束特别程序，恢复计时", commands.case_special_end, (("--result",), {"default": ""}))
    action("co-opinion", "登记联办部门意见", commands.case_co_opinion,
           (("--department",), {"required": True}),
           (("--disagree",), {"action": "store_true", "help": "不同意（默认同意）"}), opinion)
    action("decide", "作出决定：准予或不予批准", commands.case_decide,
           (("--outcome",), {"required": True, "help": "approved 准予 / denied 不予批准"}), opinion,
           (("--certificate",), {"default": "", "help": "证照编号（出证办结）"}))
    action("deliver", "送达/领取", commands.case_deliver, (("--method",), {"default": "窗口领取"}))
    action("rate", "好差评（1–5，5为非常满意；可追评一次）", commands.case_rate,
           (("--level",), {"type": int, "required": True}), (("--comment",), {"default": ""}))
    action("void", "作废", commands.case_void, (("--reason",), {"required": True}),
           (("--entry-error",), {"action": "store_true", "help": "录入错误（删除办结）"}))
    s = k.add_parser("show", help="显示办件详情与全程记录")
    s.add_argument("case", metavar="CASE")
    s.add_argument("--reveal-id", action="store_true", help="显示完整身份证号（会记入查看审计）")
    s.set_defaults(func=commands.case_show)
    s = k.add_parser("list", help="办件列表")
    s.add_argument("--state", default=None, help="按状态筛选，如 received / 待受理")
    s.add_argument("--overdue", action="store_true", help="只列超期件")
    s.add_argument("--limit", type=int, default=50)
    s.set_defaults(func=commands.case_list)
    s = k.add_parser("search", help="按姓名、身份证号、办件编号、电话或姓名拼音首字母查找")
    s.add_argument("text")
    s.set_defaults(func=commands.case_search)

    s = sub.add_parser(
        "enroll", help="登记到县中心（登记码由县中心管理员提供）",
        description="在线登记：station enroll --server 县中心地址 --code 登记码\n"
                    "离线登记：station enroll --request-file 文件 --code 登记码（生成申请文件，用U盘交给县中心），\n"
                    "          再用 station enroll --response-file 答复文件 应用县中心的答复",
        epilog=SYNC_EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("--server", default=None, help="县中心地址，如 https://county.example.cn")
    s.add_argument("--code", default=None, help="一次性登记码，如 K7QX-M2PD-9TRW")
    s.add_argument("--request-file", type=Path, default=None, help="离线登记：写出登记申请文件")
    s.add_argument("--response-file", type=Path, default=None, help="离线登记：应用县中心的答复文件")
    s.set_defaults(func=commands.enroll)
    s = sub.add_parser(
        "sync", help="与县中心同步：先上传本站记录，再下载县中心数据",
        description="与县中心同步：上传本站未同步的记录（乡镇站同时转交下级站的数据），再下载县中心的数据。\n"
                    "中途断网或关机不会丢失或重复任何记录，再次同步会从中断处继续。",
        epilog=SYNC_EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("--server", default=None, help="县中心地址（默认用登记时的地址；指定后会记住）")
    s.add_argument("--retry", action="store_true", help="重试此前被县中心拒收而暂停的上传")
    s.set_defaults(func=commands.sync)
    s = sub.add_parser("sync-status", help="显示同步状态：在线/离线、上次同步、待上传条数、时钟偏差")
    s.add_argument("--history", type=int, default=0, metavar="N", help="同时列出最近N次同步记录")
    s.set_defaults(func=commands.sync_status)
    b = sub.add_parser("bundle", help="U盘同步文件（无网络时用）").add_subparsers(
        dest="sub", parser_class=ChineseParser, metavar="操作")
    s = b.add_parser("export", help="把本站待上传的记录（乡镇站还有给下级站的回执）写到U盘",
                     epilog=SYNC_EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("path", metavar="PATH", help="U盘上的文件夹（或文件名）")
    s.set_defaults(func=commands.bundle_export)
    s = b.add_parser("import", help="导入U盘上的同步文件：下级站的数据，或县中心/乡镇带回的回执",
                     epilog=SYNC_EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("path", metavar="PATH", help="同步文件，或存放同步文件的文件夹")
    s.set_defaults(func=commands.bundle_import)

    sub.add_parser("verify", help="校验哈希链与数据库完整性，并从日志重建投影比对").set_defaults(func=commands.verify)
    s = sub.add_parser("demo-data", help="生成演示县（2个乡镇×3个村）及演示办件")
    s.add_argument("--cases", type=int, default=200, help="办件数量（最多100000）")
    s.add_argument("--seed", type=int, default=1)
    s.add_argument("--county", action="store_true",
                   help="同时建立演示县中心：数据目录下 county.db 为县中心数据库，station/ 为已登记并同步的县级工作站"
                        "（县中心管理口令 demo-county-2026）")
    s.set_defaults(func=commands.demo_data)
    return p


def _setup_logging(data_dir: Path) -> None:
    path = (data_dir / "station.log").resolve()
    root = logging.getLogger()
    if not data_dir.is_dir() or any(getattr(h, "baseFilename", None) == str(path) for h in root.handlers):
        return
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    logging.getLogger().addHandler(handler)
    logging.getLogger().setLevel(logging.INFO)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.data_dir = args.data_dir or default_data_dir()
    if not hasattr(args, "func"):
        if args.command is not None:  # a group such as `station case` without its operation
            parser.print_help()
            return EXIT_USER_ERROR
        return run_ui(args.data_dir)
    _setup_logging(args.data_dir)
    out = commands.Output(args.json)
    try:
        result = args.func(args, out)
        return int(result or 0)
    except UserError as e:
        out.error(e)
        return EXIT_USER_ERROR
    except BrokenPipeError:  # output piped into `head` and friends
        return 0
    except KeyboardInterrupt:
        print("已取消", file=sys.stderr)
        return 130
    except Exception as e:  # last line of defence: log without personal data, tell the user
        # The frames, not the message: a message could quote a villager's data.
        frames = "".join(traceback.format_tb(e.__traceback__))
        logging.getLogger("station").error("unexpected %s\n%s", type(e).__name__, frames)
        msg = f"程序内部错误（{type(e).__name__}），已记录到 {args.data_dir / 'station.log'}。已保存的数据不受影响"
        if args.json:
            print(json.dumps({"ok": False, "error": "internal", "message": msg}, ensure_ascii=False))
        print("错误：" + msg, file=sys.stderr)
        return EXIT_INTERNAL


def run_ui(data_dir: Path) -> int:
    """``station`` with no sub-command: the terminal UI on ``data_dir``."""
    problem = _terminal_problem()
    if problem:
        print(f"错误：无法打开终端界面：{problem}。请在命令行窗口中直接运行 station，"
              "或使用命令行子命令（station --help）", file=sys.stderr)
        return EXIT_USER_ERROR
    _setup_logging(data_dir)
    from station.ui.app import StationApp

    try:
        StationApp(data_dir).run()
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # the terminal could not be driven (the app handles its own errors)
        frames = "".join(traceback.format_tb(e.__traceback__))
        logging.getLogger("station").error("terminal UI failed %s\n%s", type(e).__name__, frames)
        print(f"错误：终端界面无法运行（{type(e).__name__}），请换用其他终端窗口，或使用命令行子命令（station --help）",
              file=sys.stderr)
        return EXIT_INTERNAL
    return 0


def _terminal_problem() -> str | None:
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        return "输入或输出不是终端（被重定向或在管道中）"
    if os.environ.get("TERM") == "dumb":
        return "终端类型为 dumb，不支持全屏显示"
    try:
        cols, rows = os.get_terminal_size(sys.stdout.fileno())
    except OSError:
        return "无法读取终端大小"
    if cols < 80 or rows < 24:
        return f"终端窗口太小（{cols}×{rows}），至少需要 80×24，请放大窗口"
    return None


if __name__ == "__main__":
    sys.exit(main())
