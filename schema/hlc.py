"""Hybrid logical clock (Kulkarni et al. 2014), with bounds on what a remote clock may claim.

An HLC timestamp is one integer: wall-clock milliseconds in the high bits and
a 16-bit logical counter in the low bits, so it sorts as a plain int and
survives wrong or repeated wall clocks (village PCs' clocks are often off).

A clock received from another machine is never trusted further than
:data:`DRIFT_MS` past the receiver's reference time (the county's clock):
:func:`receive` caps it, and :func:`clock_problem` says why an event's clock
must be refused (docs/security.md, "Authority and clocks").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

COUNTER_BITS = 16
_COUNTER_MASK = (1 << COUNTER_BITS) - 1

DRIFT_MS = 24 * 3600 * 1000  # how far ahead of the receiver's time a remote clock may be
EARLIEST_MS = 1_577_808_000_000  # 2020-01-01T00:00:00+08:00: nothing of this system is older
CST = timezone(timedelta(hours=8))


def pack(ms: int, counter: int) -> int:
    return (ms << COUNTER_BITS) | counter


def unpack(hlc: int) -> tuple[int, int]:
    return hlc >> COUNTER_BITS, hlc & _COUNTER_MASK


def tick(last: int, now_ms: int) -> int:
    """Timestamp for a local event, given the last one issued or seen."""
    last_ms, last_c = unpack(last)
    if now_ms > last_ms:
        return pack(now_ms, 0)
    if last_c == _COUNTER_MASK:  # 65,536 events in one ms: borrow the next ms
        return pack(last_ms + 1, 0)
    return pack(last_ms, last_c + 1)


def ceiling(now_ms: int) -> int:
    """The highest HLC a remote clock may move us to at local time ``now_ms``."""
    return pack(now_ms + DRIFT_MS, 0)


def receive(last: int, remote: int, now_ms: int) -> int:
    """Advance the local clock past a timestamp received from another station.

    Whatever ``remote`` says, the clock never moves past ``now_ms`` + :data:`DRIFT_MS`
    (receivers refuse such events anyway; this keeps one that slipped through harmless).
    """
    return tick(max(last, min(remote, ceiling(now_ms))), now_ms)


def at_ms(at: str) -> int | None:
    """Milliseconds of an event's ISO 8601 ``at`` (China time if it has no offset); None if unreadable."""
    try:
        dt = datetime.fromisoformat(at)
    except (TypeError, ValueError):
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=CST)
    try:
        return int(dt.timestamp() * 1000)
    except (OverflowError, ValueError, OSError):
        return None


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, CST).strftime("%Y-%m-%d %H:%M")


@dataclass(frozen=True, slots=True)
class ClockProblem:
    reason: str  # Chinese
    ahead: bool  # only too far ahead: it becomes acceptable once the reference time catches up


def clock_problem(hlc: int, at: str, ref_ms: int, *, ref_name: str = "县中心时间") -> ClockProblem | None:
    """Why an event's clock (its HLC and its ``at``) must be refused at reference time ``ref_ms``.

    Refused: a negative HLC; a time before 2020; a time more than :data:`DRIFT_MS` ahead of
    ``ref_ms``. An unreadable ``at`` is not a clock bound (receivers flag it separately).
    """
    return bound_problem(hlc, at_ms(at), ref_ms, ref_name=ref_name)


def bound_problem(hlc: int, at: int | None, ref_ms: int, *, ref_name: str = "县中心时间") -> ClockProblem | None:
    """:func:`clock_problem` with ``at`` already in milliseconds (None: unreadable)."""
    if hlc < 0:
        return ClockProblem("逻辑时钟为负数，无效", ahead=False)
    hlc_ms = hlc >> COUNTER_BITS
    limit = ref_ms + DRIFT_MS
    if EARLIEST_MS <= hlc_ms <= limit and (at is None or EARLIEST_MS <= at <= limit):
        return None  # the common case, without building a message
    times = [("逻辑时钟", hlc_ms)] + ([("记录时间", at)] if at is not None else [])
    for what, t in times:
        if t < EARLIEST_MS:
            return ClockProblem(f"{what}早于2020年，无效", ahead=False)
    what, t = next((w, t) for w, t in times if t > limit)
    when = _iso(t) if t < 2**45 else "遥远的将来"
    return ClockProblem(f"{what}（{when}）比{ref_name}（{_iso(ref_ms)}）快了一天以上", ahead=True)
