"""Shared setup: cheap key derivation for every test, and the helpers module importable."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# Key slots use a cheap Argon2id in tests (set before anything derives a key).
os.environ["STATION_KDF_COST"] = "low"
# No credential store unless a test asks for one (``device_store``): tests never touch the
# developer's own keyring, and subprocesses inherit the same choice.
os.environ["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"

_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:  # `from tests.helpers import …` with --import-mode=importlib
    sys.path.insert(0, _ROOT)


@pytest.fixture(autouse=True)
def _low_kdf(monkeypatch):
    monkeypatch.setenv("STATION_KDF_COST", "low")
    for name in ("STATION_PIN", "STATION_NEW_PIN", "STATION_USER", "STATION_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def device_store():
    """This computer has a credential store (an in-memory ``keyring`` backend) for the test."""
    import keyring

    from tests.keyring_backend import MemoryKeyring

    before = keyring.get_keyring()
    store = MemoryKeyring()
    keyring.set_keyring(store)
    yield store
    keyring.set_keyring(before)


@pytest.fixture
def now(monkeypatch):
    """Pin the station clock: ``now("2026-03-05T10:00")`` (CST); starts at helpers.T0."""
    from tests.helpers import T0

    def set_now(iso: str) -> None:
        monkeypatch.setenv("STATION_NOW", iso)

    set_now(T0)
    return set_now


@pytest.fixture
def cli_logging():
    """Undo what in-process ``station.cli.main.main`` calls add: a station.log handler per call."""
    import logging

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for h in root.handlers[:]:
        if h not in handlers:
            root.removeHandler(h)
            h.close()
    root.setLevel(level)


@pytest.fixture(scope="session")
def pg():
    """A throwaway PostgreSQL cluster for the whole run (sync.server.pgcluster).

    Without PostgreSQL installed its tests are skipped — except under CI (``CI`` set), where
    they fail: ``.ci/run`` installs it.
    """
    from sync.server.pgcluster import PgCluster

    cluster = PgCluster()
    if not cluster.available:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not installed; .ci/run should have installed it")
        pytest.skip("PostgreSQL is not installed (apt-get install -y postgresql)")
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def county_db_url(request, tmp_path):
    """A fresh, empty county-center database URL on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'county.db'}"
        return
    import uuid

    cluster = request.getfixturevalue("pg")
    name = "t_" + uuid.uuid4().hex[:12]
    yield cluster.create_database(name)
    cluster.drop_database(name)
