"""What issue #8's attacks cost their victim: peak memory, time, answer — this tree against a baseline.

    .venv/bin/python -m bench.attack_cost [--baseline main] [--write]

Each attack goes to a fresh process of the code under test, so that its peak resident memory
(``VmHWM`` of a ``county-center serve`` process read from ``/proc``; ``ru_maxrss`` of a
``station bundle import`` process, at its exit) is the attack's alone:

1. county, ``/v1/push``: compressed bombs of 32 KB and 96 KB (``[[],[],…]``, inflating ~1000×) that
   name an enrolled station but are signed by the attacker's own key (the baseline format had no
   envelope signature: anyone with the county's public key could make one);
2. county: ``/v1/enroll`` with ``{"h": "[[[…5000…]]]"}`` and ``/v1/push`` with a header nested 6,000
   deep (12 KB);
3. township, ``station bundle import``: the 8 KB USB file (a bundle of ~2.8 million junk segments
   from a village the township does not know) and the 12 KB file (a header nested 6,000 deep),
   each alone in a folder.

``--baseline REV`` also runs everything against ``git archive REV`` in the same run (attacks in
that tree's envelope format: version 1 had no signature, so the bombs there are unsigned).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tarfile
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

from bench import common as C
from bench.common import log, scratch_dir

os.environ["COUNTY_KDF_COST"] = "low"
os.environ["STATION_KDF_COST"] = "low"
os.environ.pop("STATION_NOW", None)

import requests  # noqa: E402
from cryptography.hazmat.primitives import hpke  # noqa: E402
from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: E402

from schema import canonical  # noqa: E402
from schema.org import OrgCode, Role  # noqa: E402
from sync import api, enrollment  # noqa: E402
from sync.crypto import KeyPair, PublicKeys, b64, key_id, x25519_public_key  # noqa: E402
from sync.messages import doc_header  # noqa: E402
from tests.attacker import bomb, deep, memory_kb, raw_envelope, run_module, seal  # noqa: E402

COUNTY = "330522000000"
TOWN = "330522101000"
VILLAGE = "330522101001"
PASSPHRASE = "bench-passphrase-2026"
PIN = "Xiang-2026"
OCTET = {"Content-Type": api.OCTET}


@dataclass
class Tree:
    label: str
    path: Path
    envelope_version: int

    def env(self, **extra: str) -> dict[str, str]:
        return dict(os.environ, PYTHONPATH=str(self.path), COUNTY_PASSPHRASE=PASSPHRASE, **extra)

    def run(self, *args: str, cwd: Path) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, *args], env=self.env(), cwd=cwd, capture_output=True, text=True
        )


def tree_of(label: str, path: Path) -> Tree:
    out = subprocess.run(
        [sys.executable, "-c", "from sync import envelope; print(envelope.VERSION)"],
        env=dict(os.environ, PYTHONPATH=str(path)),
        cwd=path,
        capture_output=True,
        text=True,
        check=True,
    )
    return Tree(label, path, int(out.stdout))


def checkout(rev: str, into: Path) -> Path:
    """``git archive rev`` unpacked into ``into`` (the repository is only read)."""
    into.mkdir(parents=True)
    archive = into / "src.tar"
    subprocess.run(["git", "archive", "-o", str(archive), rev], cwd=C.ROOT, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into / "src", filter="data")
    return into / "src"


# -- envelopes in either format ---------------------------------------------------------------------------


def sealed(tree: Tree, payload: bytes, *, kind: str, sender: str, to: bytes, key: KeyPair) -> bytes:
    """The attacker's envelope in the format ``tree`` speaks (format 1 had no sender signature)."""
    if tree.envelope_version != 1:
        return seal(payload, kind=kind, sender=sender, to=[to], key=key)
    suite = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)
    cek = AESGCM.generate_key(bit_length=256)
    enc = suite.encrypt(cek, x25519_public_key(to), info=b"cvsync/1|" + kind.encode())
    header = canonical.encode(
        {"v": 1, "type": kind, "from": sender, "comp": "zlib", "to": [{"kid": key_id(to), "enc": b64(enc)}]}
    )
    nonce = os.urandom(12)
    body = AESGCM(cek).encrypt(nonce, zlib.compress(payload, 6), header)
    return b"CVSYNC" + bytes([1]) + len(header).to_bytes(4, "big") + header + nonce + body


