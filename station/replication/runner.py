"""``sync_now``: one complete sync with the county center.

Stages (each reported to ``progress(stage, done, total)``; ``total`` None when unknown):

1. 连接县中心 — only with ``probe`` or a new URL: ``/v1/health`` (is this our county?) and
   ``/v1/time``. Otherwise the county's time comes with the first pull page, and a sync with
   nothing to send is a single round trip (a wrong URL still fails cleanly: nothing sealed to
   our county can be opened there). The clock offset is stored at each sync.
2. 转交下级站记录 — a township relays the village segments it imported from USB.
3. 上传本站记录 — our own chain, from the last acknowledged seq, receipts applied as they come.
4. 下载县中心数据 — pages from the stored cursor, each verified, ingested with its cursor.
5. 为下级站取回数据 — a township fetches ``return`` envelopes for the villages it relays for.

Relayed segments go before our own: a township's action on a village case can only be accepted
once the village's registration has reached the county. A refusal in one step is reported with
its Chinese reason and the next steps still run (a blocked push never blocks the pull);
``revoked`` stops everything; losing the network stops the sync (what was done is kept). Every
attempt is written to ``sync_log``.
"""

from __future__ import annotations

import logging

from schema.errors import UserError
from station import clock
from station.replication import enroll, pull, push, relay, transport
from station.replication import identity as I
from station.replication.context import (
    ERROR,
    OFFLINE,
    OK,
    REFUSED,
    REVOKED,
    STAGE_CONNECT,
    STAGE_DONE,
    Ctx,
    Progress,
    Stop,
    SyncReport,
)
from station.replication.status import CLOCK_LIMIT_MS
from sync.client import Client, Offline, ServerFault, check_url
from sync.errors import ProtocolError

log = logging.getLogger("station.sync")

__all__ = ["sync_now", "SyncReport", "history"]


def _url(session, url: str | None) -> str:
    chosen = url or I.county_url(session)
    if not chosen:
        raise UserError("还不知道县中心的地址，请用 station sync --server 地址 指定（地址由县中心提供）")
    return check_url(chosen)


def record_clock(session, offset_ms: int) -> None:
    """Store the county time offset; flag own events recorded since the last check if it is off."""
    head = session.store.head()[0]
    with session.store.writing():
        previous = I.int_meta(session, I.CLOCK_HEAD, 0)
        session.store.set_meta(I.OFFSET, str(offset_ms))
        session.store.set_meta(I.OFFSET_AT, clock.iso(clock.now()))
        session.store.set_meta(I.CLOCK_HEAD, str(head))
        if abs(offset_ms) > CLOCK_LIMIT_MS and head > previous:
            session.db.execute_sql(
                "INSERT OR REPLACE INTO clock_flag (first, last, offset_ms, measured_at) VALUES (?, ?, ?, ?)",
                (previous + 1, head, offset_ms, clock.iso(clock.now())),
            )


def _start_log(session, started: str) -> int:
    with session.store.writing():
        session.db.execute_sql(
            "UPDATE sync_log SET outcome = 'interrupted', message = '同步中途中断（程序被关闭或断电）' "
            "WHERE outcome = 'running'"
        )
        cur = session.db.execute_sql(
            "INSERT INTO sync_log (started_at, outcome) VALUES (?, 'running')", (started,)
        )
        return cur.lastrowid


def _finish_log(session, log_id: int, report: SyncReport) -> None:
    with session.store.writing():
        session.db.execute_sql(
            "UPDATE sync_log SET finished_at = ?, outcome = ?, pushed = ?, relayed = ?, pulled = ?, returns = ?, "
            "bytes_sent = ?, bytes_received = ?, offset_ms = ?, message = ? WHERE id = ?",
            (
                report.finished_at,
                report.outcome,
                report.pushed,
                report.relayed,
                report.pulled,
                report.returns,
                report.bytes_sent,
                report.bytes_received,
                report.offset_ms,
                "；".join(report.messages),
                log_id,
            ),
        )
        session.store.set_meta(I.LAST_ATTEMPT, report.finished_at)
        if report.outcome in (OK, REFUSED):
            session.store.set_meta(I.LAST_OK, report.finished_at)
        if report.messages:
            session.store.set_meta(I.LAST_ERROR, "；".join(report.messages))
        else:
            I.delete(session, I.LAST_ERROR)


def _station_ms() -> int:
    return clock.ms(clock.now())


def _set_online(session, online: bool) -> None:
    with session.store.writing():
        session.store.set_meta(I.ONLINE, "1" if online else "0")


