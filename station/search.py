"""Search terms for cases, so every lookup a village agent makes is an index probe.

Each case gets a handful of terms in ``case_term``: every character and
every two-character run of the applicant's name (so any substring is found
through one of them), the pinyin initials of the name, the ID number and
phone whole and by their last four and six digits, and the case number whole
and by its daily sequence. A query is classified by its shape and turned
into one term lookup; longer name fragments are confirmed on the name.
"""

from __future__ import annotations

import re
from functools import lru_cache

from pypinyin import Style, lazy_pinyin

from schema.validation import normalize_text

_DIGITS = re.compile(r"^\d+[xX]?$")


@lru_cache(maxsize=65536)
def initials(name: str) -> str:
    return "".join(p[:1] for p in lazy_pinyin(name, style=Style.FIRST_LETTER, errors="ignore")).lower()


def case_terms(case_no: str, name: str, id_number: str, phone: str) -> set[str]:
    terms = {"no:" + case_no, "not:" + case_no.rsplit("-", 1)[-1]}
    name = name.strip()
    for i, ch in enumerate(name):
        terms.add("n:" + ch)
        if i + 1 < len(name):
            terms.add("n:" + name[i : i + 2])
    py = initials(name)
    if py:
        terms.add("py:" + py)
    if id_number:
        terms.update(("id:" + id_number.upper(), "idt:" + id_number[-4:].upper(), "idt:" + id_number[-6:].upper()))
    if phone:
        terms.update(("ph:" + phone, "pht:" + phone[-4:]))
    return terms


def plan(query: str) -> tuple[list[tuple[str, bool]], str | None]:
    """Turn a query into term probes ``(term, is_prefix)`` and a name to confirm, if any."""
    q = normalize_text(query).replace(" ", "")
    if not q:
        return [], None
    if "-" in q:  # a case number, whole or its beginning
        return [("no:" + q, q.count("-") < 3)], None
    if _DIGITS.match(q):
        if len(q) == 18:
            return [("id:" + q.upper(), False)], None
        if len(q) == 11 and q.startswith("1"):
            return [("ph:" + q, False)], None
        if len(q) in (4, 6):  # the tail an agent reads off a card, a phone or a receipt
            return [("idt:" + q.upper(), False), ("pht:" + q, False), ("not:" + q, False)], None
        return [("no:" + q, True)], None  # a region-code prefix lists that village's cases
    if q.isascii() and q.isalpha():
        return [("py:" + q.lower(), True)], None
    if len(q) <= 2:
        return [("n:" + q, False)], None
    return [("n:" + q[:2], False)], q
