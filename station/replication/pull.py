"""Pull: the county's events for this station, page by page, from the stored cursor.

Each page comes sealed to this station and signed by the county. Before anything is stored it
must be signed by the county key learned at enrollment, be addressed to this station, start at
the cursor we asked from, and every event's hash must match its content. Events of the kinds
only the county publishes (catalog, calendar, registry, revocations) must come from the county's
own chain. A page that fails any of this is refused whole and nothing of it is saved.

Then each event of another station is checked again for authority and clock
(``station.replication.admission``): one that fails is set aside with its reason, never folded,
and the rest of the page is stored — refusing the page would block the pull for ever. The
county's copy of an event wins over a different one we hold for the same place in that
station's chain (``Store.ingest(authoritative=True)``); the displaced one is set aside too.

The page's events and the new cursor are written in ONE transaction, so an interrupted pull
resumes exactly where the last stored page ended; a page received twice changes nothing (ingest
skips known ids).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from schema import canonical
from schema.events import ENVELOPE_FIELDS, Event
from station import clock
from station.replication import admission, registry
from station.replication import identity as I
from station.replication.context import ERROR, STAGE_PULL, Ctx
from station.replication.push import revoked_stop
from station.session import apply_disables
from sync import api, bounded, envelope, scope
from sync.client import Offline
from sync.crypto import unb64, verify
from sync.errors import ProtocolError, malformed
from sync.messages import EVENT_TYPES, VERSION, sign_doc

log = logging.getLogger("station.sync")

MIN_LIMIT = 20
PULL_CHECKPOINT_PAGES = 10_000
MAX_TIMEOUT_RETRIES = 4


# The page text is parsed with floats (and NaN/Infinity) refused, so every value is already of a
# canonical type and an event's hash can be recomputed with the plain encoder — the same bytes
# as schema.canonical.encode without walking the body a second time.
_PLAIN = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False)


def _no_float(text: str) -> Any:
    raise ValueError("floats are not canonical")


def event_of(raw: Any, *, canonical_types: bool = False) -> Event:
    """A full event from a page, types checked and hash verified.

    ``canonical_types``: ``raw`` came from a parse that refused floats, so the plain encoder
    gives the canonical bytes.
    """
    if not isinstance(raw, dict) or set(raw) != {*ENVELOPE_FIELDS, "hash"}:
        raise malformed("下载的记录字段不全")
    for name, typ in EVENT_TYPES.items():
        v = raw[name]
        if not isinstance(v, typ) or (typ is int and isinstance(v, bool)):
            raise malformed(f"下载的记录字段 {name} 类型不对")
    try:
        ev = Event(**raw)
        if canonical_types:
            text = _PLAIN.encode({name: raw[name] for name in ENVELOPE_FIELDS}).encode("utf-8")
            ok = hashlib.sha256(text).hexdigest() == ev.hash
        else:
            ok = ev.compute_hash() == ev.hash
    except (TypeError, ValueError):
        raise malformed("下载的记录含有不允许的数据类型") from None
    if not ok:
        raise ProtocolError("signature", "下载的记录内容与其哈希不符（传输中被改动），已拒收")
    return ev


def open_page(county: I.County, wire: Any) -> dict[str, Any]:
    """Verify the county's signature over the page text, then parse it (floats refused)."""
    if not isinstance(wire, dict) or not isinstance(wire.get("h"), str) or not isinstance(wire.get("s"), str):
        raise malformed("下载数据缺少签名或内容")
    verify(county.sign_pub, unb64(wire["s"], "签名"), wire["h"].encode("utf-8"), who="县中心")
    doc = bounded.loads(wire["h"], "下载数据（不允许小数）", parse_float=_no_float, parse_constant=_no_float)
    if not isinstance(doc, dict) or doc.get("t") != "page":
        raise malformed("应为“page”消息")
    if doc.get("v") != VERSION:
        raise ProtocolError("version", f"消息格式版本为{doc.get('v')}，本程序只支持版本{VERSION}，请升级程序")
    return doc


