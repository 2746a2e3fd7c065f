"""Pull: pages of the county log in a station's scope, after its cursor (DESIGN.md §5.5).

A page holds the events with county position > ``cursor`` that the station may see
(:func:`sync.scope.visible`), excluding its own and quarantined ones, oldest first, at most ``limit`` (and about
``page_max_bytes`` of events). Each event is served as the canonical JSON stored at ingest;
the signed page text is assembled around those stored texts, so no event is re-encoded.

The queries are index range scans over the station's own share of the log:

- village:  ``scope = ''`` (county-published) ∪ ``scope = <village>``, each on ``(scope, pos)``;
- township: ``scope = ''`` ∪ ``township = <township>`` on ``(township, pos)``;
- county:   everything, on the primary key.

``top`` (the highest position) is read first and bounds every scan; positions commit in
order (the log lock, :meth:`CountyDB.lock_log`), so nothing at or below ``top`` can appear
later and ``to = top`` is safe when the page is not full.

**On behalf** (relay down): a township station's pull may name ``"for": <village station>``.
The answer is then a ``return`` envelope sealed to the village (the township cannot read
it) with the village's pages from the cursor in the request and the county's receipt for
the village's head. ``county-center export`` writes the same envelope to a file.
"""

from __future__ import annotations

import heapq
from itertools import islice
from typing import Any

from peewee import fn

from schema import canonical
from schema.org import OrgCode
from sync import api, envelope
from sync.crypto import b64, unb64, verify
from sync.errors import ProtocolError, malformed
from sync.messages import VERSION, doc_header, make_receipt
from sync.server import registry
from sync.server.audit import alarm_now
from sync.server.config import Settings, now_iso
from sync.server.db import _ENCODER, FLAG_QUARANTINED, CountyDB
from sync.server.ingest import DATA_ERRORS, MAX_SEQ, parse_json
from sync.server.keystore import County

ENC = _ENCODER.encode


# -- selecting ------------------------------------------------------------------------------------


def top_position(cdb: CountyDB) -> int:
    E = cdb.m.Event
    return E.select(fn.MAX(E.pos)).scalar() or 0


def _streams(cdb: CountyDB, *, org: str, level: str, exclude: str, cursor: int, top: int):
    E = cdb.m.Event
    base = E.select(E.pos, E.data).where(
        (E.pos > cursor) & (E.pos <= top) & (E.station != exclude) & (E.flags.bin_and(FLAG_QUARANTINED) == 0)
    )
    if level == "county":
        return [base]
    if level == "township":
        return [base.where(E.scope == ""), base.where(E.township == org)]
    return [base.where(E.scope == ""), base.where(E.scope == org)]


def select_events(
    cdb: CountyDB, *, org: str, level: str, exclude: str, cursor: int, top: int, limit: int, max_bytes: int
) -> tuple[list[tuple[int, str]], bool]:
    """Up to ``limit`` (pos, data) rows after ``cursor``; True if the page stopped early (more may follow)."""
    E = cdb.m.Event
    queries = _streams(cdb, org=org, level=level, exclude=exclude, cursor=cursor, top=top)
    streams = [iter(q.order_by(E.pos).limit(limit).tuples()) for q in queries]
    merged = streams[0] if len(streams) == 1 else heapq.merge(*streams, key=lambda r: r[0])
    rows, size = [], 0
    for pos, data in islice(merged, limit):
        rows.append((pos, data))
        size += len(data)
        if size >= max_bytes:
            return rows, True
    return rows, len(rows) == limit


def count_pending(cdb: CountyDB, row) -> int:
    """Events in the station's scope after its last known cursor (not its own)."""
    E = cdb.m.Event
    cursor = row.last_cursor or 0
    total = 0
    for q in _streams(cdb, org=row.org, level=row.level, exclude=row.id, cursor=cursor, top=2**62):
        total += q.select(fn.COUNT(E.pos)).scalar() or 0
    return total


# -- pages ------------------------------------------------------------------------------------------


def page_text(
    *, county: str, station: str, cursor_from: int, cursor_to: int, more: bool, now: str, events: list[str]
) -> str:
    """Canonical JSON of an ``api.page_doc`` body, assembled around the stored event texts."""
    return (
        '{"county":'
        + ENC(county)
        + ',"events":['
        + ",".join(events)
        + '],"from":'
        + str(cursor_from)
        + ',"more":'
        + ("true" if more else "false")
        + ',"now":'
        + ENC(now)
        + ',"station":'
        + ENC(station)
        + ',"t":"page","to":'
        + str(cursor_to)
        + ',"v":'
        + str(VERSION)
        + "}"
    )


