"""Fixtures for the station's sync tests: the real county center on uvicorn (tests/station/sync_kit.py)."""

from __future__ import annotations

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
