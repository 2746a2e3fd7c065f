"""Fixtures for the station's sync tests: the real county center on uvicorn (tests/station/sync_kit.py)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.station.sync_kit import CountyServer


@pytest.fixture
def county(tmp_path):
    """The county center on SQLite."""
    with CountyServer(tmp_path / "county") as c:
        yield c


@pytest.fixture
def county_both(tmp_path, county_db_url):
    """The county center on SQLite and on a real PostgreSQL (for the whole-path tests)."""
    with CountyServer(tmp_path / "county", db_url=county_db_url) as c:
        yield c


@pytest.fixture
def tmpfs(tmp_path):
    """``tmpfs("512k")``: a real filesystem of that size, to fill up (root only; skipped where
    mounting is not permitted). Unmounted at the end of the test."""
    mounted: list[Path] = []

    def mount(size: str) -> Path:
        point = tmp_path / f"disk{len(mounted)}"
        point.mkdir()
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(point)], capture_output=True)
        if r.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here (root needed): {r.stderr.decode(errors='replace').strip()}")
        mounted.append(point)
        return point

    yield mount
    for point in mounted:
        subprocess.run(["umount", "-l", str(point)], check=False)
