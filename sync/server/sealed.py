"""Opening a sealed push, pull or USB bundle at the county, cheapest and surest checks first.

1. The header (at most 16 KiB, nesting checked) names the type, the sender and the recipients:
   it must be the expected type, sealed to this county, from a station id.
2. The sender must be enrolled (``unknown_station`` otherwise: the county never decrypts for
   a sender it cannot verify).
3. The envelope's Ed25519 signature must verify with the sender's registered key. A failure is
   blamed on the SOURCE (the remote address, or the USB file), never on the station it names
   (:func:`sync.server.audit.blame`).
4. A revoked sender is refused (with a ``revoked`` alarm: its signature proved it was the station).
5. Over HTTP only, the request must be fresh (:mod:`sync.server.replay`).
6. Only then is it decrypted and decompressed, in a stream that stops at ``max_payload``.

Every refusal is a :class:`~sync.errors.ProtocolError` with a Chinese reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sync import envelope
from sync.errors import ProtocolError
from sync.server import registry, replay
from sync.server.audit import blame
from sync.server.db import CountyDB
from sync.server.keystore import County


@dataclass(frozen=True)
class Source:
    """Who delivered an input: ``address`` (remote IP, or ``usb``) and, once its envelope signature
    verified, ``station``. Alarms about what it carries are blamed on it."""

    address: str
    station: str = ""


def open_from_station(
    cdb: CountyDB,
    county: County,
    blob: bytes,
    *,
    expect: str,
    address: str,
    max_payload: int,
    window_ms: int | None,
) -> tuple[Any, envelope.Opened]:
    """(the sender's station row, the opened envelope): :func:`authenticate`, then :func:`admit`."""
    row, header = authenticate(cdb, county, blob, expect=expect, address=address)
    return row, admit(
        cdb, county, blob, row, header, address=address, max_payload=max_payload, window_ms=window_ms
    )


def authenticate(
    cdb: CountyDB, county: County, blob: bytes, *, expect: str, address: str
) -> tuple[Any, dict]:
    """Steps 1–3: (the row of the station whose signature the envelope carries, the header)."""
    header = envelope.peek(blob)
    if header["type"] != expect:
        raise ProtocolError(
            "malformed", f"数据格式不正确：收到的是“{header['type']}”类型的数据，此处需要{expect}"
        )
    if not envelope.addressed_to(header, county.public.enc):
        raise ProtocolError(
            "wrong_county", "这份同步数据不是发给本县中心的（收件人密钥不符），请确认县中心地址或登记"
        )
    sender = registry.check_station_id(header["from"])
    row = cdb.m.Station.get_or_none(cdb.m.Station.id == sender)
    if row is None or row.status == "county":
        raise registry.refusal(None, sender)
    try:
        envelope.check_signature(blob, registry.station_keys(row).sign)
    except ProtocolError:
        blame(cdb, "signature", address, claimed=sender, endpoint=expect)
        raise
    return row, header


def admit(
    cdb: CountyDB,
    county: County,
    blob: bytes,
    row,
    header: dict,
    *,
    address: str,
    max_payload: int,
    window_ms: int | None,
) -> envelope.Opened:
    """Steps 4–6 for an authenticated envelope: not revoked, fresh (``window_ms`` None: no check, for
    USB files), then decrypted and decompressed."""
    row = registry.active_station(cdb, row.id, endpoint=header["type"])
    if window_ms is not None:
        try:
            replay.check_fresh(cdb, row.id, header["at"], header["nonce"], window_ms=window_ms)
        except ProtocolError as e:
            if e.code == "replay":
                blame(cdb, "replay", address, claimed=row.id, endpoint=header["type"])
            raise
    return envelope.decrypt(blob, county.unlocked.enc_key, expect=(header["type"],), max_payload=max_payload)
