"""The station's clock. ``STATION_NOW`` (ISO 8601) pins it for tests and demos.

All times are China Standard Time (UTC+8, no DST): business dates such as
受理日 are dates in that zone.
"""

from __future__ import annotations

import os
from datetime import date, datetime, timedelta, timezone

CST = timezone(timedelta(hours=8), "CST")


def now() -> datetime:
    pinned = os.environ.get("STATION_NOW")
    if pinned:
        return parse_iso(pinned)
    return datetime.now(CST)


def parse_iso(text: str) -> datetime:
    """Parse an ISO 8601 time; a naive time or a bare date is taken as CST."""
    from schema.errors import ValidationError

    try:
        dt = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValidationError(f"时间“{text}”格式不正确，应为 2026-11-21 或 2026-11-21 09:30") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=CST)
    return dt.astimezone(CST)


def iso(dt: datetime) -> str:
    return dt.astimezone(CST).isoformat(timespec="seconds")


def today() -> date:
    return now().date()


def ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)
