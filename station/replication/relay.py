"""Township relay: village segments imported from USB go up at the township's next sync, and the
county's answers for those villages come back down with it.

* Import (``import_segments``): each segment is checked against the station registry. A village
  below us whose key we know is verified now and passes the same scope, clock and authority
  checks as at the county (``admission.check_segment``) before anything of it is stored; then
  its events are ingested (the township can review those cases at once). A segment that fails
  is refused with its reason and not relayed; its events are set aside (``quarantine``). A station we do not know yet, or a segment we
  cannot judge yet (a case or user we have not received, a clock ahead of ours), is kept
  *unverified* — it is relayed all the same (the county checks everything it receives) and
  judged and ingested here after a later pull (``verify_pending``). Raw segments are kept
  exactly as signed in ``relay_segment``.
* Push (``push_relayed``): pending segments go up, several per request. A verified county
  receipt for a segment deletes it from the outbox (the county has it; its events are in our
  log, or will come down with the pull). A ``gap`` keeps it until an earlier segment of that
  village arrives; a ``scope`` refusal marked ``retry`` is tried again next sync; any other
  refusal is kept as ``refused`` with the county's reason, and never blocks the other villages;
  the county's word wins: when it names the event it refused, that event and the rest of the
  segment (which it did not store either) are set aside here again if we took them in for
  review (``quarantine``, with the county's reason) and their cases refolded.
* Returns (``fetch_returns``): for every village whose bundle came through here, a pull "for"
  that village from the cursor its bundle carried; the county answers with a ``return``
  envelope sealed to the village (unreadable here), stored until ``bundle export`` writes it to
  the stick.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from schema.org import OrgCode
from station import clock
from station.replication import admission, registry
from station.replication import identity as I
from station.replication.context import OFFLINE, STAGE_RELAY, STAGE_RETURN, Ctx
from station.replication.push import (
    MAX_COMPRESSED,
    compressed_size,
    parse_result,
    revoked_stop,
    seal_push,
    verify_receipt,
)
from sync import api, envelope
from sync.client import Offline, ServerFault
from sync.crypto import unb64
from sync.errors import ProtocolError
from sync.messages import open_segment, segment_header

log = logging.getLogger("station.sync")

MAX_SEGMENTS_PER_REQUEST = 50


@dataclass
class ImportCounts:
    segments: int = 0
    verified: int = 0
    unverified: int = 0
    events: int = 0  # new events ingested for review
    refused: list[str] = field(default_factory=list)


def below_us(session, org: str) -> bool:
    own = session.config.org
    return org != own and OrgCode(own).covers(org)


def _ingest_segment(session, wire: Any, entry: registry.Entry) -> int | None:
    """Verify a village segment with its registered key, check it as the county would and ingest
    its events (in the caller's txn). None: we cannot judge it yet (it stays unverified);
    ProtocolError: refused."""
    _, events = open_segment(wire, unb64(entry.sign_pub, "sign_pub"))
    try:
        admission.check_segment(session, entry.org, events, now_ms=clock.ms(clock.now()))
    except ProtocolError as e:
        if e.detail.get("retry"):
            return None
        session.store.set_aside([(ev, e.message) for ev in events], "relay")  # kept, with why, never folded
        raise
    return session.store.ingest(events)


def import_segments(
    session, sender: str, segments: list[Any], *, cursor: Any = None, acked: Any = None
) -> ImportCounts:
    """Take a lower station's segments from a bundle (one transaction)."""
    county = I.county(session)
    out = ImportCounts()
    own = session.config.station_id
    now = clock.iso(clock.now())
    with session.store.writing():
        for wire in segments:
            try:
                h = segment_header(wire)
            except ProtocolError as e:
                out.refused.append(f"一段数据无效：{e.message}")
                continue
            if county is not None and h.county != county.code:
                out.refused.append("一段数据是给另一个县中心的，已跳过")
                continue
            if h.station == own:
                continue
            entry = registry.lookup(session.db, h.station)
            if entry is not None and not below_us(session, entry.org):
                out.refused.append(f"工作站 {entry.name or h.station[:8]} 不属于本站管辖，其数据已跳过")
                continue
            verified = 0
            if entry is not None:
                try:
                    n = _ingest_segment(session, wire, entry)
                    verified = int(n is not None)
                    out.events += n or 0
                except ProtocolError as e:
                    out.refused.append(
                        f"{entry.name or h.station[:8]} 的第{h.first}–{h.last}条记录：{e.message}"
                    )
                    continue
            cur = session.db.execute_sql(
                "INSERT OR IGNORE INTO relay_segment (station, first, last, head, wire, verified, received_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (h.station, h.first, h.last, h.head, json.dumps(wire, ensure_ascii=False), verified, now),
            )
            if cur.rowcount:
                out.segments += 1
                out.verified += verified
                out.unverified += 1 - verified
            # A newer bundle may fill a gap: let every waiting segment of this village try again.
            session.db.execute_sql(
                "UPDATE relay_segment SET error = '', reason = '' WHERE station = ? AND state = 'pending' "
                "AND error = 'gap'",
                (h.station,),
            )
        if sender != own:
            note_station(session, sender, cursor=cursor, acked=acked)
    return out


def note_station(session, station: str, *, cursor: Any = None, acked: Any = None) -> None:
    """Remember a lower station whose data came through here (to fetch its returns)."""
    now = clock.iso(clock.now())
    c = cursor if type(cursor) is int and cursor >= 0 else None
    a = acked if type(acked) is int and acked >= 0 else 0
    row = session.db.execute_sql("SELECT cursor FROM relay_station WHERE station = ?", (station,)).fetchone()
    if row is None:
        session.db.execute_sql(
            "INSERT INTO relay_station (station, cursor, acked, seen_at) VALUES (?, ?, ?, ?)",
            (station, c or 0, a, now),
        )
    elif c is not None:
        # The bundle says where the village's own cursor is: the next return starts there.
        session.db.execute_sql(
            "UPDATE relay_station SET cursor = ?, acked = max(acked, ?), seen_at = ? WHERE station = ?",
            (c, a, now, station),
        )


def verify_pending(session) -> int:
    """Verify and ingest kept segments whose station the registry now knows. Returns events ingested."""
    rows = session.db.execute_sql(
        "SELECT id, station, wire FROM relay_segment WHERE verified = 0 AND state = 'pending' "
        "ORDER BY station, first"
    ).fetchall()
    n = 0
    for rid, station, raw in rows:
        entry = registry.lookup(session.db, station)
        if entry is None:
            continue
        with session.store.writing():
            if not below_us(session, entry.org):
                _refuse(session, rid, "scope", "该工作站不属于本站管辖")
                continue
            try:
                got = _ingest_segment(session, json.loads(raw), entry)
            except ProtocolError as e:
                _refuse(session, rid, e.code, e.message)
                continue
            if got is None:
                continue  # still cannot judge it: the county will
            n += got
            session.db.execute_sql("UPDATE relay_segment SET verified = 1 WHERE id = ?", (rid,))
    return n


def _refuse(session, rid: int, code: str, reason: str) -> None:
    session.db.execute_sql(
        "UPDATE relay_segment SET state = 'refused', error = ?, reason = ? WHERE id = ?", (code, reason, rid)
    )


def pending_rows(session) -> list[tuple]:
    return session.db.execute_sql(
        "SELECT id, station, first, last, head, wire FROM relay_segment "
        "WHERE state = 'pending' AND error = '' ORDER BY station, first, last"
    ).fetchall()


def pending_events(session) -> int:
    row = session.db.execute_sql(
        "SELECT coalesce(sum(last - first + 1), 0) FROM relay_segment WHERE state = 'pending'"
    ).fetchone()
    return int(row[0])


def refused_rows(session) -> list[dict[str, Any]]:
    rows = session.db.execute_sql(
        "SELECT station, first, last, error, reason FROM relay_segment WHERE state = 'refused' ORDER BY station, first"
    ).fetchall()
    return [{"station": s, "first": f, "last": la, "error": e, "reason": r} for s, f, la, e, r in rows]


def push_relayed(ctx: Ctx) -> None:
    session, report = ctx.session, ctx.report
    rows = pending_rows(session)
    if not rows:
        return
    total, done = len(rows), 0
    ctx.tick(STAGE_RELAY, 0, total)
    while rows:
        batch, size = [], 0
        for row in rows:
            wire = json.loads(row[5])
            est = compressed_size(wire)
            if batch and (size + est > MAX_COMPRESSED or len(batch) >= MAX_SEGMENTS_PER_REQUEST):
                break
            batch.append((row, wire))
            size += est
        rows = rows[len(batch) :]
        segments = [w for _, w in batch]
        try:
            answer = ctx.client.push(lambda segments=segments: seal_push(ctx, segments))
        except ProtocolError as e:
            if e.code == "revoked":
                raise revoked_stop(ctx, e.message) from None
            report.note(f"县中心拒收了转交的下级站数据：{e.message}")
            return
        results = answer["results"]
        if len(results) != len(batch):
            raise ServerFault("县中心的上传结果条数与上传的段数不符")
        for (row, _wire), raw in zip(batch, results, strict=True):
            _relay_result(ctx, row, parse_result(raw))
            done += 1
        ctx.tick(STAGE_RELAY, done, total)


def _relay_result(ctx: Ctx, row: tuple, res) -> None:
    session, report = ctx.session, ctx.report
    rid, station, first, last, head, _ = row
    log.info("relay: station=%s seq=%d-%d status=%s code=%s", station[:8], first, last, res.status, res.error or "")
    name = _name(session, station)
    if res.status in ("stored", "duplicate"):
        try:
            r = verify_receipt(session, ctx.county, res.receipt, station=station)
            if r.seq != last or r.head != head:
                raise ProtocolError("signature", "回执与转交的数据不符")
        except ProtocolError as e:
            report.note(f"转交 {name} 的数据后，县中心回执校验失败：{e.message}。下次同步会重试")
            return
        with session.store.writing():
            session.db.execute_sql("DELETE FROM relay_segment WHERE id = ?", (rid,))
            session.db.execute_sql(
                "UPDATE relay_station SET acked = max(acked, ?) WHERE station = ?", (last, station)
            )
        report.relayed += last - first + 1
        return
    if res.error == "revoked" and station == ctx.station:
        raise revoked_stop(ctx, res.reason)
    if res.error == "gap":
        with session.store.writing():
            session.db.execute_sql(
                "UPDATE relay_segment SET error = 'gap', reason = ? WHERE id = ?", (res.reason, rid)
            )
        report.note(
            f"{name} 的第{first}–{last}条记录暂不能转交：县中心还缺它更早的记录。请让该村再导出一次数据带来"
        )
        return
    if res.retry or res.error == "rate":
        report.note(f"{name} 的第{first}–{last}条记录这次未被接收：{res.reason}。下次同步会自动重传")
        return
    with session.store.writing():
        _refuse(session, rid, res.error, res.reason)
        withdrawn = _withdraw(session, station, row[5], res.seq, f"县中心拒收：{res.reason}")
    extra = f"；本站已撤下其中先行收下的 {withdrawn} 条记录" if withdrawn else ""
    report.note(f"{name} 的第{first}–{last}条记录被县中心拒收：{res.reason}{extra}")


def _withdraw(session, station: str, raw: str, seq: Any, reason: str) -> int:
    """The county refused event ``seq`` of a segment we relayed: set aside that event and the rest
    of the segment if we took them in for review. The county stored none of them (a segment is
    refused whole, and what it already held comes before the event it refused)."""
    entry = registry.lookup(session.db, station)
    if entry is None or type(seq) is not int:
        return 0
    try:
        _, events = open_segment(json.loads(raw), unb64(entry.sign_pub, "sign_pub"))
    except (ProtocolError, ValueError):
        return 0  # never taken in: it did not verify here either
    return session.store.withdraw([e for e in events if e.seq >= seq], reason, "relay")


def _name(session, station: str) -> str:
    entry = registry.lookup(session.db, station)
    return f"下级站“{entry.name}”" if entry and entry.name else f"下级站 {station[:8]}"


def fetch_returns(ctx: Ctx) -> None:
    """Fetch the county's answer for each village whose bundle came through here."""
    from station.replication.pull import request

    session, report = ctx.session, ctx.report
    rows = session.db.execute_sql("SELECT station, cursor FROM relay_station ORDER BY station").fetchall()
    if not rows:
        return
    ctx.tick(STAGE_RETURN, 0, len(rows))
    for i, (station, cursor) in enumerate(rows, 1):
        entry = registry.lookup(session.db, station)
        if entry is not None and (entry.revoked or not below_us(session, entry.org)):
            continue
        try:
            data = request(ctx, cursor, api.DEFAULT_PULL_LIMIT, {"for": station})
            header = envelope.peek(data)
        except Offline:
            raise
        except ProtocolError as e:
            # Our own pull just went through, so a refusal here is about the village (revoked,
            # not ours, unknown): stop asking for it; a new bundle from it brings it back.
            with session.store.writing():
                session.db.execute_sql("DELETE FROM relay_station WHERE station = ?", (station,))
            report.note(f"为{_name(session, station)}取回数据时县中心拒绝：{e.message}")
            continue
        if header.get("type") != "return":
            report.note(f"为{_name(session, station)}取回的不是回执数据，已丢弃")
            continue
        with session.store.writing():
            session.db.execute_sql(
                "INSERT OR REPLACE INTO relay_return (station, blob, cursor, fetched_at) VALUES (?, ?, ?, ?)",
                (station, data, cursor, clock.iso(clock.now())),
            )
        report.returns += 1
        ctx.tick(STAGE_RETURN, i, len(rows))


__all__ = ["import_segments", "verify_pending", "push_relayed", "fetch_returns", "OFFLINE"]
