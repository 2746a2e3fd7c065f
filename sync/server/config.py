"""Settings of a county center process, and the county's time."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sync import api

CST = timezone(timedelta(hours=8), "CST")
DEFAULT_DB = "sqlite:///county.db"


def default_db_url() -> str:
    return os.environ.get("COUNTY_DB") or DEFAULT_DB


@dataclass
class Settings:
    """What ``serve`` (and the tests) configure; every limit has a production default."""

    db_url: str = DEFAULT_DB
    host: str = "127.0.0.1"
    port: int = 8470
    public_url: str = ""  # what enrolled stations are told to use; default http(s)://host:port
    tls: bool = False  # served over https by uvicorn itself (serve --tls-cert/--tls-key)
    # limits (sync.server.limits)
    max_request_bytes: int = api.MAX_REQUEST_BYTES
    max_enroll_bytes: int = 64 * 1024
    max_segments_per_push: int = 500
    rate_per_second: float = 5.0  # token bucket refill, per (station, remote address)
    rate_burst: float = 60.0
    anon_rate_per_second: float = 20.0  # per remote address, for requests with no known sender
    anon_rate_burst: float = 200.0
    page_max_bytes: int = 4 * 1024 * 1024  # a pull page stops growing past this many bytes of events
    return_max_bytes: int = 64 * 1024 * 1024  # a USB return file stops growing past this

    @property
    def url(self) -> str:
        return self.public_url or f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"


def now_ms() -> int:
    return int(time.time() * 1000)


def now_iso(ms: int | None = None) -> str:
    """County time in China Standard Time, ISO 8601 with offset (seconds)."""
    t = time.time() if ms is None else ms / 1000
    return datetime.fromtimestamp(t, CST).isoformat(timespec="seconds")


def iso_of_ms(ms: int | None) -> str:
    return "" if ms is None else now_iso(ms)
