"""An attacker who signs whatever it likes with real keys — its own, or a station's it stole.

Builds the hostile inputs of issue #8 for the tests and for ``bench/attack_cost.py``: compressed
bombs, JSON nested thousands deep, envelopes with any header, forged and replayed requests. Nothing
here is a mock: envelopes are the real format (:mod:`sync.envelope`), sealed to the victim's real
public keys, which anyone in the county can learn (the station registry travels to every station).

It also measures what an attack cost the process that received it (peak resident memory, time),
from ``/proc`` and ``wait4`` — no psutil.
"""

from __future__ import annotations

import os
import subprocess
import threading
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


def raw_envelope(header: bytes, tail: bytes = bytes(200)) -> bytes:
    """An envelope whose header is whatever the attacker writes (e.g. nested 6,000 deep)."""
    return envelope.MAGIC + bytes([envelope.VERSION]) + len(header).to_bytes(4, "big") + header + tail


def compressed_size(payload: bytes) -> int:
    return len(zlib.compress(payload, 6))


# -- what it cost the victim ------------------------------------------------------------------------------


def vm_hwm_kb(pid: int) -> int:
    """Peak resident memory of a running process (``VmHWM`` in ``/proc/<pid>/status``), in KB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM")


@dataclass
class Run:
    rc: int
    out: str
    err: str
    peak_kb: int  # the child's peak resident memory (ru_maxrss)
    seconds: float


def run_measured(
    cmd: list[str], *, env: dict[str, str], cwd: Path | None = None, timeout: float = 600
) -> Run:
    """Run a command to its end; its exit code, output, peak resident memory and wall time."""
    start = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    chunks: dict[str, list[bytes]] = {"out": [], "err": []}

    def read(stream, key: str) -> None:
        chunks[key].append(stream.read())

    readers = [
        threading.Thread(target=read, args=(proc.stdout, "out"), daemon=True),
        threading.Thread(target=read, args=(proc.stderr, "err"), daemon=True),
    ]
    for r in readers:
        r.start()
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    finally:
        timer.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait again
    for r in readers:
        r.join(30)
    return Run(
        proc.returncode,
        b"".join(chunks["out"]).decode("utf-8", "replace"),
        b"".join(chunks["err"]).decode("utf-8", "replace"),
        usage.ru_maxrss,
        time.monotonic() - start,
    )
