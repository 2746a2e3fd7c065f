"""DESIGN.md §3: schema ← sync, schema + sync ← station; only station's UI imports Textual."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
IO_LIBS = {"peewee", "playhouse", "sqlcipher3", "sqlite3", "sqlite_utils", "requests", "fastapi", "uvicorn", "textual"}
RULES = {
    "schema": {"station", "sync"} | IO_LIBS,
    "sync": {"station", "textual"},
}


def imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.lineno, node.module))
    return out


def files(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", sorted(RULES))
def test_package_imports_only_what_it_may(package):
    banned = RULES[package]
    bad = [f"{p.relative_to(ROOT)}:{line} imports {mod}"
           for p in files(package) for line, mod in imports(p) if mod.split(".")[0] in banned]
    assert not bad, "\n".join(bad)


def test_only_the_station_ui_imports_textual():
    bad = [f"{p.relative_to(ROOT)}:{line}"
           for p in files("station") if "ui" not in p.relative_to(ROOT).parts
           for line, mod in imports(p) if mod.split(".")[0] == "textual"]
    assert not bad, "\n".join(bad)


def test_schema_is_our_package_not_the_pypi_one():
    import schema

    assert Path(schema.__file__).resolve().parent == ROOT / "schema"
