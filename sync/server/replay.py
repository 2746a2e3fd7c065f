"""Replayed requests: every signed request carries its time and a random nonce (in the sealed
envelope's header, under the sender's signature); the county refuses one

- whose time is more than the window (15 minutes) from county time — ``skew``, with the county's
  time in the answer (``county_ms``) so the station corrects its clock offset and retries at once;
- whose nonce it has seen from that station within the window — ``replay``.

The nonces live in the county database (``request_nonce``), so this holds with several worker
processes; rows older than twice the window are deleted now and then (a request that old is
refused for its time anyway). A refused request changes nothing else: no ``last_seen``, no cursor.
"""

from __future__ import annotations

import re
import threading
import time

from peewee import IntegrityError

from sync.errors import ProtocolError, malformed
from sync.server.config import now_iso, now_ms
from sync.server.db import CountyDB

NONCE_RE = re.compile(r"[0-9a-f]{32}")
PURGE_EVERY_S = 60.0

_purge_lock = threading.Lock()
_last_purge = 0.0


def check_fresh(cdb: CountyDB, station: str, at: int, nonce: str, *, window_ms: int) -> None:
    """Refuse a request outside the window or seen before; else remember its nonce."""
    now = now_ms()
    if abs(at - now) > window_ms:
        minutes = abs(at - now) // 60_000
        raise ProtocolError(
            "skew",
            f"请求的时间与县中心相差约{minutes}分钟（允许{window_ms // 60_000}分钟），已拒收。"
            f"县中心时间为 {now_iso(now)}；请校正本机日期和时间",
            county_ms=now,
        )
    if not NONCE_RE.fullmatch(nonce):
        raise malformed("请求的随机数（nonce）格式不对")
    N = cdb.m.Nonce
    try:
        with cdb.write():
            N.insert(station=station, nonce=nonce, at=at).execute()
            if _purge_due():
                N.delete().where(N.at < now - 2 * window_ms).execute()
    except IntegrityError:
        raise ProtocolError("replay", "这个请求县中心已经收到过（重放的请求），已拒收") from None


def _purge_due() -> bool:
    global _last_purge
    with _purge_lock:
        if time.monotonic() - _last_purge < PURGE_EVERY_S:
            return False
        _last_purge = time.monotonic()
        return True