def _probe(ctx: Ctx) -> None:
    health = ctx.client.health()
    if health.get("county") != ctx.county.code:
        ctx.report.note(
            f"{ctx.client.base_url} 是另一个县的县中心（{health.get('county')}），本站登记在 "
            f"{ctx.county.code}。请核对县中心地址",
            REFUSED,
        )
        raise Stop()
    before = clock.ms(clock.now())
    t = ctx.client.time()
    ctx.report.offset_ms = int(t["ms"]) - (before + clock.ms(clock.now())) // 2
    _set_online(ctx.session, True)
    ctx.tick(STAGE_CONNECT, 1, 1)


def sync_now(
    session,
    client: Client | None = None,
    progress: Progress | None = None,
    *,
    url: str | None = None,
    retry_blocked: bool = False,
    probe: bool = False,
) -> SyncReport:
    """Push, relay, pull and fetch returns; never raises for network or county trouble.

    A sync with nothing to send is ONE round trip (the pull; the county's time comes with its
    first page). ``probe`` (implied by a new ``url``) first asks ``/v1/health`` and ``/v1/time``
    — is this really our county? — before anything is sent.

    Raises :class:`UserError` only when there is nothing to sync with (not enrolled, no URL).
    """
    key, county = I.require(session)
    report = SyncReport(started_at=clock.iso(clock.now()))
    rev = I.revoked(session)
    if rev:
        report.note(I.Revoked(rev.get("reason", "")).message, REVOKED)
        report.finished_at = clock.iso(clock.now())
        return report
    chosen = _url(session, url) if client is None else client.base_url
    if retry_blocked:
        with session.store.writing():
            I.delete(session, I.BLOCKED)
            session.db.execute_sql(
                "UPDATE relay_segment SET state = 'pending', error = '', reason = '' WHERE state = 'refused'"
            )
    own_client = client is None
    client = client or transport.client_for(session, chosen)
    notice = transport.plain_http_notice(session, client.base_url)
    if notice:
        report.notices.append(notice)
    # Signed requests carry county time: the station's clock corrected by the offset measured at
    # the last sync (a "skew" answer corrects it again at once, see sync.client).
    client.now_ms = _station_ms
    client.offset_ms = I.int_meta(session, I.OFFSET, 0)
    ctx = Ctx(session, client, key, county, report, progress)
    log_id = _start_log(session, report.started_at)
    try:
        ctx.tick(STAGE_CONNECT, 0, 1)
        if probe or url:
            _probe(ctx)
        if county.recovery_pub:
            enroll.ensure_recovery(session, county.recovery_pub)
        relay.push_relayed(ctx)
        push.push_own(ctx)
        pull.pull(ctx)
        if client.requests:
            _set_online(session, True)
        if report.offset_ms is not None:
            record_clock(session, report.offset_ms)
        if url and session.config.county_url != chosen and report.outcome != REVOKED:
            session.config.county_url = chosen
            session.data.save_config(session.config)
        relay.verify_pending(session)
        relay.fetch_returns(ctx)
    except Stop:
        pass
    except Offline as e:
        report.note(e.message, OFFLINE)
        _set_online(session, False)
    except ServerFault as e:
        report.note(e.message, ERROR)
    except ProtocolError as e:
        log.warning("sync stopped by the county: code=%s", e.code)
        if e.code == "revoked":
            I.set_revoked(session, e.message, source="county", at=clock.iso(clock.now()))
            report.note(I.Revoked(e.message).message, REVOKED)
        else:
            report.note(f"县中心拒绝：{e.message}", REFUSED)
    finally:
        report.bytes_sent, report.bytes_received = client.bytes_sent, client.bytes_received
        report.finished_at = clock.iso(clock.now())
        try:
            _finish_log(session, log_id, report)
        finally:
            if own_client:
                client.close()
    ctx.tick(STAGE_DONE, 1, 1)
    log.info(
        "sync %s: station=%s pushed=%d relayed=%d pulled=%d returns=%d sent=%d received=%d offset_ms=%s problems=%d",
        report.outcome, session.config.station_id[:8], report.pushed, report.relayed, report.pulled,
        report.returns, report.bytes_sent, report.bytes_received, report.offset_ms, len(report.messages),
    )
    return report


def history(session, limit: int = 50) -> list[dict]:
    """The latest sync attempts, newest first (the sync screen's history)."""
    rows = session.db.execute_sql(
        "SELECT id, started_at, finished_at, outcome, pushed, relayed, pulled, returns, bytes_sent, "
        "bytes_received, offset_ms, message FROM sync_log ORDER BY id DESC LIMIT ?",
        (limit,),
    ).fetchall()
    keys = (
        "id",
        "started_at",
        "finished_at",
        "outcome",
        "pushed",
        "relayed",
        "pulled",
        "returns",
        "bytes_sent",
        "bytes_received",
        "offset_ms",
        "message",
    )
    return [dict(zip(keys, r, strict=True)) for r in rows]
