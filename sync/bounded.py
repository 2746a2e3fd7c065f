"""Bounded parsing of what another machine sent: JSON whose nesting and size are checked first.

``json.loads`` recurses once per nesting level (a few KB of ``[[[[…`` raise ``RecursionError``)
and turns two bytes (``[]``) into a 56-byte list: a small input can cost far more than it is
worth. :func:`loads` first scans the text with C-speed regular-expression and bytes operations
— strings blanked, then the brackets alone — and refuses, as ``malformed``, a text nested
deeper than ``max_depth`` or with more containers than its size justifies; only then is it
parsed. Every parse failure (bad JSON, bad UTF-8, recursion) becomes a ``malformed`` refusal
with a Chinese reason, never an exception a caller forgot to catch.

The limits on what a sealed file may expand to also live here, so the county and the stations
read the same numbers (docs/sync.md, "Limits").
"""

from __future__ import annotations

import json
import re
from typing import Any

from sync.errors import malformed

# Nesting of any protocol document. A segment's event sits 5 levels deep in a push or bundle
# (payload, segments, segment, events, event), so an event body may nest at most 19 levels.
MAX_DEPTH = 24
# Containers ([ or {) allowed per byte of text: real documents have one every ~50 bytes;
# "[],[],…" has one every 3 and would expand ~30× in memory.
CONTAINERS_PER_BYTE = 1 / 8
MIN_CONTAINERS = 1000

MiB = 1024 * 1024
# What a sealed file or answer may decompress to (the sender is verified first; these only
# bound an honest but huge one, or a compromised sender).
PAGE_PAYLOAD = 64 * MiB  # a pull page (the county stops a page at ~4 MB of events)
FILE_PAYLOAD = 96 * MiB  # a USB bundle or return file (the county stops a return at ~64 MB)
FILE_BYTES = 64 * MiB  # a USB file on disk
FILE_SEGMENTS = 10_000  # segments in one USB bundle (a segment holds up to 1,000 events)
# A township may take a bundle from a village it does not know yet (its key comes with the next
# sync, and the county verifies everything anyway) — only within these tight bounds.
UNVERIFIED_FILE_BYTES = 2 * MiB
UNVERIFIED_PAYLOAD = 8 * MiB
UNVERIFIED_SEGMENTS = 64

# Strings are blanked after their escaped backslashes and quotes are removed (backslashes pair
# from the left, so every double backslash first, then every backslash-quote): then every quote
# left opens or closes a string, and ``"[^"]*"`` is linear on any input, where one pattern for
# "a string with escapes" backtracks quadratically on a text of unclosed strings.
_STRING = re.compile(rb'"[^"]*"')
_BRACKETS_ONLY = bytes(range(256)).translate(None, b"[]{}")
_TO_SQUARE = bytes.maketrans(b"{}", b"[]")


def check(data: bytes | str, what: str, *, max_depth: int = MAX_DEPTH) -> None:
    """Refuse (``malformed``) a JSON text nested deeper than ``max_depth`` or too dense in containers.

    Cheap on any input: two ``replace``, one regular-expression pass, one ``translate``, and at most
    ``max_depth`` ``replace`` passes over the brackets alone (each pass removes one level).
    Unbalanced brackets are left for the parser to refuse.
    """
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)
    unescaped = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    brackets = _STRING.sub(b"", unescaped).translate(_TO_SQUARE, _BRACKETS_ONLY)
    containers = len(brackets) // 2
    for _ in range(max_depth):
        if b"[]" not in brackets:
            break
        brackets = brackets.replace(b"[]", b"")
    if b"[]" in brackets:
        raise malformed(f"{what}嵌套超过{max_depth}层，已拒收")
    if containers > max(MIN_CONTAINERS, int(len(raw) * CONTAINERS_PER_BYTE)):
        raise malformed(f"{what}中的数组和对象过多（{containers}个），已拒收")


def loads(data: bytes | str, what: str, *, max_depth: int = MAX_DEPTH, **hooks: Any) -> Any:
    """``json.loads`` after :func:`check`; ``hooks`` are ``parse_float``/``parse_constant``."""
    check(data, what, max_depth=max_depth)
    try:
        return json.loads(data, **hooks)
    except (ValueError, RecursionError, UnicodeError):  # JSONDecodeError and bad UTF-8 are ValueErrors
        raise malformed(f"{what}不是有效的JSON") from None
