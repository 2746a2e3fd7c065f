"""Station pull benchmark: a county-level station pulls N events from a real county center.

    .venv/bin/python -m bench.station_pull [--events 100000] [--limit 500]

Events: the first N foreign events of the cached demo county (``bench/out``, built by
``bench.store`` / ``build_demo``), loaded straight into a fresh county database (SQLite); the
real county center serves them with uvicorn on 127.0.0.1 in its own process (socket set up as
``county-center serve`` does, rate limits lifted); a fresh station enrolled at county level pulls
them with ``sync_now`` (pages of ``--limit``).

Reported, in the same run:
1. the whole pull (HTTP, decrypt, verify signature and every hash, ingest + cursor per page), events/s;
2. of which ``Store.ingest`` alone (batched: one look-up and one insert per page, each case
   saved once per page);
3. baseline A: the per-event ingest loop this module replaced (``has_event`` + project + insert
   per event, same pages) on another fresh station;
4. baseline B: ``station.projections.cases.fold_all`` of the same events in memory (what bench/store.py
   reports as "fold").

The demo's stations are registered at the county (``station.enrolled``) first, so the station
knows who they are: every pulled event goes through the same authority and clock checks as in
production (``station.replication.admission``).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from bench import common as C

C.setup_env()

from schema import hlc as HLC  # noqa: E402
from schema.org import Role  # noqa: E402
from station import clock  # noqa: E402
from station.projections.cases import fold_all  # noqa: E402
from station.replication import enroll as enrolling  # noqa: E402
from station.replication import identity as I  # noqa: E402
from station.replication.runner import sync_now  # noqa: E402
from station.services.demo import COUNTY, DEMO_PIN, build_demo  # noqa: E402
from station.session import init_station, unlock  # noqa: E402
from station.store import store as store_mod  # noqa: E402


def demo_events(n: int) -> list:
    path = C.OUT / "demo-100000-seed1-20260615"
    if not (path / "station.json").exists():
        C.log("building the demo county (100,000 cases; takes a while, cached in bench/out) …")
        build_demo(path, cases=100_000)
    s = unlock(path, "admin", DEMO_PIN)
    own = s.config.station_id
    out = []
    for ev in s.store.events():
        if ev.station != own:
            out.append(ev)
            if len(out) >= n:
                break
    s.close()
    return out


def old_ingest(store, events) -> int:
    """The per-event ``Store.ingest`` this sync work replaced (git 7b3c5fe), for the baseline."""
    new = 0
    with store.writing():
        for ev in sorted(events, key=lambda e: e.order):
            if ev.station == store.station_id or store.has_event(ev.id):
                continue
            store._hlc = HLC.receive(store._hlc, ev.hlc, clock.ms(clock.now()))
            store._project(ev, strict=False)
            store._insert([ev])
            new += 1
    return new


SERVER = r"""
import os, socket, sys
import uvicorn
from sync.server.app import create_app
from sync.server.config import Settings
from sync.server.db import connect
from sync.server.keystore import unlock