def make_page(
    cdb: CountyDB, county: County, row, *, cursor: int, limit: int, max_bytes: int, top: int | None = None
) -> tuple[dict[str, str], int, bool, int]:
    """One signed page for station ``row``: (wire, to, more, number of events)."""
    with cdb.read():
        top = top_position(cdb) if top is None else top
        rows, full = select_events(
            cdb,
            org=row.org,
            level=row.level,
            exclude=row.id,
            cursor=cursor,
            top=top,
            limit=limit,
            max_bytes=max_bytes,
        )
    if full:
        to, more = rows[-1][0], True
    else:
        to, more = top, False  # below the cursor only if the county log was restored from a backup
    text = page_text(
        county=county.code,
        station=row.id,
        cursor_from=cursor,
        cursor_to=to,
        more=more,
        now=now_iso(),
        events=[d for _, d in rows],
    )
    wire = {"h": text, "s": b64(county.unlocked.sign(text.encode("utf-8")))}
    return wire, to, more, len(rows)


def return_payload(
    cdb: CountyDB,
    county: County,
    row,
    *,
    cursor: int,
    max_events: int,
    max_bytes: int,
    page_limit: int = api.MAX_PULL_LIMIT,
) -> dict[str, Any]:
    """The payload of a ``return`` envelope for station ``row`` from ``cursor``."""
    pages, total, size = [], 0, 0
    top = top_position(cdb)
    while True:
        want = min(page_limit, max_events - total)
        wire, to, more, n = make_page(
            cdb, county, row, cursor=cursor, limit=max(want, 1), max_bytes=max(1, max_bytes - size), top=top
        )
        pages.append(wire)
        total, size, cursor = total + n, size + len(wire["h"]), to
        if not more or total >= max_events or size >= max_bytes:
            break
    receipts = []
    if row.head_seq > 0:
        receipts.append(make_receipt(county.unlocked, county.code, row.id, row.head_seq, row.head_hash))
    return {"t": "return", "v": VERSION, "station": row.id, "pages": pages, "receipts": receipts}


def seal_return(county: County, row, payload: dict[str, Any]) -> bytes:
    keys = registry.station_keys(row)
    return envelope.seal(
        canonical.encode(payload),
        kind="return",
        sender=county.station,
        recipients=[keys.enc],
        signer=county.unlocked,
    )


# -- the pull request ----------------------------------------------------------------------------------


def open_pull(cdb: CountyDB, county: County, row, opened: envelope.Opened) -> dict[str, Any]:
    """The request inside an authenticated pull envelope from station ``row`` (:mod:`sync.server.sealed`)."""
    wire = parse_json(opened.payload, "下载请求")
    try:
        doc = doc_header(wire, "pull")
        station = registry.check_station_id(doc.get("station"))
    except DATA_ERRORS:
        raise malformed("下载请求格式不对") from None
    if station != row.id:
        raise malformed("下载请求中的工作站与签名的发送方不符")
    try:
        verify(
            registry.station_keys(row).sign,
            unb64(wire["s"], "签名"),
            wire["h"].encode("utf-8"),
            who="下载请求",
        )
    except ProtocolError:
        alarm_now(cdb, "signature", station, endpoint="pull")
        raise
    except DATA_ERRORS:
        raise malformed("下载请求格式不对") from None
    if doc.get("county") != county.code:
        raise ProtocolError(
            "wrong_county", f"下载请求是发给县中心 {str(doc.get('county'))[:12]} 的，本县中心是 {county.code}"
        )
    cursor, limit = doc.get("cursor"), doc.get("limit")
    if type(cursor) is not int or not 0 <= cursor < MAX_SEQ:
        raise malformed("下载请求的游标（cursor）无效")
    if type(limit) is not int or limit < 1:
        raise malformed("下载请求的条数（limit）无效")
    doc["limit"] = min(limit, api.MAX_PULL_LIMIT)
    behalf = doc.get("for")
    if behalf is not None:
        registry.check_station_id(behalf)
    doc["sent_at"] = opened.header["at"]  # its signed time orders the cursors a station reports
    return doc


def answer_pull(cdb: CountyDB, county: County, row, doc: dict[str, Any], settings: Settings) -> bytes:
    """The sealed answer: a ``page`` for the station, or a ``return`` for the village it relays for."""
    behalf = doc.get("for")
    if behalf is None:
        registry.touch(cdb, row.id, cursor=doc["cursor"], at=doc["sent_at"])
        wire, *_ = make_page(
            cdb, county, row, cursor=doc["cursor"], limit=doc["limit"], max_bytes=settings.page_max_bytes
        )
        keys = registry.station_keys(row)
        return envelope.seal(
            canonical.encode(wire),
            kind="page",
            sender=county.station,
            recipients=[keys.enc],
            signer=county.unlocked,
        )
    village = registry.active_station(cdb, behalf, endpoint="pull-for")
    if row.level != "township" or not OrgCode(row.org).covers(village.org) or village.id == row.id:
        raise ProtocolError(
            "scope", f"只有管辖该村的乡镇工作站才能代为下载；{village.org} 不在 {row.org} 的管辖范围内"
        )
    registry.touch(cdb, row.id)
    payload = return_payload(
        cdb, county, village, cursor=doc["cursor"], max_events=doc["limit"], max_bytes=settings.page_max_bytes
    )
    return seal_return(county, village, payload)
