"""Reading a choice typed by a person: an enum member by its English id or Chinese label."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any, TypeVar

from schema.errors import ValidationError

E = TypeVar("E", bound=enum.Enum)


def parse_choice(cls: type[E], text: Any, *, unknown: str, field: str, aliases: Mapping[str, E] | None = None) -> E:
    """``cls`` members need a ``label``; ``unknown`` starts the error, e.g. "未知的层级"."""
    if isinstance(text, cls):
        return text
    t = str(text).strip()
    for member in cls:
        if t.lower() == member.value or t == member.label:  # type: ignore[attr-defined]
            return member
    if aliases and t in aliases:
        return aliases[t]
    names = "、".join(f"{m.label}({m.value})" for m in cls)  # type: ignore[attr-defined]
    raise ValidationError(f"{unknown}“{text}”，可选：{names}", field=field)
