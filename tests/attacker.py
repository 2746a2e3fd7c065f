"""An attacker who signs whatever it likes with real keys — its own, or a station's it stole.

Builds the hostile inputs of issue #8 for the tests and for ``bench/attack_cost.py``: compressed
bombs, JSON nested thousands deep, envelopes with any header, forged and replayed requests. Nothing
here is a mock: envelopes are the real format (:mod:`sync.envelope`), sealed to the victim's real
public keys, which anyone in the county can learn (the station registry travels to every station).

It also measures what an attack cost the process that received it (peak resident memory, time),
from ``/proc`` — no psutil.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

from schema import canonical
from sync import envelope
from sync.crypto import KeyPair

# -- what it sends ---------------------------------------------------------------------------------------


def bomb(compressed_kb: int, *, wrapper: str = "push", sender: str = "x") -> bytes:
    """A JSON payload of ``[[],[],…]`` whose zlib size is about ``compressed_kb`` KB: it inflates ~1000×
    and, parsed, each 3-byte ``[],`` becomes a ~64-byte list. ``wrapper`` puts the lists where a
    ``push`` or ``bundle`` payload keeps its segments (so a naive receiver walks every one)."""
    n = compressed_kb * 1024 * 1050  # zlib compresses this text ~1050:1
    lists = b"[" + b"[]," * (n // 3) + b"[]]"
    head = canonical.encode({"t": wrapper, "v": 1, "from": sender})[:-1] + b',"segments":'
    return head + lists + b"}"


def deep(n: int) -> str:
    """JSON text nested ``n`` deep."""
    return "[" * n + "]" * n


def seal(
    payload: bytes, *, kind: str, sender: str, to: list[bytes], key: KeyPair, at_ms: int | None = None
) -> bytes:
    """A real sealed envelope claiming to come from ``sender``, signed with ``key`` (anyone's)."""
    return envelope.seal(payload, kind=kind, sender=sender, recipients=to, signer=key, at_ms=at_ms)


def raw_envelope(header: bytes, tail: bytes = bytes(200), *, version: int = envelope.VERSION) -> bytes:
    """An envelope whose header is whatever the attacker writes (e.g. nested 6,000 deep)."""
    return envelope.MAGIC + bytes([version]) + len(header).to_bytes(4, "big") + header + tail


def compressed_size(payload: bytes) -> int:
    return len(zlib.compress(payload, 6))


# -- what it cost the victim ------------------------------------------------------------------------------


def memory_kb(pid: int, field: str = "VmHWM") -> int:
    """A running process's memory from ``/proc/<pid>/status``, in KB: ``VmHWM`` (its peak resident
    memory so far) or ``VmRSS`` (now)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field}")


@dataclass
class Run:
    rc: int
    out: str
    err: str
    peak_kb: int  # the process's peak resident memory (VmHWM at its exit)
    seconds: float


# Runs a module as ``python -m`` would and, at exit, writes the process's own VmHWM to a file. (The
# ``ru_maxrss`` that wait4 reports is no good here: a child forked from a big test process is
# charged with its parent's memory from before its exec.)
_LAUNCHER = """
import atexit, runpy, sys
out, module = sys.argv[1], sys.argv[2]
def _peak():
    with open("/proc/self/status") as f:
        hwm = next(line.split()[1] for line in f if line.startswith("VmHWM:"))
    with open(out, "w") as f:
        f.write(hwm)
atexit.register(_peak)
sys.argv = [module, *sys.argv[3:]]
runpy.run_module(module, run_name="__main__", alter_sys=True)
"""


def run_module(module: str, *args: str, env: dict[str, str], cwd: Path, timeout: float = 600) -> Run:
    """``python -m module args`` to its end: exit code, output, peak resident memory, wall time."""
    peak_file = cwd / f".peak-{os.getpid()}-{time.monotonic_ns()}"
    start = time.monotonic()
    try:
        done = subprocess.run(
            [sys.executable, "-c", _LAUNCHER, str(peak_file), module, *args],
            env=env,
            cwd=cwd,
            capture_output=True,
            timeout=timeout,
        )
        seconds = time.monotonic() - start
        peak = int(peak_file.read_text())
    finally:
        peak_file.unlink(missing_ok=True)
    return Run(
        done.returncode,
        done.stdout.decode("utf-8", "replace"),
        done.stderr.decode("utf-8", "replace"),
        peak,
        seconds,
    )
