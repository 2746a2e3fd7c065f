"""Canonical encoding: the exact bytes that are hashed and signed.

Sorted keys, UTF-8 (no ASCII escaping), no insignificant whitespace, and no
floats: floats do not round-trip identically across platforms, so money is in
fen and time limits are integers.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

_encoder = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False)


def _check(value: Any) -> None:
    if isinstance(value, float):
        raise TypeError("floats are not allowed in canonical data; use integers (fen, days)")
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"canonical object keys must be strings, got {k!r}")
            _check(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            _check(v)
    elif not (value is None or isinstance(value, (str, int, bool))):
        raise TypeError(f"type {type(value).__name__} is not allowed in canonical data")


def encode(value: Any) -> bytes:
    _check(value)
    return _encoder.encode(value).encode("utf-8")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
