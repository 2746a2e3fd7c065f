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

    def __init__(self, module: str = "station.cli.commands") -> None:
        self._module = module

    def __getattr__(self, name: str):
        def call(*args, **kwargs):
            import importlib

            return getattr(importlib.import_module(self._module), name)(*args, **kwargs)

        return call


commands = _LazyCommands()
keys = _LazyCommands("station.cli.keys")

RECOVER_HELP_TEXT = """\
PIN输错被锁定、或忘记PIN，而本机没有能重置PIN的上级人员时，由县中心恢复：
  1. 申请（同时设置新PIN）：U盘 station recover --request-file U盘文件夹；联网 station recover --online
  2. 打电话给县中心管理员，报出屏幕上显示的工作站、用户和核对码；管理员核对后批准
  3. 用新PIN完成恢复：U盘 station recover --response-file 答复文件；联网 station recover --fetch
新PIN来自提示输入或 $STATION_NEW_PIN。答复只有配合新PIN、在本机上才能使用。"""

EXIT_USER_ERROR = 2
EXIT_OFFLINE = 3
EXIT_INTERNAL = 70

SYNC_EXIT_CODES = """退出码：
  0  全部完成
  2  县中心拒收了部分内容、本站已被注销、县中心证书校验失败，或输入/文件有误（原因见错误提示）
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

    ROLE_HELP = (
        "角色：agent 代办员 / clerk 窗口人员 / reviewer 审批人员 / admin 管理员。"
        "村级工作站只能有代办员、管理员；乡镇级：窗口人员、管理员；县级：审批人员、管理员"
    )

    s = sub.add_parser("init", help="首次使用：离线初始化工作站并用 --user 创建第一个用户")
    s.add_argument("--org", required=True, metavar="CODE",
                   help="本单位的区划代码：村12位；乡镇9位或12位；县6位（如 330522）或12位")
    s.add_argument("--name", required=True, help="工作站名称，如“城关镇东村便民服务室”")
    s.add_argument("--role", required=True, help="第一个用户的" + ROLE_HELP)
    s.add_argument("--user-name", default=None, help="第一个用户的姓名")
    s.add_argument("--station-no", type=int, default=1, help="工作站编号（同一单位多台电脑时区分，1–99）")
    s.set_defaults(func=commands.init)

    u = sub.add_parser("user", help="用户管理").add_subparsers(dest="sub", metavar="操作")
    s = u.add_parser("add", help="添加用户（只有管理员能添加；新用户PIN来自提示或 $STATION_NEW_PIN）")
    s.add_argument("new_login", metavar="LOGIN", help="新用户的登录名（英文字母、数字）")
    s.add_argument("--role", required=True, help=ROLE_HELP)
    s.add_argument("--name", default=None, help="姓名")
    s.set_defaults(func=commands.user_add)
    u.add_parser("list", help="列出用户").set_defaults(func=commands.user_list)
    s = u.add_parser("disable", help="停用用户")
    s.add_argument("target", metavar="LOGIN", help="要停用的登录名")
    s.set_defaults(func=commands.user_disable)
    s = u.add_parser("reset-pin", help="重置比自己低的角色的PIN（新PIN来自提示或 $STATION_NEW_PIN）；"
                                       "对自己即为修改PIN，需要原PIN")
    s.add_argument("target", metavar="LOGIN", help="要重置PIN的登录名")
    s.set_defaults(func=keys.user_reset_pin)
    u.add_parser("change-pin", help="修改自己的PIN：原PIN来自提示或 $STATION_PIN，新PIN来自提示或 $STATION_NEW_PIN"
                 ).set_defaults(func=keys.user_change_pin)

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
    s.add_argument("--id-number", required=True, help="申请人证件号码（身份证为18位）")
    s.add_argument("--doc-type", default=None, help="申请人证件类型：居民身份证（默认）、港澳台居民居住证、"
                                                    "外国人永久居留身份证、护照、港澳居民来往内地通行证、台湾居民来往大陆通行证")
    s.add_argument("--phone", default=None, help="联系电话（手机）")
    s.add_argument("--proxy-name", default=None, help="代办人/委托人姓名（有人代申请人来办时填写）")
    s.add_argument("--proxy-relation", default=None, help="代办人与申请人的关系：子女、配偶、父母、其他亲属、监护人、受托人")
    s.add_argument("--proxy-doc-type", default=None, help="代办人证件类型（默认居民身份证）")
    s.add_argument("--proxy-doc-number", default=None, help="代办人证件号码")
    s.add_argument("--proxy-phone", default=None, help="代办人手机号")
    s.add_argument("--received", nargs="*", default=[], metavar="MATERIAL", help="已收取的材料名称")
    s.add_argument("--received-at", default=None, help="补录纸质登记时的收件时间，如 “2026-11-28 13:36”")
    s.add_argument("--note", default="", help="备注")
    s.set_defaults(func=commands.case_new)

    from station.cli.case_actions import add_action_parsers

    add_action_parsers(k, ChineseParser, commands.case_action)
    s = k.add_parser("immediate", help="即办：当场受理并办结（仅限目录允许本级即办的事项）")
    s.add_argument("case", metavar="CASE", help="办件编号")
    s.add_argument("--opinion", default="", help="意见")
    s.add_argument("--certificate", default="", help="证照编号")
    s.set_defaults(func=commands.case_immediate)
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

    s = sub.add_parser("consult", help="记录一次咨询（不开办件），计入受理咨询数")
    s.add_argument("--answer", required=True, help="答复内容")
    s.add_argument("--item", default=None, help="咨询的事项实施编码（可选）")
    s.add_argument("--topic", default="", help="咨询的问题（不涉及具体事项时填写）")
    s.add_argument("--channel", default=None, help="渠道：窗口（默认）、电话、网上、来信")
    s.add_argument("--name", default=None, help="咨询人姓名（可选）")
    s.add_argument("--phone", default=None, help="咨询人手机号（可选）")
    s.set_defaults(func=commands.consult)
    c = sub.add_parser("complaint", help="投诉登记与办理").add_subparsers(
        dest="sub", parser_class=ChineseParser, metavar="操作")
    s = c.add_parser("new", help="登记投诉（针对办件或工作人员），按县里规定的时限办理")
    s.add_argument("--about", required=True, help="投诉对象：办件、工作人员、其他")
    s.add_argument("--content", required=True, help="投诉内容")
    s.add_argument("--case", default="", help="被投诉的办件编号")
    s.add_argument("--staff", default="", help="被投诉的工作人员")
    s.add_argument("--channel", default=None, help="渠道：窗口（默认）、电话、网上、来信")
    s.add_argument("--name", default=None, help="投诉人姓名")
    s.add_argument("--phone", default=None, help="投诉人手机号")
    s.set_defaults(func=commands.complaint_new)
    s = c.add_parser("forward", help="投诉上转上一级办理")
    s.add_argument("complaint", metavar="COMPLAINT", help="投诉编号")
    s.add_argument("--opinion", required=True, help="上转理由")
    s.set_defaults(func=commands.complaint_forward)
    s = c.add_parser("answer", help="登记投诉处理结果（办结）")
    s.add_argument("complaint", metavar="COMPLAINT", help="投诉编号")
    s.add_argument("--result", required=True, help="处理结果")
    s.set_defaults(func=commands.complaint_answer)
    c.add_parser("list", help="本单位正在办理的投诉").set_defaults(func=commands.complaint_list)

    s = sub.add_parser(
        "enroll", help="登记到县中心（登记码由县中心管理员提供）",
        description="在线登记：station enroll --server 县中心地址 --code 登记码\n"
                    "离线登记：station enroll --request-file 文件 --code 登记码（生成申请文件，用U盘交给县中心），\n"
                    "          再用 station enroll --response-file 答复文件 应用县中心的答复\n"
                    "登记码不会在网络上或文件中出现：双方各自用它校验对方。登记成功后显示县中心密钥指纹，\n"
                    "请与县中心管理员生成登记码时显示的指纹核对，不一致说明有人冒充县中心，请立即联系县中心。",
        epilog=SYNC_EXIT_CODES)
    s.add_argument("--server", default=None, help="县中心地址，如 https://county.example.cn")
    s.add_argument("--code", default=None, help="一次性登记码，如 K7QX-M2PD-9TRW")
    s.add_argument("--request-file", type=Path, default=None, help="离线登记：写出登记申请文件")
    s.add_argument("--response-file", type=Path, default=None, help="离线登记：应用县中心的答复文件")
    s.add_argument("--ca-file", type=Path, default=None,
                   help="县中心自建证书机构（CA）的证书文件（PEM）；县中心用 https 且证书不是公共机构签发时需要，"
                        "保存后每次同步都用它核对县中心的证书")
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

    s = sub.add_parser("recover", help="PIN被锁定或遗忘时向县中心申请恢复（U盘或联网）", description=RECOVER_HELP_TEXT,
                       epilog="退出码：0 完成；2 输入或文件有误；3 无法连接县中心；4 县中心尚未批准")
    s.add_argument("--request-file", type=Path, default=None, metavar="PATH", help="U盘申请：把申请写到这个文件夹或文件")
    s.add_argument("--online", action="store_true", help="联网申请：把申请发送到县中心")
    s.add_argument("--response-file", type=Path, default=None, metavar="PATH", help="导入县中心写出的答复文件")
    s.add_argument("--fetch", action="store_true", help="联网获取县中心的答复并完成恢复")
    s.add_argument("--server", default=None, help="县中心地址（默认用本站设置或登记时的地址）")
    s.set_defaults(func=keys.recover)

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
        from station import logs

        # Set up again: the command may have created the data folder after the first try.
        log = logs.setup(DataDir(args.data_dir))
        where = "（无法写入日志文件）"
        if log is not None:  # without a file, logging's last resort would print the frames on screen
            logging.getLogger("station").error("unexpected %s\n%s", type(e).__name__, frames)
            where = f"，已记录到 {log}"
        msg = f"程序内部错误（{type(e).__name__}）{where}。已保存的数据不受影响"
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
