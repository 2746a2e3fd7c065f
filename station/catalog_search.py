"""Find a catalog item from what a village agent types: a code, part of the name, or pinyin.

Ranking — each item appears once, in the first tier it matches:

1. the text is exactly the 实施编码 or 基本编码;
2. the text is the start of either code;
3. the text occurs in the name — earlier occurrence first;
4. the text occurs in the name's pinyin initials ("ylbx" → 城乡居民基本**养老保险**参保登记,
   anywhere in the name, not only at its start) — earlier occurrence first;
5. the text occurs in the name's full toneless pinyin ("yanglao") — earlier occurrence first.

Ties keep catalog order; empty text gives the first ``limit`` items in catalog order.
Text and keys are compared after NFKC (full-width → half-width), lower-casing and removing
whitespace. Pinyin tiers only apply to text of ASCII letters and digits, and punctuation is left
out of the pinyin keys so that initials run on across "（" and "/".

多音字: pypinyin's phrase dictionary picks the reading in context (重度 → zhongdu, 落户 →
luohu), which is what a pinyin input method would have taught the typist; other readings
are not indexed. The name tier always works for Chinese text.

Everything is computed in the constructor. Each tier's keys are joined into one string, so
a query costs a handful of ``str.find`` calls rather than a Python loop over every item.
"""

from __future__ import annotations

import heapq
import re
import unicodedata
from bisect import bisect_right

from pypinyin import Style, lazy_pinyin

from schema.catalog import Catalog, Item

_SEP = "\x00"  # never in a normalised query, so no match can span two keys
_PINYIN_QUERY = re.compile(r"[a-z0-9]+")
_CODE_QUERY = re.compile(r"[a-z0-9-]+")
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")


def normalize(text: str) -> str:
    """Full-width → half-width, lower case, no whitespace or control characters."""
    folded = unicodedata.normalize("NFKC", text).lower()
    return "".join(ch for ch in folded if ch.isprintable() and not ch.isspace())


def pinyin_keys(name: str) -> tuple[str, str]:
    """(initials, full pinyin) of a name, letters and digits only: ("cxjmjbylbx…", "chengxiang…")."""
    initials = "".join(lazy_pinyin(name, style=Style.FIRST_LETTER))
    full = "".join(lazy_pinyin(name, style=Style.NORMAL))
    return _NOT_ALNUM.sub("", normalize(initials)), _NOT_ALNUM.sub("", normalize(full))


class _Column:
    """One kind of key for every item, joined as SEP key SEP key … per item."""

    def __init__(self, keys_per_item: list[tuple[str, ...]]) -> None:
        self.starts: list[int] = []
        parts: list[str] = []
        pos = 0
        for keys in keys_per_item:
            self.starts.append(pos)
            segment = "".join(_SEP + k for k in keys)
            parts.append(segment)
            pos += len(segment)
        self.text = "".join(parts) + _SEP  # closing SEP lets the last key match exactly

    def first_hits(self, needle: str) -> list[tuple[int, int]]:
        """(offset in the item's segment, item index) of the first occurrence, per matching item.

        In catalog order, because the joined text is scanned left to right.
        """
        hits: list[tuple[int, int]] = []
        text, starts = self.text, self.starts
        found = text.find(needle)
        while found != -1:
            index = bisect_right(starts, found) - 1
            hits.append((found - starts[index], index))
            if index + 1 >= len(starts):
                break
            found = text.find(needle, starts[index + 1])  # skip the rest of this item
        return hits


class CatalogIndex:
    """Search index over one catalog version; build once, query many times."""

    def __init__(self, catalog: Catalog) -> None:
        self.items = catalog.items
        pinyin = [pinyin_keys(item.name) for item in self.items]
        self._codes = _Column([(i.impl_code.lower(), i.basic_code.lower()) for i in self.items])
        self._names = _Column([(normalize(i.name),) for i in self.items])
        self._initials = _Column([(initials,) for initials, _ in pinyin])
        self._full = _Column([(full,) for _, full in pinyin])

    def search(self, text: str, limit: int = 20) -> list[Item]:
        if limit <= 0:
            return []
        q = normalize(text)
        if not q:
            return list(self.items[:limit])

        # (column, needle, rank by position?) in tier order
        tiers: list[tuple[_Column, str, bool]] = []
        if _CODE_QUERY.fullmatch(q):
            tiers += [(self._codes, _SEP + q + _SEP, False), (self._codes, _SEP + q, False)]
        tiers.append((self._names, q, True))
        if _PINYIN_QUERY.fullmatch(q):
            tiers += [(self._initials, q, True), (self._full, q, True)]

        found: list[int] = []
        seen: set[int] = set()
        for column, needle, by_position in tiers:
            need = limit - len(found)
            hits = column.first_hits(needle)
            if seen:
                hits = [h for h in hits if h[1] not in seen]
            if by_position:
                # (offset, index) tuples: earlier occurrence first, then catalog order
                hits = heapq.nsmallest(need, hits)
            for _, index in hits[:need]:
                seen.add(index)
                found.append(index)
            if len(found) >= limit:
                break
        return [self.items[i] for i in found]
