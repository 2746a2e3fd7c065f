"""Identifiers made offline.

UUIDv7 (RFC 9562): 48-bit Unix milliseconds then random bits, so ids sort by
creation time and never need a server. Python 3.11's ``uuid`` has no uuid7.
"""

from __future__ import annotations

import os
import time
import uuid


def new_id(now_ms: int | None = None) -> str:
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    rand = int.from_bytes(os.urandom(10), "big")  # 80 bits, 74 used
    value = (ms & 0xFFFF_FFFF_FFFF) << 80
    value |= 0x7 << 76  # version 7
    value |= ((rand >> 62) & 0xFFF) << 64  # rand_a, 12 bits
    value |= 0b10 << 62  # RFC 4122 variant
    value |= rand & ((1 << 62) - 1)  # rand_b, 62 bits
    return str(uuid.UUID(int=value))