def verify_page(county: I.County, wire: Any, *, station: str, cursor: int | None = None):
    """Open a county-signed page for ``station``; returns (doc, events) or raises ProtocolError."""
    try:
        doc = open_page(county, wire)
    except ProtocolError as e:
        raise ProtocolError(e.code, f"县中心下载数据校验失败：{e.message}") from None
    if doc.get("county") != county.code:
        raise ProtocolError("wrong_county", "下载的数据来自另一个县中心，已拒收")
    if doc.get("station") != station:
        raise ProtocolError("signature", "下载的数据是发给另一台工作站的，已拒收")
    frm, to, events = doc.get("from"), doc.get("to"), doc.get("events")
    if type(frm) is not int or type(to) is not int or to < frm or not isinstance(events, list):
        raise malformed("下载数据的页码无效")
    if not isinstance(doc.get("more"), bool):
        raise malformed("下载数据缺少“是否还有更多”标记")
    if cursor is not None and frm != cursor:
        raise ProtocolError("malformed", "县中心返回的不是本次请求的那一页数据（可能是旧数据被重放），已拒收")
    out = [event_of(raw, canonical_types=True) for raw in events]
    for ev in out:
        if ev.kind in scope.COUNTY_KINDS and ev.station != county.station:
            raise ProtocolError(
                "signature", f"下载的数据中有一条“{ev.kind}”记录不是县中心发布的，整页已拒收。请联系县中心"
            )
    return doc, out


@dataclass
class Stored:
    """What storing a page did."""

    new: int = 0
    skipped: list[tuple[Event, str]] = field(default_factory=list)  # set aside, with the reason
    replaced: list[Event] = field(default_factory=list)  # our copies the county's displaced

    def add(self, other: Stored) -> None:
        self.new += other.new
        self.skipped += other.skipped
        self.replaced += other.replaced

    def messages(self, session) -> list[str]:
        """Chinese lines for the sync report (empty when nothing was skipped or replaced)."""
        names = {e.station: e.name for e in registry.stations(session.db) if e.name}
        lines = admission.summary(self.skipped, names)
        for ev in self.replaced:
            who = names.get(ev.station) or f"工作站 {ev.station[:8]}"
            lines.append(f"{who} 的第{ev.seq}条记录与县中心保存的不同，已按县中心的记录为准（本站原有的已搁置）")
        return lines


def store_page(session, doc: dict[str, Any], events: list[Event], *, advance: bool, source: str = "pull") -> Stored:
    """Store a verified page's admitted events, set the others aside, and (if ``advance``) move the
    cursor to its end — in one transaction."""
    ref = _county_ms(doc.get("now"))
    ref = clock.ms(clock.now()) if ref is None else ref
    out = Stored()
    with session.store.writing():
        county = registry.county_station(session.db)
        ours = [e for e in events if e.station == county]  # the registry first: the rest is judged by it
        out.new += session.store.ingest(ours, authoritative=True, ref_ms=ref)
        screened = admission.screen(session, [e for e in events if e.station != county], ref_ms=ref)
        out.new += session.store.ingest(screened.admitted, authoritative=True, ref_ms=ref)
        out.replaced += session.store.last_ingest.replaced
        session.store.set_aside(screened.refused, source)
        out.skipped += screened.refused
        if advance and doc["to"] > I.cursor(session):
            session.store.set_meta(I.CURSOR, str(doc["to"]))
    return out


def pull_limit(session) -> int:
    return max(MIN_LIMIT, min(api.MAX_PULL_LIMIT, I.int_meta(session, I.PULL_LIMIT, api.DEFAULT_PULL_LIMIT)))


def _seal_request(ctx: Ctx, cursor: int, limit: int, extra: dict[str, Any] | None = None) -> bytes:
    if extra:  # a township asking on behalf of a village ("for"), same shape as api.pull_request
        wire = sign_doc(
            {
                "t": "pull",
                "v": VERSION,
                "county": ctx.county.code,
                "station": ctx.station,
                "cursor": cursor,
                "limit": limit,
                "nonce": os.urandom(8).hex(),
                **extra,
            },
            ctx.key,
        )
    else:
        wire = api.pull_request(
            ctx.key, county=ctx.county.code, station=ctx.station, cursor=cursor, limit=limit
        )
    return envelope.seal(
        canonical.encode(wire),
        kind="pull",
        sender=ctx.station,
        recipients=[ctx.county.enc_pub],
        signer=ctx.key,
        at_ms=ctx.client.county_ms(),
    )


