"""docs/case-rules.md's table of actions, generated from the rule objects (checked by a test)."""

from __future__ import annotations

from schema.rules import REGISTRY
from schema.rules.base import Kind

_KIND_WORDS = {Kind.TEXT: "文字", Kind.CHOICE: "单选", Kind.MULTI: "多选", Kind.INT: "整数", Kind.BOOL: "是/否",
               Kind.DATE: "日期"}


def markdown() -> str:
    """One row per action: who, from which states, where, what it does, its inputs."""
    lines = [
        "| 操作 | 事件 | 命令 | 键 | 谁 | 在哪一级 | 从哪些状态 | 作用 | 输入 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for a in REGISTRY.actions:
        roles = "、".join(r.label for r in sorted(a.roles, key=lambda r: list(type(r)).index(r)))
        states = "、".join(sorted(s.label for s in a.states))
        inputs = "；".join(
            f"{f.label}（{_KIND_WORDS[f.kind]}{'，必填' if f.required else ''}）" for f in a.fields
        ) or "—"
        lines.append(
            f"| {a.label} | `{a.kind}` | `case {a.name}` | {a.key} | {roles} | {a.where.label} | {states} "
            f"| {a.help} | {inputs} |"
        )
    return "\n".join(lines) + "\n"
