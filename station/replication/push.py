"""Push: this station's unacknowledged events go up as signed segments; receipts come back.

* The next segment starts at ``sync.push_from`` (set after a ``gap`` answer, possibly below what
  we already had receipts for — the county may have been restored from a backup, and we still
  have everything) or else at ``sync.acked`` + 1. An interrupted push simply resends: the county
  answers ``duplicate`` with the same deterministic receipt.
* Events are marked ``synced`` only after the county's receipt is verified (county key, this
  station, and the receipt's head equal to our own event's hash at that seq) and stored, in the
  same transaction as the marks.
* Segments are at most ``sync.batch`` events (1000, fewer for slow links: halved after a timeout,
  grown again after successes) and at most ~64 KiB compressed.
* A ``fork`` or any other refusal stops pushing our chain and is kept (``sync.blocked``) with its
  Chinese reason until someone retries (``station sync --retry``) or re-enrolls; a ``scope``
  refusal marked ``retry`` is simply tried again next sync; ``revoked`` stops everything.
  Nothing unsynced is ever deleted.
"""

from __future__ import annotations

import json
import logging
import zlib
from dataclasses import dataclass
from typing import Any

from schema import canonical
from station import clock
from station.replication import identity as I
from station.replication.context import OFFLINE, REFUSED, REVOKED, STAGE_PUSH, Ctx, Stop
from station.store.store import EVENT_COLUMNS, row_to_event
from sync import api, envelope
from sync.client import Offline, ServerFault
from sync.errors import ProtocolError
from sync.messages import make_segment, open_receipt

log = logging.getLogger("station.sync")

MAX_BATCH = 1000  # events; the compressed cap below is what protects a slow link
MIN_BATCH = 10
MAX_COMPRESSED = 64 * 1024
MAX_TIMEOUT_RETRIES = 4

# Pending own events (literal SQL so SQLite uses the partial index event_unsynced).
UNSYNCED_SQL = "SELECT count(*) FROM event WHERE station = ? AND synced = 0"


def pending_own(session) -> int:
    return session.db.execute_sql(UNSYNCED_SQL, (session.config.station_id,)).fetchone()[0]


def next_seq(session) -> int:
    raw = session.store.meta(I.PUSH_FROM)
    return int(raw) if raw else I.acked(session) + 1


def own_events(session, first: int, limit: int) -> list:
    rows = session.db.execute_sql(
        f"SELECT {EVENT_COLUMNS} FROM event WHERE station = ? AND seq >= ? ORDER BY seq LIMIT ?",
        (session.config.station_id, first, limit),
    ).fetchall()
    return [row_to_event(r) for r in rows]


def compressed_size(doc: Any) -> int:
    return len(zlib.compress(canonical.encode(doc), 6))


