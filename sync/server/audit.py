"""The audit log of refusals, and alarms for a person to look at.

Neither ever holds an event body, a name or an ID number: only ids, codes, seqs,
hashes and the Chinese reason (which names fields and seqs, never their values).

Blame: an alarm names a station only when that station's own signature proved it sent
the input. Input that failed authentication (a forged signature, a replay) may name any
station it likes, so its alarm names the SOURCE — the remote address, or ``usb`` and the
station that relayed it — with the claimed station only in the detail, and is raised at
most once per source and kind every :data:`BLAME_INTERVAL_MS` (:func:`blame`).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from peewee import fn

from sync.server.config import now_ms
from sync.server.db import CountyDB

log = logging.getLogger("county_center")

ALARM_KINDS = {
    "fork": "链分叉",
    "clock": "时钟异常",
    "revoked": "已吊销工作站仍在同步",
    "signature": "签名不符",
    "conflict": "记录编号冲突",
    "replay": "重放的请求",
    "authority": "越权记录",
}
BLAME_INTERVAL_MS = 10 * 60 * 1000


def clean_text(text: str, limit: int) -> str:
    """Storable in any backend: no NUL, no lone surrogates (a client's strings can hold both)."""
    return text[:limit].replace("\x00", "").encode("utf-8", "replace").decode("utf-8")


def record_refusal(
    cdb: CountyDB, *, remote: str, station: str, endpoint: str, status: int, code: str, reason: str
) -> None:
    """Write one audit row in its own transaction; never raises (the refusal must still be answered)."""
    try:
        with cdb.write():
            cdb.m.Audit.create(
                at=now_ms(),
                remote=clean_text(remote, 64),
                station=clean_text(station, 64),
                endpoint=clean_text(endpoint, 64),
                status=status,
                code=clean_text(code, 32),
                reason=clean_text(reason, 500),
            )
    except Exception:  # noqa: BLE001 - auditing must not turn a refusal into a crash
        log.exception("could not write the audit log")


def raise_alarm(cdb: CountyDB, kind: str, station: str, *, source: str = "", **detail: Any) -> None:
    """Inside the caller's transaction."""
    cdb.m.Alarm.create(
        at=now_ms(),
        kind=kind,
        station=clean_text(station, 64),
        source=clean_text(source, 64),
        detail=json.dumps(detail),  # ASCII: any backend
    )


def alarm_now(cdb: CountyDB, kind: str, station: str, **detail: Any) -> None:
    """An alarm in its own transaction (after a refusal that rolled everything else back)."""
    try:
        with cdb.write():
            raise_alarm(cdb, kind, station, **detail)
    except Exception:  # noqa: BLE001
        log.exception("could not record an alarm")


def blame(cdb: CountyDB, kind: str, source: str, **detail: Any) -> None:
    """An alarm about unauthenticated input from ``source``: names no station, at most one per
    ``source`` and ``kind`` every :data:`BLAME_INTERVAL_MS` (so nobody can flood the alarm list)."""
    A = cdb.m.Alarm
    source = clean_text(source, 64)
    try:
        recent = (
            A.select(A.id)
            .where((A.source == source) & (A.kind == kind) & (A.at > now_ms() - BLAME_INTERVAL_MS))
            .exists()
        )
        if not recent:  # read first: a flood of forgeries takes no write lock (a race adds one alarm at most)
            with cdb.write():
                raise_alarm(cdb, kind, "", source=source, **detail)
    except Exception:  # noqa: BLE001 - an alarm must not turn a refusal into a crash
        log.exception("could not record an alarm")


def alarm_hourly(cdb: CountyDB, kind: str, station: str, **detail: Any) -> None:
    """:func:`alarm_now`, at most one of ``kind`` an hour per station (for what repeats every sync)."""
    A = cdb.m.Alarm
    try:
        last = A.select(fn.MAX(A.at)).where((A.station == station) & (A.kind == kind)).scalar()
    except Exception:  # noqa: BLE001 - an alarm must never turn a refusal into a crash
        log.exception("could not read the alarms")
        return
    if last is None or now_ms() - last > 3_600_000:
        alarm_now(cdb, kind, station, **detail)


def alarms(cdb: CountyDB, *, station: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
    A = cdb.m.Alarm
    q = A.select().order_by(A.id.desc()).limit(limit)
    if station:
        q = q.where(A.station == station)
    return [
        {
            "id": a.id,
            "at": a.at,
            "kind": a.kind,
            "label": ALARM_KINDS.get(a.kind, a.kind),
            "station": a.station,
            "source": a.source,
            "detail": json.loads(a.detail or "{}"),
        }
        for a in q
    ]


def audit_rows(cdb: CountyDB, *, limit: int = 200) -> list[dict[str, Any]]:
    A = cdb.m.Audit
    return [
        {
            "id": a.id,
            "at": a.at,
            "remote": a.remote,
            "station": a.station,
            "endpoint": a.endpoint,
            "status": a.status,
            "code": a.code,
            "reason": a.reason,
        }
        for a in A.select().order_by(A.id.desc()).limit(limit)
    ]
