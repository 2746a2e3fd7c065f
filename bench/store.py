"""Store benchmarks: write throughput, interactive latency, search, rebuild, unlock.

    .venv/bin/python -m bench.store [--cases 100000] [--quick] [--write] [--profile SECTION]

1. Write: K cases registered and accepted through the real service path
   (``cases.register`` + ``cases.act(…, "accept")``) in ``store.writing()`` batches, in
   events/s, as a ratio against raw ``sqlcipher3`` ``executemany`` of the same
   event rows into an identically configured encrypted table, in the same run.
   Then the latency of one interactive registration (own transaction, fsync).
2. Search and lists on a demo county (``build_demo``, cached under bench/out/).
3. Rebuilding every case from the log (``station.projections.cases.fold_all``) and
   ``verify_station``.
4. Unlocking one key slot at the PRODUCTION Argon2id cost, and opening the
   database (+ migration check) once the key is known.

Setup uses STATION_KDF_COST=low (cheap slots) and a pinned STATION_NOW.
``--profile write|search|fold|verify|unlock`` runs one section under cProfile
and prints the top functions instead of the table.
"""

from __future__ import annotations

import argparse
import functools
import gc
import os
import random
import time
from collections.abc import Callable
from pathlib import Path

from bench import common as C
from bench.common import Result, log, run_profiled, scratch_dir

C.setup_env()  # before anything reads the environment

import sqlcipher3  # noqa: E402

from schema.ids import new_id  # noqa: E402
from schema.org import Role  # noqa: E402
from station import clock  # noqa: E402
from station import search as terms  # noqa: E402
from station.config import DataDir  # noqa: E402
from station.projections.cases import fold_all  # noqa: E402
from station.services import cases as case_svc  # noqa: E402
from station.services import catalog as catalogs  # noqa: E402
from station.services import queries  # noqa: E402
from station.services.demo import DEMO_PIN, fake_person  # noqa: E402
from station.services.verify import verify_station  # noqa: E402
from station.session import Session, init_station, unlock  # noqa: E402
from station.store.db import PRAGMAS, key_pragma, open_database  # noqa: E402
from station.store.keyslots import PRODUCTION, KeySlots, _derive  # noqa: E402
from station.store.migrate import migrate  # noqa: E402
from station.store.store import EVENT_COLUMNS  # noqa: E402

VILLAGE = "330522101001"
PIN = "246810"

# Goals (team targets).
GOAL_WRITE_RATIO = 0.25
GOAL_REGISTER_P99 = 0.010
GOAL_SEARCH_P95 = 0.020
GOAL_LIST_P95 = 0.020
GOAL_FOLD_EPS = 20_000
GOAL_UNLOCK = (0.2, 0.5)


def _event_ddl() -> list[str]:
    """The event table and its indexes, copied from the initial migration."""
    import importlib.util

    from station.store.migrate import MIGRATIONS

    spec = importlib.util.spec_from_file_location("m0001", MIGRATIONS / "0001_initial.py")
    mod = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(mod)
    return [s for s in mod.STATEMENTS if "TABLE event" in s or " ON event " in s]


def raw_connect(path: Path, key: bytes):
    """A bare sqlcipher3 connection configured like station.store.db.open_database."""
    conn = sqlcipher3.connect(str(path), isolation_level=None)
    conn.execute(f'PRAGMA key = "{key_pragma(key)}"')
    for k, v in PRAGMAS.items():
        conn.execute(f"PRAGMA {k} = {v}")
    conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    return conn


def raw_insert(path: Path, rows: list[tuple]) -> float:
    """Seconds to insert ``rows`` into a fresh encrypted event table in one transaction."""
    conn = raw_connect(path, os.urandom(32))
    for sql in _event_ddl():
        conn.execute(sql)
    marks = ",".join("?" * len(rows[0]))
    t = C.clock()
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany(f"INSERT INTO event ({EVENT_COLUMNS}) VALUES ({marks})", rows)
    conn.execute("COMMIT")
    took = C.clock() - t
    conn.close()
    return took