url = sys.argv[1]
cdb = connect(url)
county = unlock(cdb, os.environ["COUNTY_PASSPHRASE"])
sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # as `county-center serve`
sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
sock.bind(("127.0.0.1", 0))
sock.listen(64)
settings = Settings(db_url=url, rate_burst=1e9, rate_per_second=1e9)
print(sock.getsockname()[1], flush=True)
uvicorn.Server(uvicorn.Config(create_app(settings, cdb=cdb, county=county), log_level="warning",
                              lifespan="off", access_log=False)).run(sockets=[sock])
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--limit", type=int, default=500)
    args = ap.parse_args()
    import os
    import subprocess
    import sys

    os.environ["COUNTY_KDF_COST"] = "low"
    os.environ["COUNTY_PASSPHRASE"] = "bench-passphrase"
    from schema import events as K
    from schema.org import OrgCode
    from sync.server import county_chain, registry
    from sync.server.db import connect, event_row, insert_events
    from sync.server.keystore import init_county

    events = demo_events(args.events)
    C.log(f"{len(events):,} events from the demo county")
    with C.scratch_dir("station-pull") as tmp:
        tmp = Path(tmp)
        url = f"sqlite:///{tmp / 'county.db'}"
        cdb = connect(url)
        county = init_county(cdb, code=COUNTY[0], name=COUNTY[1], passphrase=os.environ["COUNTY_PASSPHRASE"])
        ms = int(time.time() * 1000)
        with cdb.write():  # the demo's stations, as enrollment would have registered them
            for sid, org in sorted({(e.station, e.org) for e in events}):
                body = {"station": sid, "org": org, "level": OrgCode(org).level.value, "name": org,
                        "sign_pub": "", "enc_pub": ""}
                county_chain.append(cdb, county, K.STATION_ENROLLED, sid, body)
        with cdb.write():
            for i in range(0, len(events), 5000):
                insert_events(
                    cdb, [event_row(e, scope="", township="", received_at=ms) for e in events[i : i + 5000]]
                )
        code = registry.make_code(cdb, county, org=COUNTY[0], level="county")
        cdb.close()
        # The county center in its own process, as in production: the station's costs are measured alone.
        server = subprocess.Popen(
            [sys.executable, "-c", SERVER, url], cwd=C.ROOT, stdout=subprocess.PIPE, text=True
        )
        try:
            port = int(server.stdout.readline())
            base = f"http://127.0.0.1:{port}"
            for _ in range(100):
                try:
                    import requests

                    requests.get(base + "/v1/health", timeout=1)
                    break
                except requests.ConnectionError:
                    time.sleep(0.1)
            s = init_station(
                tmp / "st",
                org=COUNTY[0],
                name="县政务服务中心",
                login="shenpi",
                role=Role.REVIEWER,
                pin=DEMO_PIN,
            )
            enrolling.enroll_online(s, base, code)
            with s.store.writing():
                s.store.set_meta(I.PULL_LIMIT, str(args.limit))
            spent = [0.0]
            real = store_mod.Store.ingest

            def timed(self, evs, **kw):
                t = C.clock()
                try:
                    return real(self, evs, **kw)
                finally:
                    spent[0] += C.clock() - t

            store_mod.Store.ingest = timed
            t = C.clock()
            report = sync_now(s)
            total = C.clock() - t
            store_mod.Store.ingest = real
            assert report.ok, report.messages
            assert s.store.set_aside_count() == 0, s.store.set_aside_recent()  # every demo event is honest
            pulled = report.pulled
            s.close()
        finally:
            server.terminate()
            server.wait(30)

        b = init_station(
            tmp / "base",
            org=COUNTY[0],
            name="县政务服务中心",
            login="shenpi",
            role=Role.REVIEWER,
            pin=DEMO_PIN,
        )
        t = C.clock()
        for i in range(0, len(events), args.limit):
            old_ingest(b.store, events[i : i + args.limit])
        old = C.clock() - t
        b.close()
        t = C.clock()
        fold_all(events)
        fold = C.clock() - t

    n = len(events)
    print(
        f"pulled {pulled:,} events in pages of {args.limit}; {report.bytes_received / n:.0f} bytes/event received"
    )
    print(f"whole pull (sync_now)            {total:7.2f} s  {pulled / total:9,.0f} events/s")
    print(f"  of which Store.ingest (batched) {spent[0]:7.2f} s  {pulled / spent[0]:9,.0f} events/s")
    print(f"baseline A: per-event ingest     {old:7.2f} s  {n / old:9,.0f} events/s")
    print(f"baseline B: fold_all in memory   {fold:7.2f} s  {n / fold:9,.0f} events/s")
    print(
        f"batched ingest / per-event ingest: {old / spent[0]:.2f}×;  whole pull / fold_all: {fold / total:.2f}"
    )


if __name__ == "__main__":
    main()
