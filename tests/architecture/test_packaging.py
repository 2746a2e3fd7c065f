"""The PyInstaller build: a spec fit for Windows 10+, and a built folder with nothing secret or personal in it.

``.ci/run`` builds the folder (``python3 dev.py build``) before the tests and names it in
``STATION_BUILT_DIR``; on a developer's machine the scan of the folder runs only when that is set
(the build takes minutes). Under CI it must not be skipped.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from schema.validation import id_check_char

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "packaging" / "station.spec"
# Files a station or county makes at run time: none may ship.
RUNTIME_FILES = re.compile(r"(keyslots\.json(\.bak)?|station\.json|station\.db(-wal|-shm)?|county\.db.*|"
                           r".*\.station-backup|.*\.cvs|.*\.log)$")
PEM_PRIVATE = re.compile(rb"-----BEGIN ([A-Z ]+ )?PRIVATE KEY-----")
ID_NUMBER = re.compile(rb"(?<!\d)(\d{17})([\dX])(?!\d)")


def test_the_spec_is_ready_for_windows():
    text = SPEC.read_text(encoding="utf-8")
    assert '("X utf8", None, "OPTION")' in text  # UTF-8 mode: files and pipes in UTF-8 on a Chinese Windows
    assert "console=True" in text
    for data in ('"station" / "ui" / "styles"', '"station" / "store" / "migrations"', '"schema" / "data"'):
        assert data in text
    # paths are joined by pathlib, never with a separator written into a string
    assert not re.search(r"""["'][\w.-]+[/\\][\w.-]+["']""", text), "a hard-coded path separator"
    config = (ROOT / "station" / "config.py").read_text(encoding="utf-8")
    assert "platformdirs.user_data_dir(APP, appauthor=False, roaming=False)" in config  # %LOCALAPPDATA%


def _built() -> Path:
    built = os.environ.get("STATION_BUILT_DIR")
    if not built:
        if os.environ.get("CI"):
            pytest.fail("CI must build the folder first (.ci/run sets STATION_BUILT_DIR)")
        pytest.skip("no PyInstaller build here (python3 dev.py build, then STATION_BUILT_DIR=dist/station)")
    return Path(built)


def test_the_built_folder_holds_no_private_key_and_no_personal_data():
    built = _built()
    files = [p for p in built.rglob("*") if p.is_file()]
    assert any(p.name in ("station", "station.exe") for p in files)
    assert any(p.name in ("county-center", "county-center.exe") for p in files)
    assert [p for p in files if RUNTIME_FILES.fullmatch(p.name)] == []
    assert not any(part in ("tests", "demo-data", ".venv") for p in files for part in p.relative_to(built).parts)
    keys = [p for p in files if p.stat().st_size < 64 * 1024 * 1024 and PEM_PRIVATE.search(p.read_bytes())]
    assert keys == [], f"private keys shipped: {keys}"
    # Our own data files (catalog, migrations, styles) hold no ID number that passes its check digit.
    ours = [p for p in files if {"station", "schema", "sync"} & set(p.relative_to(built).parts[:2])]
    assert any(p.name == "catalog.json" for p in ours)
    for p in ours:
        for m in ID_NUMBER.finditer(p.read_bytes()):
            assert id_check_char(m[1].decode()) != m[2].decode(), f"an ID number in {p}"
