# ruff: noqa: F811 - the cli/saved fixtures are imported from test_cli
"""The command line as a county technician expects it (issue 12), for ``station`` and ``county-center``.

Global options before or after the sub-command, Chinese help with a text for every option,
org codes completed from the length people know, times as people read them, and a mistyped
``--data-dir`` that says no station is there.
"""

from __future__ import annotations

import argparse
import re

import pytest

from schema.cliparse import ChineseParser, GlobalOptions, human_time, translate_error, walk
from schema.errors import ValidationError
from schema.org import complete_org_code
from station.cli.main import build_parser as station_parser
from station.cli.main import main
from sync.server.cli import build_parser as county_parser
from tests.station.test_cli import ADMIN_PIN, Cli, cli, saved  # noqa: F401 - fixtures

ENGLISH = ("usage:", "positional arguments", "options:", "optional arguments", "show this help message",
           "the following arguments", "unrecognized arguments", "invalid choice", "expected one argument")


def all_parsers():
    return [("station", p) for p in walk(station_parser())] + [("county-center", p) for p in walk(county_parser())]


@pytest.mark.parametrize("prog,parser", all_parsers(), ids=lambda v: getattr(v, "prog", v))
def test_help_is_chinese_and_every_option_explained(prog, parser):
    text = parser.format_help()
    for english in ENGLISH:
        assert english not in text.lower(), (parser.prog, english)
    assert text.startswith("用法：") and "选项：" in text
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            continue
        assert action.help, f"{parser.prog}: {action.option_strings or action.dest} has no help text"


def test_argparse_errors_in_chinese(capsys):
    parser = station_parser()
    for argv, words in ((["case", "new"], "缺少必需的参数：--item"),
                        (["case", "list", "--limit", "many"], "'many' 不是有效的整数"),
                        (["case", "list", "--bogus"], "不认识的参数：--bogus"),
                        (["flying"], "不是可用的选项")):
        with pytest.raises(SystemExit) as e:
            parser.parse_args(argv)
        assert e.value.code == 2
        err = capsys.readouterr().err
        assert err.startswith("用法：") and "错误：命令参数有误：" in err and words in err, err
        assert not any(english in err for english in ENGLISH), err
    assert translate_error("something new") == "something new"  # unknown messages are kept, not lost


def test_global_options_before_or_after_the_sub_command(cli):
    cli.new_case()
    before = main(["--json", "--data-dir", str(cli.data), "--user", "agent1", "case", "list"])
    out_before = cli.capsys.readouterr().out
    after = main(["case", "list", "--json", "--data-dir", str(cli.data), "--user", "agent1"])
    out_after = cli.capsys.readouterr().out
    assert before == after == 0
    assert out_before == out_after and '"ok": true' in out_after
    # In the middle of a group (`case --json list`) too, and a value given first survives the sub-command.
    assert main(["--data-dir", str(cli.data), "case", "--json", "list", "--user", "agent1"]) == 0
    assert '"ok": true' in cli.capsys.readouterr().out


def test_sub_commands_added_later_inherit_the_grammar(capsys):
    """What another module adds (a new sub-command) is Chinese and takes the global options."""
    g = GlobalOptions()
    g.add("--json", action="store_true", default=False, help="JSON")
    p = ChineseParser(prog="x", global_options=g)
    sub = p.add_subparsers(dest="command")
    s = sub.add_parser("recover", help="恢复")
    s.add_argument("--file", help="文件")
    ns = p.parse_args(["recover", "--file", "f", "--json"])
    assert (ns.json, ns.file) == (True, "f")
    assert p.parse_args(["recover"]).json is False
    assert s.format_help().startswith("用法：") and "恢复" in s.format_help()


def test_org_codes_completed_from_the_level_they_name():
    assert complete_org_code("220503") == "220503000000"
    assert complete_org_code("220503", "county") == "220503000000"
    assert complete_org_code("330522101", "township") == "330522101000"
    assert complete_org_code(" 330522101001 ", "village") == "330522101001"
    for text, level, words in (("2205", None, "应为数字"), ("330522101", "county", "县级单位应写6位"),
                               ("330522101001", "township", "不符"), ("33052210100x", None, "应为数字")):
        with pytest.raises(ValidationError) as e:
            complete_org_code(text, level)
        assert words in e.value.message, e.value.message


def test_station_init_with_a_short_township_code(tmp_path, capsys, monkeypatch, cli_logging):
    c = Cli(tmp_path / "t", capsys, monkeypatch)
    r = c("init", "--org", "330522101", "--name", "城关镇便民服务中心", "--user", "li", "--role", "clerk",
          user=None, pin=ADMIN_PIN, as_json=True)
    assert r.rc == 0, r.err
    assert r.json["org"] == "330522101000"


def test_times_are_printed_as_people_read_them(cli, saved):
    text = cli("case", "show", saved).out
    assert "收件：2026-03-02 09:00" in text and "受理：2026-03-02 09:00" in text
    assert not re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d", text), text
    d = cli("case", "show", saved, as_json=True).json  # --json keeps ISO 8601
    assert d["accepted_at"] == "2026-03-02T09:00:00+08:00"
    assert human_time("2026-11-28T05:36:10+00:00") == "2026-11-28 13:36"  # China time
    assert human_time("2026-11-28") == "2026-11-28" and human_time(None) == "—"


def test_a_mistyped_data_dir_says_no_station_is_there(cli, saved, tmp_path):
    wrong = tmp_path / "statoin"
    r = Cli(wrong, cli.capsys, cli.monkeypatch)("case", "list")
    r.failed_cleanly(f"数据目录 {wrong} 中没有工作站", "station init")
    assert "密钥文件" not in r.err
    r = Cli(wrong, cli.capsys, cli.monkeypatch)("case", "list", user=None)  # the single-user guess too
    r.failed_cleanly("中没有工作站")
    assert not wrong.exists()  # nothing was created there
