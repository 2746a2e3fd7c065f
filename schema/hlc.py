"""Hybrid logical clock (Kulkarni et al. 2014).

An HLC timestamp is one integer: wall-clock milliseconds in the high bits and
a 16-bit logical counter in the low bits, so it sorts as a plain int and
survives wrong or repeated wall clocks (village PCs' clocks are often off).
"""

from __future__ import annotations

COUNTER_BITS = 16
_COUNTER_MASK = (1 << COUNTER_BITS) - 1


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


def receive(last: int, remote: int, now_ms: int) -> int:
    """Advance the local clock past a timestamp received from another station."""
    return tick(max(last, remote), now_ms)