def raw_single_commits(path: Path, rows: list[tuple]) -> list[float]:
    """Latency of one-row transactions (the fsync floor for an interactive write)."""
    conn = raw_connect(path, os.urandom(32))
    for sql in _event_ddl():
        conn.execute(sql)
    marks = ",".join("?" * len(rows[0]))
    out = []
    for r in rows:
        t = C.clock()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(f"INSERT INTO event ({EVENT_COLUMNS}) VALUES ({marks})", r)
        conn.execute("COMMIT")
        out.append(C.clock() - t)
    conn.close()
    return out


# -- 1. writing ----------------------------------------------------------------------


class Applicants:
    def __init__(self, seed: int = 7) -> None:
        self.rng = random.Random(seed)
        self.today = clock.today()

    def next(self) -> tuple[str, str, str]:
        return fake_person(self.rng, self.today)


def new_village_station(root: Path) -> Session:
    return init_station(
        root,
        org=VILLAGE,
        name="东村便民服务室",
        login="agent",
        role=Role.AGENT,
        pin=PIN,
        user_name="东村代办员",
    )


def village_item():
    for item in catalogs.current_catalog().items:
        if item.village_may_accept and item.materials:
            return item
    raise RuntimeError("no village item in the catalog")


def register_and_accept(session: Session, people: Applicants, item, mats: list[str], n: int) -> None:
    for _ in range(n):
        name, idn, phone = people.next()
        v = case_svc.register(
            session, item_code=item.impl_code, name=name, id_number=idn, phone=phone, received=mats
        )
        case_svc.act(session, v.case_id, "accept")


def bench_write(k: int, batch: int, n_latency: int, profile: bool = False) -> list[Result]:
    results: list[Result] = []
    item = village_item()
    mats = [m.name for m in item.materials]
    people = Applicants()
    with scratch_dir("write-") as d:
        session = new_village_station(d / "station")
        store = session.store
        # Warm-up (untimed): first use of the catalog, pinyin tables, statement cache.
        with store.writing():
            register_and_accept(session, people, item, mats, 50)
        first_rowid = session.db.execute_sql("SELECT max(rowid) FROM event").fetchone()[0]

        def batches():
            done = 0
            while done < k:
                m = min(batch, k - done)
                with store.writing():
                    register_and_accept(session, people, item, mats, m)
                done += m

        gc.collect()
        if profile:
            run_profiled(batches)
            return []
        t = C.clock()
        batches()
        store_s = C.clock() - t
        rows = session.db.execute_sql(
            f"SELECT {EVENT_COLUMNS} FROM event WHERE rowid > ? ORDER BY rowid", (first_rowid,)
        ).fetchall()
        n_events = len(rows)
        assert n_events == 2 * k, (n_events, k)
        store_eps = n_events / store_s

        raw_times = []
        for i in range(3):
            raw_times.append(raw_insert(d / f"raw{i}.db", rows))
        raw_s = C.median(raw_times)
        raw_eps = n_events / raw_s
        ratio = store_eps / raw_eps
        results += [
            Result(
                f"write: register+accept {k:,} cases ({n_events:,} events, batches of {batch})",
                f"{store_eps:,.0f} events/s ({C.secs(store_s)})",
                "",
                None,
            ),
            Result(
                "write: baseline raw sqlcipher3 executemany, same rows, 1 txn (median of 3)",
                f"{raw_eps:,.0f} events/s ({C.ms(raw_s)})",
                "",
                None,
            ),
            Result("write: store ÷ raw", f"{ratio:.3f}", f"≥ {GOAL_WRITE_RATIO}", ratio >= GOAL_WRITE_RATIO),
            Result("write: per case (register+accept), store", C.ms(store_s / k), "", None),
        ]

        # Interactive: one registration per transaction, each committed with fsync.
        lat = []
        for _ in range(10):
            name, idn, phone = people.next()
            case_svc.register(
                session, item_code=item.impl_code, name=name, id_number=idn, phone=phone, received=mats
            )
        for _ in range(n_latency):
            name, idn, phone = people.next()
            t = C.clock()
            case_svc.register(
                session, item_code=item.impl_code, name=name, id_number=idn, phone=phone, received=mats
            )
            lat.append(C.clock() - t)
        p50, p99 = C.percentile(lat, 50), C.percentile(lat, 99)
        floor = raw_single_commits(d / "rawlat.db", rows[:n_latency])
        results += [
            Result(f"register, own txn + fsync: p50 (n={n_latency})", C.ms(p50), "", None),
            Result(
                f"register, own txn + fsync: p99 (n={n_latency})",
                C.ms(p99),
                f"≤ {C.ms(GOAL_REGISTER_P99)}",
                p99 <= GOAL_REGISTER_P99,
            ),
            Result(
                "baseline: raw 1-row INSERT + COMMIT (fsync): p50 / p99",
                f"{C.ms(C.percentile(floor, 50))} / {C.ms(C.percentile(floor, 99))}",
                "",
                None,
            ),
        ]
        session.close()
    return results


