"""Sync over a village's link: a day's upload, a sync with nothing new, and the OpenRosa way.

    .venv/bin/python -m bench.sync [--cases 40] [--quick] [--write]

(County ingest throughput and the township pull cost are ``bench/sync_ingest.py``.)

A real ``county-center serve`` process on loopback, a real enrolled village station, and
between them :mod:`bench.linkemu`: 256 kbit/s each way, 300 ms round trip, 1 % of
1460-byte segments lost (each loss delays delivery by RTT + 200 ms).

1. A village's day: 40 cases, each registered, told what is missing (一次性告知),
   supplemented twice, accepted, its ID number viewed (an audited event) and forwarded —
   280 events — then ``station sync``. Time as a ratio of the bandwidth-delay lower bound:
   the bytes that crossed the link at line rate plus two round trips (TCP's handshake and
   one request/answer), which no protocol over TCP can beat. Bytes per event: everything
   the station sent (HTTP headers included) divided by the events uploaded.
2. The same day uploaded one record per HTTP request, as OpenRosa clients (ODK Collect)
   submit forms: a ``HEAD`` then a multipart ``POST`` of the record as JSON, on a
   keep-alive connection (kinder to the baseline than a new connection per form), to a
   minimal HTTP server that stores each record durably.
3. A sync with nothing new: round trips and bytes on the wire.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from bench import common as C
from bench.common import Result, log, scratch_dir
from bench.linkemu import LinkEmulator, LinkSpec

os.environ["COUNTY_KDF_COST"] = "low"

import requests  # noqa: E402

from bench.sync_ingest import PASSPHRASE, Serve  # noqa: E402
from schema.org import Role  # noqa: E402
from station.replication import enroll, runner  # noqa: E402
from station.services import cases  # noqa: E402
from station.session import init_station  # noqa: E402
from sync.client import Client  # noqa: E402

VILLAGE = "330522101001"
PIN = "135790"
PENSION = "11000000210000000X4002021001001"
GOAL_BOUND_RATIO = 1.5
GOAL_SPEEDUP = 10
GOAL_BYTES_PER_EVENT = 250
GOAL_NOOP_BYTES = 2048


def id_number(i: int) -> str:
    from schema.validation import id_check_char

    first17 = f"330522{19500101 + (i % 28):08d}{i % 1000:03d}"
    return first17 + id_check_char(first17)


def county_center(d: Path) -> tuple[Serve, str]:
    env = dict(os.environ, COUNTY_PASSPHRASE=PASSPHRASE, COUNTY_KDF_COST="low")
    db = f"sqlite:///{d / 'county.db'}"
    cli = [sys.executable, "-m", "sync.server.cli", "--db", db]
    subprocess.run(
        [*cli, "init", "--code", "330522000000", "--name", "基准县"], env=env, check=True, capture_output=True
    )
    out = subprocess.run(
        [*cli, "--json", "enroll", "--org", VILLAGE, "--role", "village"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    code = json.loads(out)["code"]
    return Serve(db, d / "serve.log"), code


def village_day(session, n_cases: int) -> int:
    """What a busy village room records in a day; returns the number of events."""
    before = session.store.head()[0]
    from tests.helpers import material_names  # the catalog's material names for the item

    names = material_names(PENSION)
    for i in range(n_cases):
        view = cases.register(
            session,
            item_code=PENSION,
            name=f"张{'一二三四五六七八九十'[i % 10]}山",
            id_number=id_number(i),
            phone="13800138000",
            received=names[:1],
        )
        cases.act(session, view.case_id, "notify-missing")
        cases.act(session, view.case_id, "supplement", {"materials": names[1:2]})
        cases.act(session, view.case_id, "supplement", {"materials": names[2:]})
        cases.act(session, view.case_id, "accept")
        cases.reveal_id_number(session, view.case_id)
        cases.act(session, view.case_id, "forward", {"opinion": "材料齐全，同意转报"})
    return session.store.head()[0] - before


# -- the OpenRosa-style baseline server ---------------------------------------------------------------------


class OpenRosaServer:
    """``HEAD /submission`` → 204; ``POST /submission`` (multipart) → 201, one fsynced row per record."""

    def __init__(self, d: Path) -> None:
        db = sqlite3.connect(d / "openrosa.db", check_same_thread=False)
        db.execute("PRAGMA journal_mode=wal")
        db.execute("PRAGMA synchronous=full")
        db.execute("CREATE TABLE submission (id INTEGER PRIMARY KEY, body BLOB)")
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_HEAD(self):  # noqa: N802 - http.server's naming
                self.send_response(204)
                self.send_header("X-OpenRosa-Version", "1.0")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with lock:
                    db.execute("INSERT INTO submission (body) VALUES (?)", (body,))
                    db.commit()
                reply = b"<OpenRosaResponse><message>ok</message></OpenRosaResponse>"
                self.send_response(201)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *a):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.db = db

    def stop(self) -> None:
        self.httpd.shutdown()
        self.db.close()


def openrosa_upload(url: str, events: list[dict]) -> None:
    with requests.Session() as http:
        for ev in events:
            http.head(url, timeout=60).raise_for_status()
            files = {
                "xml_submission_file": (
                    "submission.json",
                    json.dumps(ev, ensure_ascii=False),
                    "application/json",
                )
            }
            http.post(url, files=files, timeout=60).raise_for_status()


# -- main ---------------------------------------------------------------------------------------------------------


def run(n_cases: int, spec: LinkSpec, openrosa_records: int | None) -> list[Result]:
    results: list[Result] = []
    with scratch_dir("sync-link-") as d:
        serve, code = county_center(d)
        try:
            s = init_station(
                d / "village", org=VILLAGE, name="东村便民服务室", login="agent1", role=Role.AGENT, pin=PIN
            )
            enroll.enroll_online(s, serve.url, code)
            runner.sync_now(s, client=Client(serve.url))  # first contact (registry, users) off the clock
            n = village_day(s, n_cases)
            events = [
                e.to_dict() for e in s.store.events(s.config.station_id, after_seq=s.store.head()[0] - n)
            ]
            port = int(serve.url.rsplit(":", 1)[1])

            with LinkEmulator(port, spec) as link:
                url = f"http://127.0.0.1:{link.port}"
                client = Client(url)
                t = C.clock()
                report = runner.sync_now(s, client=client)
                took = C.clock() - t
                client.close()
                assert report.outcome == "ok" and report.pushed == n, report
                up, down, trips = link.up.bytes, link.down.bytes, client.requests
                bound = spec.lower_bound(up, down, round_trips=2)
                results += [
                    Result(f"a village's day: {n_cases} cases, {n} events, one sync", C.secs(took), "", None),
                    Result(
                        f"  lower bound: bytes at {spec.rate_bps / 1000:.0f} kbit/s + 2 RTT",
                        C.secs(bound),
                        "",
                        None,
                    ),
                    Result(
                        "  time ÷ lower bound",
                        f"{took / bound:.2f}",
                        f"≤ {GOAL_BOUND_RATIO}",
                        took / bound <= GOAL_BOUND_RATIO,
                    ),
                    Result(
                        "  bytes sent per event (HTTP included)",
                        f"{up / n:.0f} B ({up:,} B up, {down:,} B down, "
                        f"{trips} requests, {link.up.lost + link.down.lost} segments lost)",
                        f"≤ {GOAL_BYTES_PER_EVENT} B",
                        up / n <= GOAL_BYTES_PER_EVENT,
                    ),
                ]

                link.reset_counters()
                client = Client(url)
                t = C.clock()
                report = runner.sync_now(s, client=client)
                noop = C.clock() - t
                client.close()
                wire = link.up.bytes + link.down.bytes
                results.append(
                    Result(
                        "a sync with nothing new",
                        f"{client.requests} round trip(s), {wire:,} B, {C.secs(noop)}",
                        f"1 round trip, < {GOAL_NOOP_BYTES:,} B",
                        client.requests == 1 and wire < GOAL_NOOP_BYTES,
                    )
                )

            orr = OpenRosaServer(d)
            try:
                sample = events[:openrosa_records] if openrosa_records else events
                with LinkEmulator(orr.port, spec) as link:
                    t = C.clock()
                    openrosa_upload(f"http://127.0.0.1:{link.port}/submission", sample)
                    per_record = (C.clock() - t) / len(sample)
                openrosa = per_record * n
                measured = (
                    ""
                    if len(sample) == n
                    else f" (measured on {len(sample)} records, ×{n / len(sample):.1f})"
                )
                results += [
                    Result(
                        f"  baseline: one record per HTTP request (OpenRosa), {n} events",
                        C.secs(openrosa) + measured,
                        "",
                        None,
                    ),
                    Result(
                        "  speed-up over one record per request",
                        f"{openrosa / took:.1f}×",
                        f"≥ {GOAL_SPEEDUP}×",
                        openrosa / took >= GOAL_SPEEDUP,
                    ),
                ]
            finally:
                orr.stop()
            s.close()
        finally:
            serve.stop()
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.sync", description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--cases", type=int, default=None, help="cases in the village's day (default 40; quick 4)"
    )
    ap.add_argument("--quick", action="store_true", help="small sizes, a fast link: a smoke run")
    ap.add_argument("--write", action="store_true", help="update the section of BENCHMARKS.md")
    args = ap.parse_args(argv)
    C.setup_env()
    n_cases = args.cases or (4 if args.quick else 40)
    spec = LinkSpec(rate_bps=2_000_000, rtt=0.02, loss=0.01) if args.quick else LinkSpec()
    t0, load_start = C.clock(), C.loadavg()
    log(
        f"village day of {n_cases} cases over {spec.rate_bps / 1000:.0f} kbit/s, {spec.rtt * 1000:.0f} ms RTT, "
        f"{spec.loss:.0%} loss ..."
    )
    results = run(n_cases, spec, openrosa_records=None)
    took = C.clock() - t0
    out = C.table(results)
    print(out)
    load = f"load average (1 min) {load_start} at start, {C.loadavg()} at end"
    print(load)
    misses = [r.name for r in results if r.ok is False]
    print(f"\n{sum(r.ok is True for r in results)} PASS, {len(misses)} MISS; run took {took:.0f} s")
    if args.write:
        body = (
            f"Command: `{C.command_line('bench.sync')}`  \nMachine: {C.machine_line()}; {load}  \n"
            f"Link: {spec.rate_bps / 1000:.0f} kbit/s each way, {spec.rtt * 1000:.0f} ms RTT, {spec.loss:.0%} of "
            "1460-byte segments lost (`bench/linkemu.py`), `county-center serve` on SQLite behind it.\n\n"
            + out
        )
        C.update_section("Sync: a village's link", body, keep_from="### Analysis")
    return 0


if __name__ == "__main__":
    sys.exit(main())