def request(ctx: Ctx, cursor: int, limit: int, extra: dict[str, Any] | None = None) -> bytes:
    """POST a pull (re-signed with a fresh nonce on every retry); return the sealed answer."""
    return ctx.client.pull(lambda: _seal_request(ctx, cursor, limit, extra))


def _county_ms(now: Any) -> int | None:
    if not isinstance(now, str):
        return None
    try:
        return clock.ms(datetime.fromisoformat(now))
    except ValueError:
        return None


def pull(ctx: Ctx) -> None:
    """Pull every page from the stored cursor.

    Each page commits with ``synchronous=NORMAL`` (WAL: no fsync per commit): a power cut may
    lose the last pages *and their cursor together*, and the next sync simply pulls them again.
    Everything a person typed keeps committing with FULL on its own transactions. The WAL is
    checkpointed every ~40 MB instead of every 4 MB while pulling: a large pull rewrites the same
    index and ``case_view`` pages page after page, and copying them back after every page doubled
    the time of a 40,000-event pull (bench/station_pull.py).
    """
    db = ctx.session.db
    db.execute_sql("PRAGMA synchronous = NORMAL")
    db.execute_sql(f"PRAGMA wal_autocheckpoint = {PULL_CHECKPOINT_PAGES}")
    try:
        _pull(ctx)
    finally:
        db.execute_sql("PRAGMA synchronous = FULL")
        db.execute_sql("PRAGMA wal_autocheckpoint = 1000")
        db.execute_sql("PRAGMA wal_checkpoint(PASSIVE)")


def _pull(ctx: Ctx) -> None:
    stored = Stored()
    try:
        _pages(ctx, stored)
    finally:
        after_pull(ctx.session, stored, ctx.report.messages)


def after_pull(session, stored: Stored, messages: list[str]) -> None:
    """Say what was set aside (a warning: the rest went through) and apply the county admin's
    disables of our own users to their key slots."""
    for line in stored.messages(session):
        if line not in messages:
            messages.append(line)
    if stored.new:
        apply_disables(session.store, session.slots)


def _pages(ctx: Ctx, stored: Stored) -> None:
    session, report = ctx.session, ctx.report
    limit = pull_limit(session)
    timeouts = 0
    pages = 0
    ctx.tick(STAGE_PULL, 0, None)
    while True:
        cursor = I.cursor(session)
        before = clock.ms(clock.now())
        try:
            data = request(ctx, cursor, limit)
        except Offline as e:
            if e.timeout and limit > MIN_LIMIT and timeouts < MAX_TIMEOUT_RETRIES:
                timeouts += 1
                limit = max(MIN_LIMIT, limit // 2)
                with session.store.writing():
                    session.store.set_meta(I.PULL_LIMIT, str(limit))
                continue
            raise
        except ProtocolError as e:
            if e.code == "revoked":
                raise revoked_stop(ctx, e.message) from None
            log.warning("pull refused: code=%s cursor=%d", e.code, cursor)
            report.note(f"县中心拒绝了下载请求：{e.message}")
            return
        try:
            opened = envelope.open_sealed(
                data, ctx.key.enc_key, ctx.county.sign_pub, expect=("page",), max_payload=bounded.PAGE_PAYLOAD
            )
            wire = bounded.loads(opened.payload, "下载的数据")
            doc, events = verify_page(ctx.county, wire, station=ctx.station, cursor=cursor)
        except ProtocolError as e:
            log.warning("pull page refused here: code=%s cursor=%d", e.code, cursor)
            report.note(f"{e.message}（未保存任何内容，下次同步会重新下载）", ERROR)
            return
        if pages == 0:
            county_ms = _county_ms(doc.get("now"))
            if county_ms is not None:  # the county's clock, from the first page (no extra round trip)
                report.offset_ms = county_ms - (before + clock.ms(clock.now())) // 2
        page = store_page(session, doc, events, advance=True)
        stored.add(page)
        report.pulled += page.new
        pages += 1
        ctx.tick(STAGE_PULL, report.pulled, None)
        if not doc["more"] or doc["to"] <= cursor:
            log.info("pull: pages=%d events=%d cursor=%d", pages, report.pulled, doc["to"])
            return