# -- 2. search -------------------------------------------------------------------------


def search_queries(session: Session, n: int, seed: int = 42) -> dict[str, list[str]]:
    rng = random.Random(seed)
    rows = session.db.execute_sql(
        "SELECT applicant_name, id_number, case_no FROM case_view ORDER BY case_id"
    ).fetchall()
    picks = [rows[rng.randrange(len(rows))] for _ in range(n)]
    out: dict[str, list[str]] = {
        "name substring (1-3 chars)": [],
        "full ID number": [],
        "ID tail (4 or 6)": [],
        "case number (full)": [],
        "pinyin initials": [],
    }
    for name, idn, case_no in picks:
        length = rng.randint(1, min(3, len(name)))
        start = rng.randint(0, len(name) - length)
        out["name substring (1-3 chars)"].append(name[start : start + length])
        out["full ID number"].append(idn)
        out["ID tail (4 or 6)"].append(idn[-rng.choice((4, 6)) :])
        out["case number (full)"].append(case_no)
        out["pinyin initials"].append(terms.initials(name))
    return out


LIST_STATES = [
    ["received"],
    ["in_progress"],
    ["in_progress", "returned"],
    ["awaiting_supplement"],
    ["suspended"],
    ["done"],
    ["received", "awaiting_supplement", "in_progress", "suspended", "returned"],
]


def bench_search(session: Session, n: int, profile: bool = False) -> list[Result]:
    results: list[Result] = []
    qs = search_queries(session, n)
    warm = search_queries(session, 20, seed=1)
    for qlist in warm.values():  # untimed warm-up
        for q in qlist:
            queries.search_cases(session, q)
    if profile:
        run_profiled(lambda: [queries.search_cases(session, q) for ql in qs.values() for q in ql])
        return []
    for label, qlist in qs.items():
        lat, hits = [], 0
        for q in qlist:
            t = C.clock()
            found = queries.search_cases(session, q)
            lat.append(C.clock() - t)
            hits += bool(found)
        p50, p95 = C.percentile(lat, 50), C.percentile(lat, 95)
        results.append(
            Result(
                f"search {label}: p50 / p95 (n={len(qlist)}, {hits} found)",
                f"{C.ms(p50)} / {C.ms(p95)}",
                f"p95 ≤ {C.ms(GOAL_SEARCH_P95)}",
                p95 <= GOAL_SEARCH_P95,
            )
        )

    def lists(label: str, calls: list[Callable[[], object]]) -> None:
        for c in calls[:10]:
            c()
        lat = []
        for c in calls:
            t = C.clock()
            c()
            lat.append(C.clock() - t)
        p50, p95 = C.percentile(lat, 50), C.percentile(lat, 95)
        results.append(
            Result(
                f"{label}: p50 / p95 (n={len(calls)})",
                f"{C.ms(p50)} / {C.ms(p95)}",
                f"p95 ≤ {C.ms(GOAL_LIST_P95)}",
                p95 <= GOAL_LIST_P95,
            )
        )

    lists(
        "list_cases(states=…, limit=50)",
        [
            functools.partial(queries.list_cases, session, states=LIST_STATES[i % len(LIST_STATES)], limit=50)
            for i in range(n)
        ],
    )
    lists("list_cases(overdue=True)", [lambda: queries.list_cases(session, overdue=True) for _ in range(n)])
    lists(
        "list_cases(limit=50), no filter", [lambda: queries.list_cases(session, limit=50) for _ in range(n)]
    )
    return results


