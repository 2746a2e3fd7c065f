"""The command-line grammar both CLIs share (``station``, ``county-center``): Chinese argparse.

argparse prints English ("usage:", "positional arguments", "options", "show this help message
and exit", "the following arguments are required" …). :class:`ChineseParser` replaces every one
of them, and every sub-parser made through it — including sub-commands added later — is a
ChineseParser too and accepts the program's global options (``--json``, ``--data-dir`` …) before
or after the sub-command: ``station --json case list`` and ``station case list --json`` are the
same command.

It also holds what the two CLIs print alike: :func:`human_time` (2026-11-28 13:36, not ISO).
Only the standard library is used, so the dependency rule allows both CLIs to import it.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, NoReturn

EXIT_USER_ERROR = 2
CHINA = timezone(timedelta(hours=8), "CST")
HELP_TEXT = "显示本帮助并退出"

# argparse's error messages (Python 3.11–3.13), most specific first; unmatched text is kept.
_ERRORS: list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]] = [
    (re.compile(r"the following arguments are required: (.+)"), lambda m: f"缺少必需的参数：{m[1]}"),
    (re.compile(r"unrecognized arguments: (.+)"), lambda m: f"不认识的参数：{m[1]}"),
    (re.compile(r"one of the arguments (.+) is required"), lambda m: f"参数 {m[1]} 中必须给出一个"),
    (re.compile(r"ambiguous option: (\S+) could match (.+)"), lambda m: f"选项 {m[1]} 不明确，可能是 {m[2]}"),
    (re.compile(r"argument (.+?): (.+)", re.S), lambda m: f"参数 {m[1]}：{_detail(m[2])}"),
]
_DETAILS: list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]] = [
    (re.compile(r"invalid choice: (.+?) \(choose from (.+)\)"), lambda m: f"{m[1]} 不是可用的选项（可选：{m[2]}）"),
    (re.compile(r"invalid (\w+) value: (.+)"), lambda m: f"{m[2]} 不是有效的{_TYPES.get(m[1], m[1])}"),
    (re.compile(r"expected one argument"), lambda m: "后面需要一个值"),
    (re.compile(r"expected at least one argument"), lambda m: "后面至少需要一个值"),
    (re.compile(r"expected at most one argument"), lambda m: "后面最多只能有一个值"),
    (re.compile(r"expected (\d+) arguments?"), lambda m: f"后面需要 {m[1]} 个值"),
    (re.compile(r"not allowed with argument (.+)"), lambda m: f"不能与 {m[1]} 同时使用"),
    (re.compile(r"ignored explicit argument (.+)"), lambda m: f"不接受值 {m[1]}"),
]
_TYPES = {"int": "整数", "float": "数字", "Path": "路径"}


def _render(table, text: str) -> str:
    for pattern, render in table:
        m = pattern.fullmatch(text.strip())
        if m:
            return render(m)
    return text


def _detail(text: str) -> str:
    return _render(_DETAILS, text)


def translate_error(message: str) -> str:
    """argparse's English error message in Chinese (unknown messages unchanged)."""
    return _render(_ERRORS, message)


class ChineseHelpFormatter(argparse.RawDescriptionHelpFormatter):
    """``用法：`` instead of ``usage:``; descriptions and epilogs keep their line breaks."""

    def __init__(self, prog: str, **kw: Any) -> None:
        kw.setdefault("max_help_position", 32)
        super().__init__(prog, **kw)

    def add_usage(self, usage, actions, groups, prefix=None) -> None:
        super().add_usage(usage, actions, groups, "用法：" if prefix is None else prefix)

    def format_help(self) -> str:
        # Section headings end in argparse's ASCII colon: "选项:" → "选项："
        return _HEADING.sub(r"\1：", super().format_help())

    def _split_lines(self, text: str, width: int) -> list[str]:
        # argparse wraps by characters; a Chinese character takes two columns of the terminal.
        text = self._whitespace_matcher.sub(" ", text).strip()
        lines, line, used = [], "", 0
        for token in _TOKENS.findall(text):
            w = display_width(token)
            if used + w > width and line.strip() and token not in _NO_LINE_START:
                lines.append(line.rstrip())
                line, used = "", 0
                if token == " ":
                    continue
            line += token
            used += w
        if line.strip():
            lines.append(line.rstrip())
        return lines


