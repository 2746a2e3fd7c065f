"""docs/case-rules.md holds the table of actions generated from the rule objects."""

from __future__ import annotations

import os
from pathlib import Path

from schema.rules.table import markdown

DOC = Path(__file__).resolve().parents[2] / "docs" / "case-rules.md"
BEGIN, END = "<!-- rules:begin -->\n", "<!-- rules:end -->"


def test_the_rules_table_in_the_docs_matches_the_rule_objects():
    text = DOC.read_text(encoding="utf-8")
    head, rest = text.split(BEGIN)
    _, tail = rest.split(END)
    wanted = head + BEGIN + markdown() + END + tail
    if os.environ.get("STATION_UPDATE_DOCS") == "1":
        DOC.write_text(wanted, encoding="utf-8")
        return
    assert text == wanted, "docs/case-rules.md is out of date (see the command at its top)"
