"""``station case <action> CASE …``: one sub-command per rule object (schema.rules), its options
built from the action's fields — the same inputs, labels and checks as the UI's dialogs."""

from __future__ import annotations

import argparse
from typing import Any

from schema import rules
from schema.case import Channel
from schema.rules import Action, Kind

AT_HELP = "补录纸质记录时的实际办理时间（ISO 8601，如 2026-03-05T10:00）"


def _help(action: Action, f) -> str:
    words = f.label + ("（必填）" if f.required else "")
    if f.help:
        words += "：" + f.help
    if f.kind in (Kind.CHOICE, Kind.MULTI) and f.choices is not None and not callable(f.choices):
        options = f.choices
        if action.kind == rules.ACTIONS["case.rated"].kind and f.name == "channel":
            options = [(v, label) for v, label in options if v != Channel.ONSITE]  # 现场评价: the rating screen
        words += "。可选：" + "、".join(f"{label}({value})" for value, label in options)
    elif f.kind in (Kind.CHOICE, Kind.MULTI):
        words += "（可选项随办件而定，见 station case show）"
    return words


def add_action_parsers(sub, parser_class, handler) -> None:
    """Add ``case <name>`` for every action to the ``case`` sub-parsers ``sub``."""
    for action in rules.REGISTRY.actions:
        s = sub.add_parser(action.name, help=f"{action.label}：{action.help}", description=action.help,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        s.add_argument("case", metavar="CASE", help="办件编号")
        for f in action.fields:
            kw: dict[str, Any] = {"dest": f"field_{f.name}", "help": _help(action, f)}
            if f.kind is Kind.MULTI:
                kw.update(nargs="*", metavar="VALUE", default=None)
            elif f.kind is Kind.BOOL:
                kw.update(action="store_true", default=None)
            else:
                kw.update(default=None, metavar=f.label)
            s.add_argument(f.flag, **kw)
        if action.backfill:
            s.add_argument("--at", default=None, help=AT_HELP)
        s.set_defaults(func=handler, action_name=action.name)


def values_of(args) -> dict[str, Any]:
    """The field values typed on the command line (``None`` for those not given)."""
    return {k.removeprefix("field_"): v for k, v in vars(args).items() if k.startswith("field_")}
