"""Limits on what a client may send: request size, segment size, request rate.

- Request bodies: a ``Content-Length`` far over the limit is refused before a byte of the
  body is read; a body somewhat over it (or a chunked one) is read and dropped, never kept,
  and refused once complete or once far over the limit (see :func:`read_body`).
- Segments: at most :data:`sync.messages.MAX_SEGMENT_EVENTS` events per segment (checked
  in :func:`sync.messages.segment_header`), at most ``max_segments_per_push`` per push.
- Rate: a token bucket per (claimed sender, remote address) — keyed by the address too, so
  that nobody can exhaust a station's allowance by naming it — and one per address for
  requests that name no known sender. A refusal is ``rate`` (429) with ``Retry-After``.
- What a body may expand to once read: :mod:`sync.server.sealed` (sender's signature first,
  then decompression capped at the request limit) and :mod:`sync.bounded` (JSON nesting and
  density, checked before parsing).
"""

from __future__ import annotations

import math
import threading
import time

from sync.errors import ProtocolError, malformed


class RateLimiter:
    """Token buckets: ``rate`` tokens a second up to ``burst``; one token per request."""

    MAX_KEYS = 100_000

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = float(rate)
        self.burst = float(burst)
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def wait_time(self, key: str, now: float | None = None) -> float:
        """0 if the request may go ahead (and take a token), else seconds until it may."""
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, last = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens >= 1:
                self._buckets[key] = (tokens - 1, now)
                wait = 0.0
            else:
                self._buckets[key] = (tokens, now)
                wait = (1 - tokens) / self.rate if self.rate > 0 else 3600.0
            if len(self._buckets) > self.MAX_KEYS:  # forget idle buckets (they would be full again)
                idle = [
                    k for k, (_, t) in self._buckets.items() if now - t > self.burst / max(self.rate, 1e-9)
                ]
                for k in idle:
                    del self._buckets[k]
        return wait

    def check(self, key: str) -> None:
        wait = self.wait_time(key)
        if wait > 0:
            seconds = max(1, math.ceil(wait))
            raise ProtocolError("rate", f"请求过于频繁，请{seconds}秒后再试", retry_after=seconds)


DRAIN_FACTOR = 4


async def read_body(request, max_bytes: int) -> bytes:
    """The request body, refused as ``too_large`` past ``max_bytes``.

    A declared ``Content-Length`` far over the limit (more than ``DRAIN_FACTOR`` × the limit) is
    refused before a byte of the body is read. A body somewhat over the limit is read to its end
    and dropped before the refusal: closing a connection with unread data makes the kernel send
    a reset, and an ordinary client would then lose the 413 answer it should read.
    """
    declared = request.headers.get("content-length")
    n = None
    if declared is not None:
        try:
            n = int(declared)
        except ValueError:
            raise malformed("Content-Length 无效") from None
        if n < 0:
            raise malformed("Content-Length 无效")
        if n > max_bytes * DRAIN_FACTOR:
            raise too_large(n, max_bytes)
    buf, size = bytearray(), 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes * DRAIN_FACTOR:
            raise too_large(size, max_bytes)
        if size <= max_bytes:
            buf += chunk
    if size > max_bytes:
        raise too_large(size, max_bytes)
    return bytes(buf)


def too_large(n: int, limit: int) -> ProtocolError:
    return ProtocolError("too_large", f"请求过大（{_mb(n)}，上限{_mb(limit)}），请分批上传", limit=limit)


def _mb(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MB" if n >= 1024 * 1024 else f"{max(1, n // 1024)} KB"