# -- the county ---------------------------------------------------------------------------------------------


class County:
    """A county initialised by ``tree``'s own ``county-center init``, with one enrolled village."""

    def __init__(self, tree: Tree, d: Path) -> None:
        self.tree, self.dir = tree, d
        d.mkdir(parents=True)
        self.db = f"sqlite:///{d / 'county.db'}"
        r = tree.run(
            "-m", "sync.server.cli", "init", "--code", COUNTY, "--name", "测试县", "--db", self.db, cwd=d
        )
        assert r.returncode == 0, r.stderr
        self.victim = KeyPair.generate()
        self.victim_id = "0190a0a0-0000-7000-8000-00000000v001"
        with self.serve() as srv:
            doc = self.enroll(srv.url, self.victim, self.victim_id, VILLAGE, "village")
        self.enc = PublicKeys.from_dict(doc["county"]).enc

    def code(self, org: str, level: str) -> str:
        r = self.tree.run(
            "-m",
            "sync.server.cli",
            "enroll",
            "--org",
            org,
            "--role",
            level,
            "--json",
            "--db",
            self.db,
            cwd=self.dir,
        )
        return json.loads(r.stdout)["code"]

    def enroll(self, url: str, key: KeyPair, station: str, org: str, level: str) -> dict:
        secret = enrollment.derive(self.code(org, level), OrgCode(org).county)
        req = enrollment.make_request(key, secret, station=station, org=org, name=org, at="2026-03-02")
        r = requests.post(url + "/v1/enroll", json=req, timeout=60)
        assert r.status_code == 200, r.text
        return doc_header(r.json(), "enrolled")

    def serve(self) -> Server:
        return Server(self)


