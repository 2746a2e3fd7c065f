"""A slow, lossy link between two loopback endpoints: a TCP proxy (the kernel here has no netem).

Each direction of the link is modelled the way a village's 3G/ADSL line behaves for
TCP: data leaves at most at ``rate_bps`` (serialisation delay, shared by every
connection on the link), arrives ``rtt/2`` later, and a lost segment (probability
``loss`` per 1460-byte segment) is delivered only after a retransmission timeout,
holding back everything behind it (TCP delivers in order). Opening a connection costs
one round trip (the SYN/SYN-ACK exchange) before the first byte moves.

What it does not model: congestion-window growth (slow start) and the cwnd halving
after a loss. At 256 kbit/s and 300 ms the bandwidth-delay product is ~9.6 KB, about
7 segments, which the initial window of 10 segments already covers, so slow start
costs nothing here; the halving would add little on top of the RTO penalty modelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
import time
from dataclasses import dataclass, field

MSS = 1460
# Linux's minimum RTO is 200 ms; a lost segment is noticed after about one RTT more.
RTO_FLOOR = 0.2


@dataclass
class LinkSpec:
    rate_bps: float = 256_000
    rtt: float = 0.300
    loss: float = 0.01
    seed: int = 7

    def lower_bound(self, bytes_up: int, bytes_down: int, round_trips: int) -> float:
        """Time no protocol can beat: the bytes at the line rate plus the unavoidable round trips."""
        return (bytes_up + bytes_down) * 8 / self.rate_bps + round_trips * self.rtt


@dataclass
class _Direction:
    spec: LinkSpec
    rng: random.Random
    free_at: float = 0.0  # when the line finishes sending what is queued
    bytes: int = 0
    lost: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def schedule(self, n: int, now: float, not_before: float) -> float:
        """When a chunk of ``n`` bytes handed over at ``now`` arrives at the far end."""
        with self.lock:
            start = max(now, self.free_at)
            self.free_at = start + n * 8 / self.spec.rate_bps
            arrive = self.free_at + self.spec.rtt / 2
            if self.rng.random() < self.spec.loss:
                self.lost += 1
                arrive += self.spec.rtt + RTO_FLOOR
            self.bytes += n
            return max(arrive, not_before)


class LinkEmulator:
    """``with LinkEmulator(target_port, spec) as link: requests.get(f"http://127.0.0.1:{link.port}/")``."""

    def __init__(
        self, target_port: int, spec: LinkSpec | None = None, target_host: str = "127.0.0.1"
    ) -> None:
        self.spec = spec or LinkSpec()
        self.target = (target_host, target_port)
        rng = random.Random(self.spec.seed)
        self.up = _Direction(self.spec, random.Random(rng.random()))
        self.down = _Direction(self.spec, random.Random(rng.random()))
        self.connections = 0
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._server: asyncio.AbstractServer | None = None

    # -- lifecycle ----------------------------------------------------------------

    def __enter__(self) -> LinkEmulator:
        self._thread = threading.Thread(target=self._run, name="linkemu", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("link emulator did not start")
        return self

    def __exit__(self, *exc) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(5)

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(asyncio.start_server(self._accept, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            self._server.close()
            pending = asyncio.all_tasks(self._loop)
            for task in pending:
                task.cancel()
            self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self._loop.close()

    def reset_counters(self) -> None:
        for d in (self.up, self.down):
            d.bytes = d.lost = 0
        self.connections = 0

    # -- forwarding -----------------------------------------------------------------

    async def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        self.connections += 1
        opened = time.monotonic() + self.spec.rtt  # the handshake's round trip
        try:
            server_r, server_w = await asyncio.open_connection(*self.target)
        except OSError:
            client_w.close()
            return
        with contextlib.suppress(asyncio.CancelledError):  # shutdown: a cancelled handler is not an error
            await asyncio.gather(
                self._pipe(client_r, server_w, self.up, opened),
                self._pipe(server_r, client_w, self.down, opened),
                return_exceptions=True,
            )

    async def _pipe(
        self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, d: _Direction, opened: float
    ) -> None:
        queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()

        async def deliver() -> None:
            while (item := await queue.get()) is not None:
                at, chunk = item
                delay = at - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                dst.write(chunk)
                await dst.drain()
            with contextlib.suppress(OSError):
                dst.write_eof()

        writer = asyncio.create_task(deliver())
        last = opened
        try:
            while data := await src.read(64 * 1024):
                for i in range(0, len(data), MSS):
                    chunk = data[i : i + MSS]
                    last = d.schedule(len(chunk), max(time.monotonic(), opened), last)
                    queue.put_nowait((last, chunk))
        except (ConnectionError, OSError):
            pass
        finally:
            queue.put_nowait(None)
            with contextlib.suppress(BaseException):
                await writer
            with contextlib.suppress(Exception):
                dst.close()