# -- 3. rebuild ------------------------------------------------------------------------


def bench_rebuild(session: Session, profile: str | None = None) -> list[Result]:
    store = session.store
    gc.collect()
    if profile == "fold":
        evs = list(store.events())
        run_profiled(functools.partial(fold_all, evs))
        return []
    if profile == "verify":
        run_profiled(lambda: verify_station(session))
        return []
    t = C.clock()
    events = list(store.events())
    load_s = C.clock() - t
    t = C.clock()
    folded = fold_all(events)
    fold_s = C.clock() - t
    n = len(events)
    eps = n / fold_s
    del events
    gc.collect()
    t = C.clock()
    report = verify_station(session)
    verify_s = C.clock() - t
    return [
        Result(
            f"read log: list(store.events()) ({n:,} events)",
            f"{C.secs(load_s)} ({n / load_s:,.0f} events/s)",
            "",
            None,
        ),
        Result(
            f"fold_all ({len(folded):,} cases)",
            f"{eps:,.0f} events/s ({C.secs(fold_s)})",
            f"≥ {GOAL_FOLD_EPS:,} events/s",
            eps >= GOAL_FOLD_EPS,
        ),
        Result(
            f"verify_station ({report.events:,} events, {report.cases:,} cases, ok={report.ok})",
            C.secs(verify_s),
            "",
            None,
        ),
    ]


# -- 4. unlock ---------------------------------------------------------------------------


def bench_unlock(demo: Path, n: int, profile: bool = False) -> list[Result]:
    results: list[Result] = []
    with scratch_dir("unlock-") as d:
        slots = KeySlots.create(d / "keyslots.json", new_id())
        key = bytearray(os.urandom(32))
        slots.add_user(
            user_id=new_id(),
            login="prod",
            name="生产参数",
            role=Role.AGENT,
            pin=PIN,
            data_key=key,
            params=PRODUCTION,
        )
        slots.unlock("prod", PIN)  # warm-up (first allocation of the 128 MiB)
        if profile:
            run_profiled(lambda: [slots.unlock("prod", PIN) for _ in range(n)])
            return []
        # Interleaved, so the unlock and the bare KDF see the same machine load.
        salt = os.urandom(16)
        times, cpu, kdf = [], [], []
        for _ in range(n):
            t, c = C.clock(), time.process_time()
            slots.unlock("prod", PIN)
            times.append(C.clock() - t)
            cpu.append(time.process_time() - c)
            t = C.clock()
            _derive(PIN, salt, PRODUCTION)
            kdf.append(C.clock() - t)
    med, mx = C.median(times), max(times)
    lo, hi = GOAL_UNLOCK
    p = PRODUCTION
    results += [
        Result(
            f"KeySlots.unlock, PRODUCTION Argon2id (t={p.iterations}, m={p.memory_kib // 1024} MiB, "
            f"p={p.lanes}): median (n={n})",
            C.ms(med),
            f"{lo}–{hi} s",
            lo <= med <= hi,
        ),
        Result(
            "KeySlots.unlock, PRODUCTION: min / max",
            f"{C.ms(min(times))} / {C.ms(mx)}",
            f"≤ {hi} s",
            mx <= hi,
        ),
        Result("  CPU time per unlock (both lanes; load-independent): median", C.ms(C.median(cpu)), "", None),
        Result("  Argon2id alone (interleaved): median", C.ms(C.median(kdf)), "", None),
    ]

    # Opening the (large) demo database once the key is known: open_database + migrate check.
    data = DataDir(demo)
    _, dkey = KeySlots.load(data.slots).unlock("admin", DEMO_PIN)

    def open_and_check():
        db = open_database(data.db, dkey)
        migrate(db)
        db.close()

    times = C.time_calls(open_and_check, n)
    cases = _count_cases(data, dkey)
    results.append(
        Result(
            f"open DB + migrate check after unlock ({cases:,}-case DB): median / max (n={n})",
            f"{C.ms(C.median(times))} / {C.ms(max(times))}",
            "",
            None,
        )
    )
    return results


