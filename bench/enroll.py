"""What the enrollment code's stretch costs: the honest sides once, an offline guesser per guess.

* one Argon2id derivation of a code (``sync.enrollment.derive``, production parameters) against
  the baseline of one SHA-256 over the same code — what a guess cost against the old protocol's
  check value, which anyone who saw the request could compute;
* from the measured derivation time: the CPU time to try every code, and how many cores an
  offline guesser would need to have a 1 % chance of hitting a code within its longest life
  (90 days);
* one whole online enrollment against a real county center on loopback (station-side derivation
  and request, ``/v1/enroll`` with the county's checks and its answer, the station's checks).

    .venv/bin/python -m bench.enroll [--quick] [--write]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile

from bench import common as C

YEAR_S = 365.25 * 86400
LONGEST_CODE_LIFE_S = 90 * 86400


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="few repetitions (smoke test)")
    ap.add_argument("--write", action="store_true", help="write the results to BENCHMARKS.md")
    args = ap.parse_args()
    os.environ["COUNTY_KDF_COST"] = "low"  # the county's passphrase unlock is not what is measured

    import requests

    from schema.ids import new_id
    from sync import enrollment
    from sync.crypto import KeyPair
    from sync.server import registry
    from sync.server.app import BackgroundServer, create_app
    from sync.server.config import Settings
    from sync.server.db import connect
    from sync.server.keystore import init_county

    county_code, village = "330522000000", "330522101001"
    n = 5 if args.quick else 30
    load_start = C.loadavg()
    code = "K7QX-M2PD-9TRW"
    derivations = C.time_calls(lambda: enrollment.derive(code, county_code), n, warmup=1)
    derive = C.median(derivations)
    # The guesser's figures use the FASTEST derivation seen (least disturbed by other jobs on a
    # shared machine): the estimate errs in the guesser's favour.
    fastest = min(derivations)
    compact = enrollment.normalize_code(code).encode()
    sha = C.median(
        C.time_calls(lambda: hashlib.sha256(b"enroll|" + compact + b"|station").digest(), n * 100, warmup=10)
    )
    codes = len(enrollment.CODE_ALPHABET) ** enrollment.CODE_LENGTH
    all_codes_cpu_years = codes * fastest / YEAR_S
    cores_for_1_percent = codes * 0.01 * fastest / LONGEST_CODE_LIFE_S

    with tempfile.TemporaryDirectory(prefix="bench-enroll-") as tmp:
        cdb = connect(f"sqlite:///{tmp}/county.db")
        county = init_county(cdb, code=county_code, name="基准县", passphrase="bench-passphrase")
        big = dict(rate_burst=1e6, rate_per_second=1e6, anon_rate_burst=1e6, anon_rate_per_second=1e6)
        server = BackgroundServer(create_app(Settings(db_url=cdb.url, **big), cdb=cdb, county=county)).start()
        http = requests.Session()
        codes_issued = iter([registry.make_code(cdb, county, org=village, level="village") for _ in range(n)])

        def one_enrollment() -> None:
            issued = next(codes_issued)
            secret = enrollment.derive(issued, county_code)
            request = enrollment.make_request(
                KeyPair.generate(), secret, station=new_id(), org=village, name="基准村", at="2026-06-15"
            )
            r = http.post(server.url + "/v1/enroll", json=request, timeout=60)
            r.raise_for_status()
            enrollment.open_answer(r.json(), secret.key, request)

        whole = C.time_calls(one_enrollment, n)
        server.stop()
        cdb.close()

    results = [
        C.Result(
            "derive a code: Argon2id 19 MiB, 2 passes: median / fastest",
            f"{C.ms(derive)} / {C.ms(fastest)}",
            "",
            None,
        ),
        C.Result(
            "baseline: SHA-256 of the code, the old check value (median)", f"{sha * 1e6:.2f} µs", "", None
        ),
        C.Result(
            "cost of one offline guess: Argon2id (fastest) ÷ SHA-256", f"{fastest / sha:,.0f}×", "", None
        ),
        C.Result(
            f"every code (30^12 = {codes:.2e}) at the fastest derivation, one core",
            f"{all_codes_cpu_years:.1e} CPU-years",
            "",
            None,
        ),
        C.Result(
            "cores for a 1 % chance within 90 days (the longest code life)",
            f"{cores_for_1_percent:.1e}",
            "",
            None,
        ),
        C.Result(
            f"whole online enrollment on loopback: p50 / max (n={n})",
            f"{C.ms(C.median(whole))} / {C.ms(max(whole))}",
            "",
            None,
        ),
    ]
    text = C.table(results)
    print(text)
    if args.write:
        body = (
            f"Command: `{C.command_line('bench.enroll')}`  \n"
            f"Machine: {C.machine_line()}; load average (1 min) {load_start} at start, {C.loadavg()} at end  \n"
            "Setup: production enrollment KDF (`sync.enrollment.CODE_KDF`); the county center in-process on "
            "127.0.0.1 (SQLite), a fresh code per enrollment; the guessing figures are computed from the "
            "fastest measured derivation (in the guesser's favour; Argon2id is memory-hard, so GPUs gain far "
            "less than for SHA-256).\n\n" + text
        )
        C.update_section("Enrollment", body)


if __name__ == "__main__":
    main()
