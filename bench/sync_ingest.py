"""County-center benchmarks: ingest throughput over HTTP, and the cost of a township's pull.

    .venv/bin/python -m bench.sync_ingest [--events 100000] [--quick] [--write] [--profile]

1. Ingest: a county of villages pushes realistic chains (per case: registration with the
   item snapshot, acceptance, forward, decision, delivery — ``tests.helpers`` builders) to a
   real ``county-center serve`` process on loopback, one signed 500-event segment per push,
   one client connection. Events/s on SQLite and on PostgreSQL (a throwaway cluster with
   production durability: fsync on), each as a ratio of a raw bulk insert of the same rows
   into the same table of the same backend in the same run (driver ``executemany`` /
   ``execute_values``, one transaction per 500 rows).
2. Township pull: a county log where one township's share is 5 %, against a log holding
   only that township's events; the township pulls its whole scope (pages of 500) over
   HTTP. Time and bytes as a ratio big/small: ~1 means the pull costs in proportion to the
   township's own events, not the county's.

``--profile`` runs the ingest of the SQLite case in-process under cProfile instead.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

from bench import common as C
from bench.common import Result, log, scratch_dir

os.environ["COUNTY_KDF_COST"] = "low"

import requests  # noqa: E402

from schema import events as K  # noqa: E402
from schema.catalog import default_catalog  # noqa: E402
from sync import api  # noqa: E402
from sync.server.db import connect, event_row  # noqa: E402
from sync.server.ingest import ingest_segments  # noqa: E402
from sync.server.keystore import init_county  # noqa: E402
from sync.server.pgcluster import PgCluster  # noqa: E402
from tests.helpers import Chains, registration_body  # noqa: E402
from tests.sync.county_kit import Chains2, Client, SimStation, enroll_direct  # noqa: E402

COUNTY = "330522000000"
PASSPHRASE = "bench-passphrase-2026"
SEGMENT = 500
GOAL_RATIO = 0.2
GOAL_SQLITE_EPS = 10_000
GOAL_PULL_RATIO = 1.5  # "~1"


def villages(n_towns: int, per_town: int) -> list[str]:
    return [f"330522{100 + t:03d}{v + 1:03d}" for t in range(1, n_towns + 1) for v in range(per_town)]


def town_of(org: str) -> str:
    return org[:9] + "000"


def build_county(orgs_events: dict[str, int], seed: int = 1) -> list[SimStation]:
    """One village station per org, each with about that many events (its start, then 5 per case)."""
    rng = random.Random(seed)
    items = [it.impl_code for it in default_catalog().items if it.village_may_accept and it.materials]
    chains = Chains2("2026-01-05T08:00:00+08:00")
    sims = [SimStation(org=org, level="village", chains=chains) for org in orgs_events]
    remaining = {s.id: orgs_events[s.org] - len(s.events) for s in sims}  # its start (BOOT) counts
    n = 0
    while any(v >= 5 for v in remaining.values()):
        for s in sims:
            if remaining[s.id] < 5:
                continue
            n += 1
            case = f"case-{s.id[-8:]}-{n}"
            s.record(K.CASE_REGISTERED, case, registration_body(rng.choice(items), n=n))
            s.record(K.CASE_ACCEPTED, case, {"opinion": "材料齐全，予以受理", "rongque": []})
            s.record(K.CASE_FORWARDED, case, {"opinion": "初审通过，转报县级"})
            s.record(K.CASE_DECIDED, case, {"outcome": "approved", "opinion": "准予", "certificate": ""})
            s.record(K.CASE_DELIVERED, case, {"method": "窗口领取"})
            remaining[s.id] -= 5
    return sims


def segments_of(s: SimStation) -> list[dict]:
    return [
        s.segment(i, min(i + SEGMENT - 1, len(s.events)), county=COUNTY)
        for i in range(1, len(s.events) + 1, SEGMENT)
    ]


# -- a county-center serve process ----------------------------------------------------------------------


class Serve:
    def __init__(self, db_url: str, logfile: Path) -> None:
        env = dict(os.environ, COUNTY_PASSPHRASE=PASSPHRASE, COUNTY_KDF_COST="low", PYTHONPATH=str(C.ROOT))
        self.log = open(logfile, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sync.server.cli", "serve", "--port", "0", "--db", db_url],
            stdout=subprocess.PIPE,
            stderr=self.log,
            env=env,
            cwd=logfile.parent,
        )
        line = self.proc.stdout.readline().decode("utf-8", "replace")
        m = re.search(r"http://127\.0\.0\.1:\d+", line)
        if not m:
            self.stop()
            raise RuntimeError(f"county-center serve did not start: {line!r} (see {logfile})")
        self.url = m.group(0)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc.stdout.close()
        self.log.close()


def new_county(url: str):
    cdb = connect(url)
    county = init_county(cdb, code=COUNTY, name="基准县", passphrase=PASSPHRASE)
    return cdb, county


# -- 1. ingest -------------------------------------------------------------------------------------------------


def raw_insert(cdb, rows: list[tuple], batch: int = SEGMENT) -> float:
    """Seconds to bulk-insert ``rows`` into the event table with the bare driver, one txn per batch."""
    E = cdb.m.Event
    cols = ", ".join(
        f'"{f.column_name}"'
        for f in (
            E.id,
            E.station,
            E.seq,
            E.hash,
            E.hlc,
            E.kind,
            E.subject,
            E.scope,
            E.township,
            E.data,
            E.received_at,
            E.flags,
        )
    )
    conn = cdb.database.connection()
    t = C.clock()
    if cdb.is_pg:
        from psycopg2.extras import execute_values

        with conn.cursor() as cur:
            for i in range(0, len(rows), batch):
                cur.execute("BEGIN")
                execute_values(
                    cur, f"INSERT INTO event ({cols}) VALUES %s", rows[i : i + batch], page_size=batch
                )
                cur.execute("COMMIT")
    else:
        marks = ",".join("?" * len(rows[0]))
        for i in range(0, len(rows), batch):
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(f"INSERT INTO event ({cols}) VALUES ({marks})", rows[i : i + batch])
            conn.execute("COMMIT")
    return C.clock() - t


def bench_ingest(backend: str, url_for, sims: list[SimStation], blobs_for, workdir: Path) -> list[Result]:
    n_events = sum(len(s.events) for s in sims)
    cdb, county = new_county(url_for("ingest"))
    for s in sims:
        enroll_direct(cdb, county, s)
    blobs = blobs_for(county)
    server = Serve(cdb.url, workdir / f"serve-{backend}.log")
    http = requests.Session()
    try:
        requests.get(server.url + "/v1/health", timeout=30).raise_for_status()
        t = C.clock()
        for blob in blobs:
            r = http.post(
                server.url + "/v1/push", data=blob, headers={"Content-Type": api.OCTET}, timeout=300
            )
            if r.status_code != 200:
                raise RuntimeError(f"push refused: {r.text[:300]}")
        took = C.clock() - t
    finally:
        server.stop()
    E = cdb.m.Event
    stored = E.select().where(E.station != county.station).count()
    assert stored == n_events, (stored, n_events)
    cdb.close()

    # raw baseline: the same rows (as the county stores them) into a fresh table of the same backend
    rows = [
        event_row(ev, scope=s.org, township=town_of(s.org), received_at=0) for s in sims for ev in s.events
    ]
    raw_times = []
    for i in range(3):
        rdb = connect(url_for(f"raw{i}"))
        rdb.create_schema()
        raw_times.append(raw_insert(rdb, rows))
        rdb.close()
    raw = C.median(raw_times)
    eps, raw_eps = n_events / took, n_events / raw
    ratio = eps / raw_eps
    label = "SQLite" if backend == "sqlite" else "PostgreSQL"
    out = [
        Result(
            f"ingest over HTTP, {label}: {n_events:,} events, {len(blobs)} pushes of ≤{SEGMENT}",
            f"{eps:,.0f} events/s ({C.secs(took)})",
            f"≥ {GOAL_SQLITE_EPS:,} events/s" if backend == "sqlite" else "",
            eps >= GOAL_SQLITE_EPS if backend == "sqlite" else None,
        ),
        Result(
            f"  baseline: raw bulk insert, same rows, {label} (median of 3)",
            f"{raw_eps:,.0f} events/s",
            "",
            None,
        ),
        Result(f"  ingest ÷ raw, {label}", f"{ratio:.2f}", f"≥ {GOAL_RATIO}", ratio >= GOAL_RATIO),
    ]
    return out


# -- 2. township pull -------------------------------------------------------------------------------------------


def bench_township_pull(backend: str, url_for, total: int, workdir: Path) -> list[Result]:
    towns, per_town = 20, 3
    orgs = villages(towns, per_town)
    target = town_of(orgs[0])
    per_village = total // len(orgs)
    big = build_county({o: per_village for o in orgs}, seed=3)
    mine = [s for s in big if town_of(s.org) == target]
    township = SimStation(org=target, level="township", chains=Chains2())
    figures = {}
    for name, sims in (("county", big), ("alone", mine)):
        cdb, county = new_county(url_for(f"pull-{name}"))
        for s in [*sims, township]:
            enroll_direct(cdb, county, s)
        for s in sims:
            results = ingest_segments(cdb, county, segments_of(s))
            assert all(r.ok for r in results)
        log_events = cdb.m.Event.select().count()
        server = Serve(cdb.url, workdir / f"serve-pull-{backend}.log")
        try:
            client = Client(server.url, county)
            client.pull(township, 0, 1)  # warm-up: connection, caches
            times, sizes = [], []
            for _ in range(3):
                sent = []
                orig = client.http.post

                def counting_post(*a, _orig=orig, _sent=sent, **kw):
                    r = _orig(*a, **kw)
                    _sent.append(len(r.content))
                    return r

                client.http.post = counting_post
                t = C.clock()
                events, _, pages = client.pull_all(township, 0, 500)
                times.append(C.clock() - t)
                sizes.append(sum(sent))
                client.http.post = orig
        finally:
            server.stop()
        own = sum(1 for s in mine for e in s.events if e.kind.startswith("case."))
        got_cases = sum(1 for e in events if e["kind"].startswith("case."))
        assert got_cases == own, (got_cases, own)
        figures[name] = (C.median(times), C.median(sizes), log_events, len(events), pages)
        cdb.close()
    (tb, bb, nb, eb, pb), (ta, ba, na, ea, pa) = figures["county"], figures["alone"]
    label = "SQLite" if backend == "sqlite" else "PostgreSQL"
    share = sum(len(s.events) for s in mine) / sum(len(s.events) for s in big)
    return [
        Result(
            f"township pull, {label}: county log {nb:,} events (township {share:.0%}): {eb:,} events, {pb} pages",
            f"{C.ms(tb)}, {bb / 1024:,.0f} KB",
            "",
            None,
        ),
        Result(
            f"township pull, {label}: township's log alone {na:,} events: {ea:,} events, {pa} pages",
            f"{C.ms(ta)}, {ba / 1024:,.0f} KB",
            "",
            None,
        ),
        Result(
            f"  time ratio county ÷ alone, {label}",
            f"{tb / ta:.2f}",
            f"≤ {GOAL_PULL_RATIO} (~1)",
            tb / ta <= GOAL_PULL_RATIO,
        ),
        Result(
            f"  bytes ratio county ÷ alone, {label}",
            f"{bb / ba:.2f}",
            f"≤ {GOAL_PULL_RATIO} (~1)",
            bb / ba <= GOAL_PULL_RATIO,
        ),
    ]


# -- main ----------------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.sync_ingest", description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=None, help="events pushed (default 100000; quick 4000)")
    ap.add_argument("--quick", action="store_true", help="small sizes, a smoke run")
    ap.add_argument("--write", action="store_true", help="update the section of BENCHMARKS.md")
    ap.add_argument("--profile", action="store_true", help="profile in-process SQLite ingest (no HTTP)")
    ap.add_argument("--no-postgresql", action="store_true", help="SQLite only")
    args = ap.parse_args(argv)
    n = args.events or (4_000 if args.quick else 100_000)
    n_villages = 30
    t0 = C.clock()
    load_start = C.loadavg()
    log(f"building {n:,} events for {n_villages} villages ...")
    sims = build_county({o: n // n_villages for o in villages(10, 3)})
    n = sum(len(s.events) for s in sims)
    segs = [(s, seg) for s in sims for seg in segments_of(s)]
    segs.sort(
        key=lambda x: (int(x[1]["h"].split('"first":')[1].split(",")[0]), x[0].id)
    )  # round-robin stations

    def blobs_for(county):
        return [s.push_blob(county, [seg]) for s, seg in segs]

    if args.profile:
        with scratch_dir("sync-prof-") as d:
            cdb, county = new_county(f"sqlite:///{d / 'p.db'}")
            for s in sims:
                enroll_direct(cdb, county, s)
            C.run_profiled(lambda: [ingest_segments(cdb, county, [seg]) for _, seg in segs])
        return 0

    backends = ["sqlite"]
    pg = None
    pg_version = "(not run)"
    if not args.no_postgresql:
        pg = PgCluster(durable=True)
        if pg.available:
            pg.start()
            backends.append("postgresql")
            pg_version = pg.bindir.parent.name
        else:
            log("PostgreSQL not installed: SQLite only")
            pg = None
    results: list[Result] = []
    try:
        with scratch_dir("sync-") as d:
            for backend in backends:

                def url_for(name, _b=backend):
                    if _b == "sqlite":
                        return f"sqlite:///{d / (name + '.db')}"
                    return pg.create_database(name.replace("-", "_"))

                log(f"1. ingest on {backend} ...")
                results += bench_ingest(backend, url_for, sims, blobs_for, d)
                log(f"2. township pull on {backend} ...")
                results += bench_township_pull(backend, url_for, n, d)
    finally:
        if pg is not None:
            pg.stop()
    took = C.clock() - t0
    load = f"load average (1 min) {load_start} at start, {C.loadavg()} at end"
    out = C.table(results)
    print(out)
    print(load)
    misses = [r.name for r in results if r.ok is False]
    print(f"\n{sum(r.ok is True for r in results)} PASS, {len(misses)} MISS; run took {took:.0f} s")
    if args.write:
        body = (
            f"Command: `{C.command_line('bench.sync_ingest')}`  \n"
            f"Machine: {C.machine_line()}; {load} (other jobs may share the machine)  \n"
            f"Setup: {n:,} events of {n_villages} villages (5 per case: registration with item snapshot, "
            f"acceptance, forward, decision, delivery), one signed {SEGMENT}-event segment per push, one client "
            f"connection to a `county-center serve` subprocess on 127.0.0.1; PostgreSQL {pg_version} throwaway "
            f"cluster with fsync on; SQLite {sqlite3.sqlite_version} (Python's sqlite3) WAL, synchronous=FULL.\n\n"
            f"{out}\n"
        )
        C.update_section("Sync: county ingest", body, keep_from="### Analysis")
        log(f"updated {C.BENCHMARKS_MD}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = ["Chains", "main"]
