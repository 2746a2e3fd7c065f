"""Fixtures for the county center tests (and, later, the end-to-end sync tests).

Backends: every fixture taking ``backend`` runs on SQLite and on a real PostgreSQL
cluster (``pg``: initdb into /tmp, started once per session on a unix socket, removed at
the end; see :mod:`sync.server.pgcluster`). Without PostgreSQL installed the
PostgreSQL variants are skipped — except under CI (``CI=true``), where they fail:
``.ci/run`` installs it.

- ``county``: an initialised county database → :class:`CountyHandle` (``cdb``, ``county``
  unlocked, ``url``, ``passphrase``), a fresh database per test;
- ``server``: that county served by a real uvicorn on 127.0.0.1 (port 0, in a thread) →
  :class:`ServerHandle` (``url``, ``client``: :class:`tests.sync.county_kit.Client`);
- ``make_server(**settings)``: the same with other limits (e.g. a tiny rate bucket);
- ``stations``: :class:`tests.sync.county_kit.SimStation` factory sharing one HLC/clock,
  enrolled through the plain functions.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass

import pytest

from sync.server.app import BackgroundServer, create_app
from sync.server.config import Settings
from sync.server.db import CountyDB, connect
from sync.server.keystore import County, init_county
from sync.server.pgcluster import PgCluster
from tests.helpers import COUNTY
from tests.sync.county_kit import Chains2, Client, SimStation, enroll_direct, make_station

os.environ["COUNTY_KDF_COST"] = "low"
PASSPHRASE = "县中心管理口令-2026"
BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(autouse=True)
def _county_env(monkeypatch):
    monkeypatch.setenv("COUNTY_KDF_COST", "low")
    for name in ("COUNTY_PASSPHRASE", "COUNTY_DB"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    """Override with ``@pytest.mark.parametrize("backend", ["sqlite"])`` for one backend only."""
    return request.param


@pytest.fixture
def db_url(request, backend, tmp_path):
    """A fresh, empty database URL on ``backend``."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'county.db'}"
        return
    cluster: PgCluster = request.getfixturevalue("pg")
    name = "t_" + uuid.uuid4().hex[:12]
    yield cluster.create_database(name)
    cluster.drop_database(name)


@dataclass
class CountyHandle:
    cdb: CountyDB
    county: County
    url: str
    passphrase: str = PASSPHRASE


@pytest.fixture
def county(backend, db_url) -> CountyHandle:
    cdb = connect(db_url)
    c = init_county(cdb, code=COUNTY, name="测试县", passphrase=PASSPHRASE)
    yield CountyHandle(cdb, c, db_url)
    cdb.close()


@dataclass
class ServerHandle:
    url: str
    county: County
    cdb: CountyDB
    client: Client
    app: object


@pytest.fixture
def make_server(county):
    running = []

    def make(**settings) -> ServerHandle:
        config = Settings(db_url=county.url, **settings)
        app = create_app(config, cdb=county.cdb, county=county.county)
        srv = BackgroundServer(app)  # binds the port
        config.public_url = config.public_url or srv.url  # what enrollment answers tell stations
        srv.start()
        running.append(srv)
        return ServerHandle(srv.url, county.county, county.cdb, Client(srv.url, county.county), app)

    yield make
    for srv in running:
        srv.stop()


@pytest.fixture
def server(make_server) -> ServerHandle:
    return make_server(rate_burst=10_000, rate_per_second=10_000)


@pytest.fixture
def stations(county):
    """``stations(org, level, enroll=True)`` → an enrolled SimStation; all share one clock."""
    chains = Chains2()

    def make(org: str, level: str, *, enroll: bool = True, **kw) -> SimStation:
        st = make_station(org, level, chains, **kw)
        if enroll:
            enroll_direct(county.cdb, county.county, st)
        return st

    make.chains = chains
    return make