class Server:
    def __init__(self, county: County) -> None:
        cmd = [sys.executable, "-m", "sync.server.cli", "serve", "--port", "0", "--db", county.db]
        self.proc = subprocess.Popen(
            cmd, env=county.tree.env(), cwd=county.dir, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
        line = self.proc.stdout.readline().decode("utf-8", "replace")
        m = re.search(r"http://127\.0\.0\.1:\d+", line)
        if not m:
            self.proc.kill()
            raise RuntimeError(f"county-center serve did not start: {line!r}")
        self.url = m.group(0)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.kill()
        self.proc.wait(30)
        self.proc.stdout.close()


def county_attacks(county: County) -> list[tuple[str, str, str]]:
    """(attack, answer and seconds, peak memory growth / memory still held) per attack, each on a fresh server."""
    tree, victim, attacker = county.tree, county.victim_id, KeyPair.generate()

    def push_bomb(kb: int, key: KeyPair) -> tuple[str, bytes]:
        blob = sealed(tree, bomb(kb, sender=victim), kind="push", sender=victim, to=county.enc, key=key)
        return "/v1/push", blob

    attacks = {
        "32 KB push bomb naming a station": push_bomb(32, attacker),
        "96 KB push bomb naming a station": push_bomb(96, attacker),
        "96 KB push bomb signed with that station's stolen key": push_bomb(96, county.victim),
        "/v1/enroll {h: 5,000-deep}": ("/v1/enroll", json.dumps({"h": deep(5000), "s": "AAAA"}).encode()),
        "/v1/push, header 6,000 deep": (
            "/v1/push",
            raw_envelope(deep(6000).encode(), version=tree.envelope_version),
        ),
    }
    out = []
    for name, (path, body) in attacks.items():
        with county.serve() as srv:
            idle = memory_kb(srv.proc.pid)
            ctype = {"Content-Type": "application/json"} if path == "/v1/enroll" else OCTET
            t = time.perf_counter()
            r = requests.post(srv.url + path, data=body, headers=ctype, timeout=600)
            took = time.perf_counter() - t
            time.sleep(1)
            peak, held = memory_kb(srv.proc.pid), memory_kb(srv.proc.pid, "VmRSS")
        code = _code(r)
        out.append(
            (
                f"{name} ({len(body) // 1024} KB sent)",
                f"{r.status_code} {code}, {C.secs(took)}",
                f"+{(peak - idle) // 1024} MB peak (idle {idle // 1024} MB), {held // 1024} MB held 1 s later",
            )
        )
    return out


def _code(r: requests.Response) -> str:
    try:
        return str(r.json().get("error", ""))
    except ValueError:
        return ""


# -- the township ------------------------------------------------------------------------------------------


def township_attacks(county: County, d: Path) -> list[tuple[str, str, str]]:
    """The 8 KB and 12 KB USB files at a real township, each alone in a folder."""
    from station.replication import enroll as enrolling
    from station.replication import identity as I
    from station.session import init_station

    data = d / "township"
    with county.serve() as srv:
        s = init_station(data, org=TOWN, name="城关镇", login="clerk1", role=Role.CLERK, pin=PIN)
        enrolling.enroll_online(s, srv.url, county.code(TOWN, "township"))
        town_enc = I.keypair(s).public.enc
        s.close()
    ghost, attacker = "0190a0a0-0000-7000-8000-0000000ghost", KeyPair.generate()
    files = {
        "an empty folder (the program alone)": None,
        "8 KB USB file: junk segments from an unknown village": sealed(
            county.tree,
            bomb(8, wrapper="bundle", sender=ghost),
            kind="bundle",
            sender=ghost,
            to=town_enc,
            key=attacker,
        ),
        "12 KB USB file: header 6,000 deep": raw_envelope(
            deep(6000).encode(), version=county.tree.envelope_version
        ),
    }
    out = []
    for i, (name, blob) in enumerate(files.items()):
        usb = d / f"usb{i}"
        usb.mkdir()
        if blob is not None:
            (usb / "a.cvs").write_bytes(blob)
        args = ("--data-dir", str(data), "--user", "clerk1", "bundle", "import", str(usb))
        run = run_module("station.cli.main", *args, env=county.tree.env(STATION_PIN=PIN), cwd=d)
        lines = run.out.count("\n")
        out.append(
            (
                name if blob is None else f"{name} ({len(blob) // 1024} KB)",
                f"exit {run.rc}, {lines:,} lines printed, {C.secs(run.seconds)}",
                f"{run.peak_kb // 1024} MB peak (whole process)",
            )
        )
    return out


# -- main --------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.attack_cost", description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--baseline", default=None, metavar="REV", help="also measure this git revision (e.g. main)"
    )
    ap.add_argument("--write", action="store_true", help="update the section of BENCHMARKS.md")
    args = ap.parse_args(argv)
    load_start = C.loadavg()
    rows: list[tuple[str, str, str]] = []
    with scratch_dir("attack-") as d:
        trees = [tree_of("this tree", C.ROOT)]
        if args.baseline:
            trees.insert(0, tree_of(f"baseline {args.baseline}", checkout(args.baseline, d / "baseline")))
        for tree in trees:
            log(f"{tree.label} (envelope format {tree.envelope_version}) ...")
            county = County(tree, d / f"county-{len(rows)}")
            measured = county_attacks(county) + township_attacks(county, d / f"town-{len(rows)}")
            rows += [(f"{tree.label}: {name}", answer, cost) for name, answer, cost in measured]
    load = f"load average (1 min) {load_start} at start, {C.loadavg()} at end"
    out = "\n".join(
        ["| Attack | Answer, time | Memory |", "|---|---|---|", *(f"| {a} | {b} | {c} |" for a, b, c in rows)]
    )
    print(out)
    print(load)
    if args.write:
        body = (
            f"Command: `{C.command_line('bench.attack_cost')}`  \n"
            f"Machine: {C.machine_line()}; {load} (other jobs may share the machine)  \n"
            "Setup: each attack against a fresh `county-center serve` process (SQLite) or a fresh "
            "`station bundle import` process of the tree measured, its peak resident memory read from "
            "`/proc/<pid>/status` (VmHWM: growth over the idle server; for the station, the whole "
            "process's, of which ~100 MB is the program itself). The baseline is the same "
            "attacks in the baseline's envelope format (version 1: unsigned).\n\n"
            f"{out}\n"
        )
        C.update_section("Attack cost", body, keep_from="### Analysis")
        log(f"updated {C.BENCHMARKS_MD}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