def _count_cases(data: DataDir, key: bytearray) -> int:
    db = open_database(data.db, key)
    try:
        return db.execute_sql("SELECT count(*) FROM case_view").fetchone()[0]
    finally:
        db.close()


# -- main ----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.store", description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--cases", type=int, default=None, help="cases in the demo county (default 100000; quick 2000)"
    )
    ap.add_argument("--write-cases", type=int, default=None, help="cases registered+accepted (default 5000)")
    ap.add_argument("--batch", type=int, default=500, help="cases per store.writing() batch")
    ap.add_argument("--quick", action="store_true", help="small sizes, a smoke run")
    ap.add_argument("--write", action="store_true", help="update the Store section of BENCHMARKS.md")
    ap.add_argument("--profile", choices=["write", "search", "fold", "verify", "unlock"], default=None)
    args = ap.parse_args(argv)

    quick = args.quick
    cases = args.cases or (2_000 if quick else 100_000)
    k = args.write_cases or (500 if quick else 5_000)
    n_lat = 50 if quick else 300
    n_q = 50 if quick else 200
    n_unlock = 3 if quick else 7

    if args.profile == "write":
        bench_write(k, args.batch, n_lat, profile=True)
        return 0
    if args.profile == "unlock":
        bench_unlock(C.demo_dir(cases, log=log), n_unlock, profile=True)
        return 0

    load_start = C.loadavg()
    t0 = C.clock()
    demo = C.demo_dir(cases, log=log)
    if args.profile in ("search", "fold", "verify"):
        with unlock(demo, "admin", DEMO_PIN) as session:
            if args.profile == "search":
                bench_search(session, n_q, profile=True)
            else:
                bench_rebuild(session, profile=args.profile)
        return 0

    results: list[Result] = []
    log(f"1. write: {k} cases ...")
    results += bench_write(k, args.batch, n_lat)
    log(f"2. search on {cases} cases ...")
    with unlock(demo, "admin", DEMO_PIN) as session:
        results += bench_search(session, n_q)
        log("3. rebuild ...")
        results += bench_rebuild(session)
    log("4. unlock ...")
    results += bench_unlock(demo, n_unlock)
    took = C.clock() - t0
    load = f"load average (1 min) {load_start} at start, {C.loadavg()} at end"

    out = C.table(results)
    print(out)
    print(load)
    misses = [r.name for r in results if r.ok is False]
    print(
        f"\n{sum(r.ok is True for r in results)} PASS, {len(misses)} MISS; run took {took:.0f} s "
        f"(demo build not included if cached)"
    )
    if args.write:
        write_section(out, load, cases, k, args.batch)
        log(f"updated {C.BENCHMARKS_MD}")
    return 0


# A hand-written "### Analysis" part at the end of the section is kept across --write runs.
ANALYSIS = "### Analysis"


def write_section(table: str, load: str, cases: int, k: int, batch: int) -> None:
    cmd = C.command_line("bench.store")
    body = (
        f"Command: `{cmd}`  \n"
        f"Machine: {C.machine_line()}; {load} (other jobs may share the machine)  \n"
        f"Setup: STATION_KDF_COST=low for setup, STATION_NOW={C.STATION_NOW}; demo county {cases:,} cases "
        f"(`build_demo`, seed 1, cached in bench/out/); write test {k:,} cases in batches of {batch}.\n\n"
        f"{table}\n"
    )
    C.update_section("Store", body, keep_from=ANALYSIS)


if __name__ == "__main__":
    raise SystemExit(main())
