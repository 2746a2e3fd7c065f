"""Bringing an older county database up to the current schema, once, in one transaction.

Version 1 → 2 (enrollment with a code-keyed MAC): ``enroll_code`` kept plain SHA-256 hashes of
the codes, which the new enrollment cannot use; the table is recreated (codes issued and not
used before the upgrade must be issued again).

Version 2 → 3 (authority and bounded clocks, replay window; docs/county-center.md "Upgrades"):

- ``staff`` gains ``added_seq`` and ``disabled_seq`` and is rebuilt from the log with the
  rules of ``schema.authority``: a user belongs to the first station that added it; only
  that station's ``user.disabled`` sets ``disabled_seq``.
- Station events stored before clocks were bounded whose HLC or ``at`` lies beyond the bound
  at the time of the upgrade (``schema.hlc.clock_problem``: negative, before 2020, more than
  a day ahead of the county's clock) are *quarantined*: flagged ``FLAG_QUARANTINED``, kept,
  never served to a pull, not counted in their station's ``head_hlc`` (which the county's own
  chain HLC follows); one ``clock`` alarm per station names them. The county's own chain is
  authentic and is never quarantined.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from schema import events as K
from schema import hlc as HLC
from sync.server.audit import raise_alarm
from sync.server.config import now_ms
from sync.server.db import FLAG_QUARANTINED, INSERT_CHUNK, SCHEMA_VERSION, CountyDB

log = logging.getLogger("county_center")
BATCH = 5000


def upgrade(cdb: CountyDB, county_station: str) -> bool:
    """Upgrade the schema if it is older than this program's; True if something was done."""
    if _version(cdb) >= SCHEMA_VERSION:
        return False
    with cdb.write():
        cdb.lock_log()  # PostgreSQL: one upgrader at a time (SQLite: the write lock)
        version = _version(cdb)
        if version >= SCHEMA_VERSION:
            return False
        if version < 2:
            _to_2(cdb)
        if version < 3:
            _to_3(cdb, county_station)
        cdb.set_meta("schema_version", str(SCHEMA_VERSION))
    return True


def _version(cdb: CountyDB) -> int:
    raw = cdb.get_meta("schema_version")
    return int(raw) if raw and raw.isdigit() else 1


def _to_2(cdb: CountyDB) -> None:
    cdb.database.drop_tables([cdb.m.EnrollCode])
    cdb.database.create_tables([cdb.m.EnrollCode])


def _add_column(cdb: CountyDB, table: str, column: str, sql_type: str) -> None:
    if column not in {c.name for c in cdb.database.get_columns(table)}:
        cdb.database.execute_sql(f'ALTER TABLE "{table}" ADD COLUMN "{column}" {sql_type}')


def _to_3(cdb: CountyDB, county_station: str) -> None:
    _add_column(cdb, "staff", "added_seq", "BIGINT NOT NULL DEFAULT 0")
    _add_column(cdb, "staff", "disabled_seq", "BIGINT")
    _add_column(cdb, "alarm", "source", "VARCHAR(64) NOT NULL DEFAULT ''")
    _add_column(cdb, "station", "cursor_at", "BIGINT NOT NULL DEFAULT 0")
    cdb.database.create_tables(cdb.m.all(), safe=True)  # request_nonce, recovery_request …
    E, S, St = cdb.m.Event, cdb.m.Station, cdb.m.Staff
    now = now_ms()
    quarantined: dict[str, list[int]] = {}
    staff: dict[str, dict[str, Any]] = {}
    last = 0
    while True:
        rows = list(
            E.select(E.pos, E.station, E.seq, E.hlc, E.kind, E.subject, E.data)
            .where(E.pos > last)
            .order_by(E.pos)
            .limit(BATCH)
            .tuples()
        )
        if not rows:
            break
        last = rows[-1][0]
        flag = []
        for pos, station, seq, hlc, kind, subject, data in rows:
            if station == county_station:
                continue
            doc = json.loads(data)
            if HLC.clock_problem(hlc, str(doc.get("at", "")), now) is not None:
                flag.append(pos)
                quarantined.setdefault(station, []).append(seq)
            elif kind in (K.USER_ADDED, K.USER_DISABLED):
                _staff_step(staff, kind, station, seq, hlc, subject, doc.get("body") or {})
        if flag:
            E.update(flags=E.flags.bin_or(FLAG_QUARANTINED)).where(E.pos.in_(flag)).execute()
    St.delete().execute()
    rows = list(staff.values())
    for i in range(0, len(rows), INSERT_CHUNK):
        St.insert_many(rows[i : i + INSERT_CHUNK]).execute()
    for station, seqs in quarantined.items():
        head = (
            E.select(E.hlc)
            .where((E.station == station) & (E.flags.bin_and(FLAG_QUARANTINED) == 0))
            .order_by(E.hlc.desc())
            .limit(1)
            .scalar()
        )
        S.update(head_hlc=head or 0).where(S.id == station).execute()
        raise_alarm(cdb, "clock", station, quarantined=len(seqs), first=min(seqs), last=max(seqs))
        log.warning("upgrade: quarantined %d events of station %s", len(seqs), station)


def _staff_step(
    staff: dict[str, dict[str, Any]], kind: str, station: str, seq: int, hlc: int, subject: str, body: Any
) -> None:
    body = body if isinstance(body, dict) else {}
    uid = str(body.get("user_id") or subject)[:200]
    row = staff.get(uid)
    if kind == K.USER_ADDED:
        if row is None:  # the first station to add a user id owns it
            staff[uid] = {
                "user_id": uid,
                "login": str(body.get("login", ""))[:200],
                "name": str(body.get("name", ""))[:200],
                "role": str(body.get("role", ""))[:32],
                "org": str(body.get("org", ""))[:32],
                "station": station,
                "disabled": False,
                "added_hlc": hlc,
                "added_seq": seq,
                "disabled_seq": None,
            }
        return
    if row is None:
        return
    row["disabled"] = True
    if row["station"] == station and (row["disabled_seq"] is None or seq < row["disabled_seq"]):
        row["disabled_seq"] = seq