_HEADING = re.compile(r"^(\S[^\n:]*):$", re.M)
_NO_LINE_START = set("，。；：、）」』”’！？》")
_TOKENS = re.compile(r"[\x21-\x7e]+| |.")


def display_width(text: str) -> int:
    """Terminal columns: CJK and full-width characters take two."""
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _chinese(formatter: type | None) -> type:
    """A formatter class that speaks Chinese: ours, or ours mixed into the one a caller asked for."""
    if formatter is None or issubclass(formatter, ChineseHelpFormatter):
        return formatter or ChineseHelpFormatter
    return type(f"Chinese{formatter.__name__}", (ChineseHelpFormatter, formatter), {})


class GlobalOptions:
    """Options a program accepts before or after any of its sub-commands.

    Each is declared once here; every :class:`ChineseParser` of the program carries it with
    ``default=SUPPRESS`` (so a sub-command's parser does not overwrite a value given before the
    sub-command), and :meth:`fill` sets the real defaults after parsing.
    """

    def __init__(self) -> None:
        self.parent = argparse.ArgumentParser(add_help=False)
        self.defaults: dict[str, Any] = {}

    def add(self, *flags: str, default: Any = None, **kw: Any) -> None:
        action = self.parent.add_argument(*flags, default=argparse.SUPPRESS, **kw)
        self.defaults[action.dest] = default

    def fill(self, ns: argparse.Namespace) -> argparse.Namespace:
        for dest, default in self.defaults.items():
            if not hasattr(ns, dest):
                setattr(ns, dest, default)
        return ns


class ChineseParser(argparse.ArgumentParser):
    """An ArgumentParser that speaks Chinese; its sub-parsers inherit it and the global options.

    Errors print the usage and one Chinese line on stderr and exit with 2.
    """

    def __init__(self, *args: Any, global_options: GlobalOptions | None = None, **kw: Any) -> None:
        self.global_options = global_options
        parents = list(kw.pop("parents", []))
        if global_options is not None:
            parents.insert(0, global_options.parent)
        kw["formatter_class"] = _chinese(kw.get("formatter_class"))
        add_help = kw.pop("add_help", True)
        super().__init__(*args, parents=parents, add_help=False, **kw)
        self._positionals.title = "参数"
        self._optionals.title = "选项"
        if add_help:
            self.add_argument("-h", "--help", action="help", default=argparse.SUPPRESS, help=HELP_TEXT)
        self.register("action", "parsers", _SubParsers)

    def add_subparsers(self, **kw: Any):
        kw.setdefault("metavar", "命令")
        kw.setdefault("parser_class", self._make_sub)
        return super().add_subparsers(**kw)

    def _make_sub(self, **kw: Any) -> ChineseParser:
        return ChineseParser(global_options=self.global_options, **kw)

    def parse_args(self, args: Sequence[str] | None = None, namespace=None):  # type: ignore[override]
        ns = super().parse_args(args, namespace)
        return self.global_options.fill(ns) if self.global_options is not None else ns

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        print(f"错误：命令参数有误：{translate_error(message)}。用 {self.prog} --help 查看用法", file=sys.stderr)
        raise SystemExit(EXIT_USER_ERROR)


class _SubParsers(argparse._SubParsersAction):
    """A sub-command's one-line help is also its ``--help`` description unless it has its own."""

    def add_parser(self, name: str, **kw: Any):
        if "help" in kw:
            kw.setdefault("description", kw["help"])
        return super().add_parser(name, **kw)


def walk(parser: argparse.ArgumentParser):
    """``parser`` and every sub-parser below it (for tests and generated docs)."""
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            seen: set[int] = set()
            for sub in action.choices.values():
                if id(sub) not in seen:  # aliases map to the same parser
                    seen.add(id(sub))
                    yield from walk(sub)


def human_time(value: str | None, *, empty: str = "—") -> str:
    """An ISO 8601 time as people read it: ``2026-11-28 13:36`` (China time); dates stay dates."""
    if not value:
        return empty
    text = str(value)
    if len(text) <= 10:
        return text
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        return text
    if t.tzinfo is not None:
        t = t.astimezone(CHINA)
    return t.strftime("%Y-%m-%d %H:%M")
