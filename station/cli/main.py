"""``station``: the terminal UI (no sub-command) and the headless command line (the same operations).

Errors are one Chinese line on stderr and a non-zero exit code; nothing a
user types produces a traceback. Unexpected failures are logged to the station's
log file (``station.logs``) without personal data.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import traceback
from pathlib import Path

from schema.cliparse import ChineseParser, GlobalOptions
from schema.errors import UserError
from station.config import DataDir, default_data_dir, default_log_dir


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


def global_options() -> GlobalOptions:
    """``--data-dir``, ``--user``, ``--json``: accepted before or after any sub-command."""
    g = GlobalOptions()
    g.add("--data-dir", type=Path, metavar="DIR",
          help=f"数据目录（默认 $STATION_DATA_DIR 或 {default_data_dir()}）；指定目录时日志也在其中的 logs 文件夹")
    g.add("--user", dest="login", metavar="LOGIN",
          help="登录名（默认 $STATION_USER；只有一个用户时可省略；init 时为第一个用户的登录名）")
    g.add("--json", action="store_true", default=False, help="输出机器可读的 JSON（时间为 ISO 8601）")
    return g


def build_parser() -> ChineseParser:
    p = ChineseParser(prog="station", global_options=global_options(),
                      description="政务便民服务工作站。不带命令运行时打开终端界面；带命令时在命令行中执行该操作。\n"
                                  "--data-dir、--user、--json 可写在命令前或命令后。",
                      epilog="例：station（打开终端界面）；station case list --json（命令行）\n"
                             f"数据默认在 {default_data_dir()}，日志在 {default_log_dir()}")
    sub = p.add_subparsers(dest="command")

    s = sub.add_parser("init", help="首次使用：离线初始化工作站并用 --user 创建第一个用户")
    s.add_argument("--org", required=True, metavar="CODE",
                   help="本单位的区划代码：村12位；乡镇9位或12位；县6位（如 330522）或12位")
    s.add_argument("--name", required=True, help="工作站名称，如“城关镇东村便民服务室”")
    s.add_argument("--role", required=True, help="第一个用户的角色：agent 代办员 / clerk 窗口人员 / reviewer 审批人员 / admin 管理员")
    s.add_argument("--user-name", default=None, help="第一个用户的姓名")
    s.add_argument("--station-no", type=int, default=1, help="工作站编号（同一单位多台电脑时区分，1–99）")
    s.set_defaults(func=commands.init)

    u = sub.add_parser("user", help="用户管理").add_subparsers(dest="sub", metavar="操作")
    s = u.add_parser("add", help="添加用户（新用户PIN来自提示或 $STATION_NEW_PIN）")
    s.add_argument("new_login", metavar="LOGIN", help="新用户的登录名（英文字母、数字）")
    s.add_argument("--role", required=True, help="角色：agent 代办员 / clerk 窗口人员 / reviewer 审批人员 / admin 管理员")
    s.add_argument("--name", default=None, help="姓名")
    s.set_defaults(func=commands.user_add)
    u.add_parser("list", help="列出用户").set_defaults(func=commands.user_list)
    s = u.add_parser("disable", help="停用用户")
    s.add_argument("target", metavar="LOGIN", help="要停用的登录名")
    s.set_defaults(func=commands.user_disable)
    s = u.add_parser("reset-pin", help="重置用户PIN（新PIN来自提示或 $STATION_NEW_PIN）")
    s.add_argument("target", metavar="LOGIN", help="要重置PIN的登录名")
    s.set_defaults(func=commands.user_reset_pin)

    c = sub.add_parser("catalog", help="事项目录").add_subparsers(dest="sub", metavar="操作")
    s = c.add_parser("search", help="按名称、编码或拼音首字母查找事项（如 ylbx）")
    s.add_argument("text", metavar="TEXT", help="事项名称的一部分、编码或拼音首字母")
    s.set_defaults(func=commands.catalog_search)
    s = c.add_parser("show", help="显示事项的办事指南")
    s.add_argument("code", metavar="CODE", help="事项实施编码")
    s.set_defaults(func=commands.catalog_show)

    k = sub.add_parser("case", help="办件").add_subparsers(dest="sub", metavar="操作")
    s = k.add_parser("new", help="收件登记")
    s.add_argument("--item", required=True, help="事项实施编码")
    s.add_argument("--applicant", required=True, help="申请人姓名")
    s.add_argument("--id-number", required=True, help="申请人18位身份证号")
    s.add_argument("--phone", default=None, help="联系电话（手机）")
    s.add_argument("--received", nargs="*", default=[], metavar="MATERIAL", help="已收取的材料名称")
    s.add_argument("--received-at", default=None, help="补录纸质登记时的收件时间，如 “2026-11-28 13:36”")
    s.add_argument("--note", default="", help="备注")
    s.set_defaults(func=commands.case_new)

    def action(name: str, help_: str, func, *args: tuple) -> None:
        s = k.add_parser(name, help=help_)
        s.add_argument("case", metavar="CASE", help="办件编号")
        for flags, kw in args:
            s.add_argument(*flags, **kw)
        s.add_argument("--at", default=None, help="补录时的实际办理时间，如 “2026-11-28 13:36”")
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
           (("--materials",), {"nargs": "+", "required": True, "metavar": "MATERIAL", "help": "补交的材料名称"}))
    action("lapse", "补正期满未补，按补正不来办结", commands.case_lapse, opinion)
    action("refuse", "不予受理（须写明理由）", commands.case_refuse,
           (("--reason",), {"required": True, "help": "不予受理的理由"}))
    action("forward", "转报上级", commands.case_forward, opinion)
    action("return", "退回下级（须写明理由）", commands.case_return, (("--reason",), {"required": True, "help": "退回理由"}))
    action("special", "启动特别程序（延长审批/公示/核查），暂停计时", commands.case_special,
           (("--procedure",), {"required": True, "help": "特别程序种类，如 延长审批、公示、核查"}),
           (("--reason",), {"required": True, "help": "启动理由"}),
           (("--days",), {"type": int, "default": None, "help": "特别程序的天数"}))
    action("special-end", "结束特别程序，恢复计时", commands.case_special_end,
           (("--result",), {"default": "", "help": "特别程序的结果"}))
    action("co-opinion", "登记联办部门意见", commands.case_co_opinion,
           (("--department",), {"required": True, "help": "联办部门名称"}),
           (("--disagree",), {"action": "store_true", "help": "不同意（默认同意）"}), opinion)
    action("decide", "作出决定：准予或不予批准", commands.case_decide,
           (("--outcome",), {"required": True, "help": "approved 准予 / denied 不予批准"}), opinion,
           (("--certificate",), {"default": "", "help": "证照编号（出证办结）"}))
    action("deliver", "送达/领取", commands.case_deliver,
           (("--method",), {"default": "窗口领取", "help": "送达方式（默认 窗口领取）"}))
    action("rate", "好差评（1–5，5为非常满意；可追评一次）", commands.case_rate,
           (("--level",), {"type": int, "required": True, "help": "评价等级 1–5"}),
           (("--comment",), {"default": "", "help": "评价内容"}))
    action("void", "作废", commands.case_void, (("--reason",), {"required": True, "help": "作废理由"}),
           (("--entry-error",), {"action": "store_true", "help": "录入错误（删除办结）"}))
    s = k.add_parser("show", help="显示办件详情与全程记录")
    s.add_argument("case", metavar="CASE", help="办件编号")
    s.add_argument("--reveal-id", action="store_true", help="显示完整身份证号（会记入查看审计）")
    s.set_defaults(func=commands.case_show)
    s = k.add_parser("list", help="办件列表")
    s.add_argument("--state", default=None, help="按状态筛选，如 received / 待受理")
    s.add_argument("--overdue", action="store_true", help="只列超期件")
    s.add_argument("--limit", type=int, default=50, help="最多列出几件（默认50）")
    s.set_defaults(func=commands.case_list)
    s = k.add_parser("search", help="按姓名、身份证号、办件编号、电话或姓名拼音首字母查找")
    s.add_argument("text", metavar="TEXT", help="姓名、身份证号（或后4/6位）、办件编号、电话或拼音首字母")
    s.set_defaults(func=commands.case_search)

    s = sub.add_parser(
        "enroll", help="登记到县中心（登记码由县中心管理员提供）",
        description="在线登记：station enroll --server 县中心地址 --code 登记码\n"
                    "离线登记：station enroll --request-file 文件 --code 登记码（生成申请文件，用U盘交给县中心），\n"
                    "          再用 station enroll --response-file 答复文件 应用县中心的答复",
        epilog=SYNC_EXIT_CODES)
    s.add_argument("--server", default=None, help="县中心地址，如 https://county.example.cn")
    s.add_argument("--code", default=None, help="一次性登记码，如 K7QX-M2PD-9TRW")
    s.add_argument("--request-file", type=Path, default=None, help="离线登记：写出登记申请文件")
    s.add_argument("--response-file", type=Path, default=None, help="离线登记：应用县中心的答复文件")
    s.set_defaults(func=commands.enroll)
    s = sub.add_parser(
        "sync", help="与县中心同步：先上传本站记录，再下载县中心数据",
        description="与县中心同步：上传本站未同步的记录（乡镇站同时转交下级站的数据），再下载县中心的数据。\n"
                    "中途断网或关机不会丢失或重复任何记录，再次同步会从中断处继续。",
        epilog=SYNC_EXIT_CODES)
    s.add_argument("--server", default=None, help="县中心地址（默认用登记时的地址；指定后会记住）")
    s.add_argument("--retry", action="store_true", help="重试此前被县中心拒收而暂停的上传")
    s.set_defaults(func=commands.sync)
    s = sub.add_parser("sync-status", help="显示同步状态：在线/离线、上次同步、待上传条数、时钟偏差")
    s.add_argument("--history", type=int, default=0, metavar="N", help="同时列出最近N次同步记录")
    s.set_defaults(func=commands.sync_status)
    b = sub.add_parser("bundle", help="U盘同步文件（无网络时用）").add_subparsers(dest="sub", metavar="操作")
    s = b.add_parser("export", help="把本站待上传的记录（乡镇站还有给下级站的回执）写到U盘", epilog=SYNC_EXIT_CODES)
    s.add_argument("path", metavar="PATH", help="U盘上的文件夹（或文件名）")
    s.set_defaults(func=commands.bundle_export)
    s = b.add_parser("import", help="导入U盘上的同步文件：下级站的数据，或县中心/乡镇带回的回执", epilog=SYNC_EXIT_CODES)
    s.add_argument("path", metavar="PATH", help="同步文件，或存放同步文件的文件夹")
    s.set_defaults(func=commands.bundle_import)

    s = sub.add_parser(
        "backup", help="备份整个工作站到一个加密文件（通常放在U盘上；同步进行中也可以备份）",
        epilog="备份文件已加密，恢复时需要本站某个用户的登录名和PIN。文件名含单位代码、站号和时间。")
    s.add_argument("path", metavar="PATH", help="U盘上的文件夹（自动命名），或备份文件名")
    s.set_defaults(func=commands.backup)
    s = sub.add_parser(
        "restore", help="从备份文件恢复工作站（先完整校验，原数据保留在旁边）",
        epilog="例：station --data-dir D restore E:\\330522101001-01_20261128-1336.station-backup --user zhang\n"
               "恢复前校验备份的校验码、数据库完整性和全部哈希链，任何一项不通过都不做改动；"
               "原数据目录改名为“目录名.before-restore-时间”保留。")
    s.add_argument("path", metavar="FILE", help="备份文件（*.station-backup）")
    s.add_argument("--replace", action="store_true", help="数据目录中已有工作站时，确认用备份替换它")
    s.set_defaults(func=commands.restore)

    s = sub.add_parser("self-test", help="自检：在临时文件夹中建站、收件、导出、校验、备份恢复、打开界面，然后全部删除",
                       epilog="退出码：0 自检通过；1 未通过（会说明哪一步出错）。不需要网络，不改动本机的工作站数据。")
    s.add_argument("--keep", type=Path, default=None, metavar="DIR",
                   help="不删除：在这个（空）文件夹中进行自检并保留结果，供技术人员查看")
    s.set_defaults(func=commands.self_test)

    sub.add_parser("verify", help="校验哈希链与数据库完整性，并从日志重建投影比对").set_defaults(func=commands.verify)
    s = sub.add_parser("demo-data", help="生成演示县（2个乡镇×3个村）及演示办件")
    s.add_argument("--cases", type=int, default=200, help="办件数量（最多100000）")
    s.add_argument("--seed", type=int, default=1, help="随机种子（同一种子生成同样的演示数据）")
    s.add_argument("--county", action="store_true",
                   help="同时建立演示县中心：数据目录下 county.db 为县中心数据库，station/ 为已登记并同步的县级工作站"
                        "（县中心管理口令 demo-county-2026）")
    s.set_defaults(func=commands.demo_data)
    return p


def _setup_logging(data_dir: Path) -> None:
    from station import logs

    logs.setup(DataDir(data_dir))


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
        msg = f"程序内部错误（{type(e).__name__}），已记录到 {DataDir(args.data_dir).log}。已保存的数据不受影响"
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