def build_segments(
    session, key, county_code: str, first: int, *, batch: int, limit_events: int | None = None
):
    """Own segments from ``first`` to the head: each ≤ ``batch`` events and ≤ 64 KiB compressed."""
    out = []
    todo = limit_events
    while todo is None or todo > 0:
        n = batch if todo is None else min(batch, todo)
        events = own_events(session, first, n)
        if not events:
            break
        seg = make_segment(events, key, county_code)
        while len(events) > 1 and compressed_size(seg) > MAX_COMPRESSED:
            events = events[: len(events) // 2]
            seg = make_segment(events, key, county_code)
        out.append(seg)
        first = events[-1].seq + 1
        if todo is not None:
            todo -= len(events)
    return out


def seal_push(ctx: Ctx, segments: list[dict]) -> bytes:
    payload = canonical.encode(api.push_payload(ctx.station, segments))
    return envelope.seal(
        payload,
        kind="push",
        sender=ctx.station,
        recipients=[ctx.county.enc_pub],
        signer=ctx.key,
        at_ms=ctx.client.county_ms(),
    )


# -- receipts ----------------------------------------------------------------------------------------


def verify_receipt(session, county: I.County, wire: Any, *, station: str | None = None):
    """Open a county receipt for ``station`` (default: this one) or raise ProtocolError."""
    station = station or session.config.station_id
    r = open_receipt(wire, county.sign_pub)
    if r.county != county.code or r.station != station:
        raise ProtocolError("signature", "县中心回执不是给本站的（单位或工作站不符），已拒收")
    return r


def apply_receipt(session, county: I.County, wire: Any) -> int:
    """Verify a receipt for our own chain and mark everything up to it synced. Returns its seq."""
    r = verify_receipt(session, county, wire)
    own = session.config.station_id
    with session.store.writing():
        row = session.db.execute_sql(
            "SELECT hash FROM event WHERE station = ? AND seq = ?", (own, r.seq)
        ).fetchone()
        if row is None or row[0] != r.head:
            raise ProtocolError(
                "fork",
                f"县中心回执与本站第{r.seq}条记录不符（县中心保存的可能是另一台电脑用同一身份上传的记录）。"
                "已暂停上传，请联系县中心核查",
            )
        acked = I.acked(session)
        if r.seq > acked:
            session.db.execute_sql(
                "UPDATE event SET synced = 1 WHERE station = ? AND synced = 0 AND seq <= ?", (own, r.seq)
            )
            session.store.set_meta(I.ACKED, str(r.seq))
            session.store.set_meta(I.RECEIPT, json.dumps(r.wire, ensure_ascii=False))
        raw = session.store.meta(I.PUSH_FROM)
        if r.seq >= acked:  # caught up with what we had receipts for: back to acked + 1
            I.delete(session, I.PUSH_FROM)
        elif raw is None or int(raw) < r.seq + 1:  # resending below acked after a gap
            session.store.set_meta(I.PUSH_FROM, str(r.seq + 1))
    return r.seq


def set_gap(session, send_from: Any) -> None:
    head = session.store.head()[0]
    if type(send_from) is not int:
        raise ProtocolError("malformed", "县中心要求补传，但没有说明从哪一条开始")
    if send_from > head + 1:
        raise ProtocolError(
            "gap",
            f"县中心已有本站第{send_from - 1}条为止的记录，比本机还多（本机数据可能是从旧备份恢复的）。"
            "为避免记录冲突已暂停上传，请立即联系县中心",
        )
    log.info("push gap: station=%s send_from=%d head=%d", session.config.station_id[:8], send_from, head)
    with session.store.writing():
        if send_from == I.acked(session) + 1:
            I.delete(session, I.PUSH_FROM)
        else:
            session.store.set_meta(I.PUSH_FROM, str(max(1, send_from)))


def block(session, code: str, reason: str, first: int, last: int) -> None:
    log.warning("push blocked: station=%s seq=%d-%d code=%s", session.config.station_id[:8], first, last, code)
    with session.store.writing():
        I.set_json(
            session,
            I.BLOCKED,
            {"error": code, "reason": reason, "first": first, "last": last, "at": clock.iso(clock.now())},
        )


def revoked_stop(ctx: Ctx, reason: str) -> Stop:
    I.set_revoked(ctx.session, reason, source="county", at=clock.iso(clock.now()))
    ctx.report.note(I.Revoked(reason).message, REVOKED)
    return Stop()


def batch_size(session) -> int:
    return max(MIN_BATCH, min(MAX_BATCH, I.int_meta(session, I.BATCH, MAX_BATCH)))


def set_batch(session, n: int) -> None:
    n = max(MIN_BATCH, min(MAX_BATCH, n))
    if n != batch_size(session) or session.store.meta(I.BATCH) is None:
        with session.store.writing():
            session.store.set_meta(I.BATCH, str(n))


@dataclass
class Answer:
    status: str  # stored | duplicate | refused
    receipt: Any = None
    error: str = ""
    reason: str = ""
    send_from: Any = None
    retry: bool = False
    seq: Any = None  # the event the refusal names, if it names one


def parse_result(raw: Any) -> Answer:
    if not isinstance(raw, dict) or raw.get("status") not in ("stored", "duplicate", "refused"):
        raise ServerFault("县中心的上传结果格式不正确")
    if raw["status"] == "refused":
        reason = raw.get("reason") if isinstance(raw.get("reason"), str) else ""
        return Answer(
            "refused",
            error=str(raw.get("error", "")),
            reason=reason or "县中心拒收（未说明原因）",
            send_from=raw.get("send_from"),
            retry=bool(raw.get("retry")),
            seq=raw.get("seq"),
        )
    return Answer(raw["status"], receipt=raw.get("receipt"))


# -- our own chain ----------------------------------------------------------------------------------------


def push_own(ctx: Ctx) -> None:
    session, report = ctx.session, ctx.report
    blocked = I.blocked(session)
    if blocked:
        report.note(f"本站记录暂停上传：{blocked.get('reason')}（处理后可运行 station sync --retry 重试）")
        return
    total = pending_own(session)
    done = 0
    ctx.tick(STAGE_PUSH, 0, total)
    timeouts = 0
    batch = batch_size(session)
    for _ in range(100_000):  # bounded: every round sends, or ends the loop
        head = session.store.head()[0]
        first = next_seq(session)
        if first > head:
            break
        seg = build_segments(session, ctx.key, ctx.county.code, first, batch=batch, limit_events=batch)[0]
        last = first + len(seg["e"]) - 1
        try:
            answer = ctx.client.push(lambda seg=seg: seal_push(ctx, [seg]))
        except Offline as e:
            if e.timeout and len(seg["e"]) > MIN_BATCH and timeouts < MAX_TIMEOUT_RETRIES:
                timeouts += 1
                batch = max(MIN_BATCH, len(seg["e"]) // 2)  # half of what was sent, not of the cap
                set_batch(session, batch)
                continue
            raise
        except ProtocolError as e:
            if _whole_request_refused(ctx, e):
                batch = max(MIN_BATCH, len(seg["e"]) // 2)
                set_batch(session, batch)
                continue
            return
        results = answer["results"]
        if len(results) != 1:
            raise ServerFault("县中心的上传结果条数与上传的段数不符")
        res = parse_result(results[0])
        if res.status in ("stored", "duplicate"):
            try:
                seq = apply_receipt(session, ctx.county, res.receipt)
            except ProtocolError as e:
                block(session, e.code, e.message, first, last)
                report.note(e.message)
                return
            if seq < first:  # a receipt that acknowledges nothing we sent: do not loop forever
                report.note("县中心回执没有确认本次上传的记录，已停止上传，稍后再试")
                return
            newly = max(0, seq - max(first - 1, 0))
            done = min(total, done + newly) if total else done
            report.pushed += newly
            ctx.tick(STAGE_PUSH, done, total)
            if (
                len(seg["e"]) == batch and batch < MAX_BATCH and not timeouts
            ):  # grow back, not after a timeout
                batch = min(MAX_BATCH, batch + max(MIN_BATCH, batch // 4))
                set_batch(session, batch)
            continue
        if res.error == "gap":
            try:
                set_gap(session, res.send_from)
            except ProtocolError as e:
                block(session, e.code, e.message, first, last)
                report.note(e.message)
                return
            continue
        if res.error == "revoked":
            raise revoked_stop(ctx, res.reason)
        if res.error == "too_large" and len(seg["e"]) > MIN_BATCH:
            batch = max(MIN_BATCH, len(seg["e"]) // 2)
            set_batch(session, batch)
            continue
        if res.retry or res.error == "rate":
            log.info("push deferred: seq=%d-%d code=%s", first, last, res.error)
            report.note(f"本站第{first}–{last}条记录这次未被接收：{res.reason}。下次同步会自动重传")
            return
        block(session, res.error, res.reason, first, last)
        report.note(
            f"本站第{first}–{last}条记录被县中心拒收：{res.reason}。已暂停上传本站记录，"
            "下载不受影响；请联系县中心处理"
        )
        return


def _whole_request_refused(ctx: Ctx, e: ProtocolError) -> bool:
    """A refusal of the whole request. True: shrink the batch and try again; False: stop pushing."""
    log.warning("push request refused: code=%s", e.code)
    if e.code == "revoked":
        raise revoked_stop(ctx, e.message)
    if e.code == "too_large":
        return batch_size(ctx.session) > MIN_BATCH
    if e.code == "rate":
        ctx.report.note(f"{e.message}。本次未上传的记录下次同步会自动重传")
    else:
        ctx.report.note(f"县中心拒收了本次上传：{e.message}")
    return False


__all__ = ["push_own", "apply_receipt", "pending_own", "build_segments", "OFFLINE", "REFUSED"]
