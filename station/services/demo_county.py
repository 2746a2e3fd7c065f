"""The demo county with its county center: what ``python3 dev.py demo`` runs.

``build_demo_county(root)`` makes ``root/county.db`` (a county center on SQLite) and
``root/station`` (the county office's station). Every simulated station of the demo county
(:func:`station.services.demo.simulate`) is enrolled with its own keys and has pushed its
signed chain to the county center; the office station is enrolled online with a one-time
code and has pulled everything through a real sync — so the demo data went through the
same protocol as real data, and the next ``station`` sync in the demo talks to the same
county center (``county-center serve --db sqlite:///root/county.db``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from schema.org import OrgCode
from station import clock
from station.config import DataDir
from station.replication import enroll, runner
from station.services.demo import COUNTY, DEMO_PIN, _demo_session, simulate, summary_of
from sync import enrollment
from sync.client import Client
from sync.crypto import KeyPair
from sync.messages import make_segment

DEMO_PASSPHRASE = "demo-county-2026"  # the demo county's admin passphrase (demo data only)
SEGMENT = 500


def county_db_url(root: str | Path) -> str:
    return f"sqlite:///{Path(root).resolve() / 'county.db'}"


def station_dir(root: str | Path) -> Path:
    return Path(root) / "station"


def build_demo_county(root: str | Path, *, cases: int, seed: int = 1) -> dict[str, Any]:
    # The server side is only needed here: keep `station` importable without FastAPI loaded.
    from sync.server.app import BackgroundServer, create_app
    from sync.server.config import Settings
    from sync.server.db import connect
    from sync.server.ingest import ingest_segments
    from sync.server.keystore import init_county
    from sync.server.registry import enroll as county_enroll
    from sync.server.registry import make_code

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    url = county_db_url(root)
    cdb = connect(url)
    try:
        county = init_county(cdb, code=COUNTY[0], name=COUNTY[1], passphrase=DEMO_PASSPHRASE)
        data = DataDir(station_dir(root))
        with _demo_session(data) as session:
            sims, events = simulate(
                cases=cases, seed=seed, cal=session.store.cases.calendar(), now=clock.now()
            )
            chains: dict[str, list] = {}
            for ev in events:
                chains.setdefault(ev.station, []).append(ev)
            # Villages first, then townships, then the county window: a station's action on a case
            # is accepted once the case's registration has reached the county.
            order = sorted(sims.values(), key=lambda sim: OrgCode(sim.org).level.rank)
            for sim in order:
                key = KeyPair.generate()
                level = OrgCode(sim.org).level.value
                code = make_code(cdb, county, org=sim.org, level=level, name=sim.name)
                county_enroll(
                    cdb,
                    county,
                    enrollment.make_request(
                        key,
                        enrollment.derive(code, county.code),
                        station=sim.station_id,
                        org=sim.org,
                        name=sim.name,
                        at=clock.iso(clock.now()),
                    ),
                )
                chain = chains.get(sim.station_id, [])
                segments = [
                    make_segment(chain[i : i + SEGMENT], key, county.code)
                    for i in range(0, len(chain), SEGMENT)
                ]
                for result in ingest_segments(cdb, county, segments):
                    if not result.ok:
                        raise RuntimeError(f"demo chain refused: {result}")
            server = BackgroundServer(create_app(Settings(db_url=url), cdb=cdb, county=county)).start()
            try:
                code = make_code(cdb, county, org=COUNTY[0], level="county", name=session.config.name)
                enroll.enroll_online(session, server.url, code)
                with Client(server.url) as client:
                    report = runner.sync_now(session, client=client)
                if report.outcome != "ok":
                    raise RuntimeError("demo sync failed: " + "；".join(report.messages))
            finally:
                server.stop()
            states = dict(
                session.db.execute_sql("SELECT state, count(*) FROM case_view GROUP BY state").fetchall()
            )
            written = session.store.event_count()
    finally:
        cdb.close()
    return {
        "cases": sum(states.values()),
        "events": written,
        "states": states,
        "county_db": url,
        "station_dir": str(station_dir(root)),
        "summary": summary_of(states, written, len(sims)),
        "logins": ["admin", "shenpi"],
        "pin": DEMO_PIN,
        "passphrase": DEMO_PASSPHRASE,
    }
