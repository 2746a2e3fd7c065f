"""Shared helpers for the benchmark scripts in ``bench/``.

Rules (team guide): targets are measured here, never asserted in unit tests;
figures are reported as ratios against a baseline measured in the same run
where a baseline makes sense; results go to BENCHMARKS.md with the command
that produced them.
"""

from __future__ import annotations

import cProfile
import datetime as _dt
import io
import json
import os
import platform
import pstats
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"  # git-ignored
BENCHMARKS_MD = ROOT / "BENCHMARKS.md"

# A fixed "now" (a Monday in 2026) so dates, due dates and case numbers are deterministic.
# Late in the day on purpose: build_demo plans cases "today" between 08:00 and ~22:00, and a
# case planned after "now" used to crash it; at 23:00 every planned case is in the past.
STATION_NOW = "2026-06-15T23:00:00+08:00"


def setup_env() -> None:
    """Cheap key slots for setup (unlock cost is measured separately) and a pinned clock."""
    os.environ["STATION_KDF_COST"] = "low"
    os.environ["STATION_NOW"] = STATION_NOW


# -- timing ---------------------------------------------------------------------


def clock() -> float:
    return time.perf_counter()


def time_calls(fn: Callable[[], object], n: int, *, warmup: int = 0) -> list[float]:
    """Seconds taken by each of ``n`` calls of ``fn`` (after ``warmup`` untimed calls)."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100)."""
    if not values:
        raise ValueError("no values")
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(-(-p * len(s) // 100)) - 1))  # ceil(p/100 * n) - 1
    return s[k]


def median(values: list[float]) -> float:
    return statistics.median(values)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms" if seconds < 0.1 else f"{seconds * 1000:.0f} ms"


def secs(seconds: float) -> str:
    return f"{seconds:.2f} s"


@dataclass
class Result:
    name: str
    value: str
    goal: str
    ok: bool | None  # None: informational, no goal

    @property
    def verdict(self) -> str:
        return "" if self.ok is None else ("PASS" if self.ok else "MISS")


def table(results: list[Result]) -> str:
    """A Markdown table (also readable on a terminal)."""
    rows = [("Measurement", "Result", "Goal", "")] + [(r.name, r.value, r.goal, r.verdict) for r in results]
    widths = [max(_width(row[i]) for row in rows) for i in range(4)]
    lines = []
    for j, row in enumerate(rows):
        lines.append("| " + " | ".join(_pad(c, widths[i]) for i, c in enumerate(row)) + " |")
        if j == 0:
            lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def _width(s: str) -> int:
    # CJK characters take two columns on a terminal.
    return sum(2 if ord(c) > 0x2E80 else 1 for c in s)


def _pad(s: str, w: int) -> str:
    return s + " " * (w - _width(s))


# -- machine ----------------------------------------------------------------------


def machine_info() -> dict[str, str]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        cores = subprocess.run(["nproc"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        cores = str(os.cpu_count())
    try:
        import sqlcipher3

        sqlite = sqlcipher3.sqlite_version
    except Exception:  # noqa: BLE001 - informational only
        sqlite = "?"
    return {
        "cpu": model,
        "cores": cores,
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
        "sqlite": sqlite,
        "date": _dt.date.today().isoformat(),
    }


def loadavg() -> str:
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "?"


def machine_line() -> str:
    m = machine_info()
    return (
        f"{m['cores']} cores ({m['cpu']}), Python {m['python']}, SQLCipher/SQLite {m['sqlite']}, "
        f"{m['os']}, measured {m['date']}"
    )


# -- the demo county, cached ---------------------------------------------------------


def demo_dir(cases: int, *, seed: int = 1, log: Callable[[str], None] = print) -> Path:
    """A demo county data dir with ``cases`` cases under bench/out/, built once and reused.

    The data dir is complete only once ``bench-complete.json`` is written, so an
    interrupted build is thrown away and rebuilt.
    """
    from station.services.demo import build_demo

    tag = re.sub(r"[^0-9]", "", STATION_NOW[:10])
    path = OUT / f"demo-{cases}-seed{seed}-{tag}"
    marker = path / "bench-complete.json"
    if marker.exists():
        return path
    if path.exists():
        shutil.rmtree(path)
    OUT.mkdir(parents=True, exist_ok=True)
    log(f"building demo county with {cases} cases in {path} (once; reused afterwards) ...")
    t = time.perf_counter()
    result = build_demo(path, cases=cases, seed=seed)
    took = time.perf_counter() - t
    marker.write_text(
        json.dumps(
            {
                "cases": result["cases"],
                "events": result["events"],
                "build_s": round(took, 1),
                "station_now": STATION_NOW,
                "seed": seed,
            },
            ensure_ascii=False,
        )
    )
    log(f"built in {took:.0f} s: {result['cases']} cases, {result['events']} events")
    return path


# -- BENCHMARKS.md ---------------------------------------------------------------------

INTRO = """# Benchmarks

Speed targets of the station software, measured by the scripts in `bench/`.
Each section is written by its script (`--write`) together with the exact
command and the machine it ran on. Machines are noisy: where a baseline makes
sense, results are given as a ratio against a baseline measured in the same
run. Figures are measured, never estimated; timing is never asserted in unit
tests.

| Section | Script | What it measures |
|---------|--------|------------------|
| Store | `bench/store.py` | event-store write throughput (vs raw SQLCipher inserts) and interactive registration latency; case search and list latency on a 100k-case county; rebuilding projections from the log and `station verify`; unlocking at production KDF cost |

"""


def update_section(
    title: str, body: str, path: Path = BENCHMARKS_MD, *, keep_from: str | None = None
) -> None:
    """Replace the ``## {title}`` section of BENCHMARKS.md (or append it), keeping the others.

    With ``keep_from`` (a heading such as ``### Analysis``), the old section's text from
    that heading on is hand-written and is carried over below the new body.
    """
    text = path.read_text(encoding="utf-8") if path.exists() else INTRO
    pattern = re.compile(rf"^## {re.escape(title)}[ \t]*\n.*?(?=^## |\Z)", re.S | re.M)
    old = pattern.search(text)
    kept = ""
    if old and keep_from:
        i = old.group(0).find("\n" + keep_from)
        if i >= 0:
            kept = old.group(0)[i:].strip()
    block = f"## {title}\n\n{body.strip()}\n" + (f"\n{kept}\n" if kept else "")
    if old:
        text = pattern.sub(lambda _m: block + "\n", text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + block
    path.write_text(text.rstrip("\n") + "\n", encoding="utf-8")


def command_line(module: str) -> str:
    args = " ".join(sys.argv[1:])
    return f".venv/bin/python -m {module} {args}".strip()


# -- small tools shared by the benchmark scripts ----------------------------------------


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@contextmanager
def scratch_dir(prefix: str):
    OUT.mkdir(parents=True, exist_ok=True)  # same disk as the data, not a tmpfs
    d = Path(tempfile.mkdtemp(prefix=prefix, dir=OUT))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def run_profiled(fn: Callable[[], object], top: int = 25) -> None:
    prof = cProfile.Profile()
    prof.enable()
    fn()
    prof.disable()
    for key in ("tottime", "cumulative"):
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).strip_dirs().sort_stats(key).print_stats(top)
        print(f"==== top {top} by {key} ====")
        print(buf.getvalue())
