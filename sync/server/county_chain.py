"""The county's own hash chain: catalog versions, calendar overrides, the station registry.

County-published events are ordinary events (``actor="county-center"``, ``role="admin"``,
``org=<county code>``) on the county's own chain (gapless ``seq``, ``prev`` hash), with an
HLC that has also seen every pushed event's HLC, so a county event sorts after everything
the county had received when it was published — but never more than the drift bound past
the county's clock (``schema.hlc.receive``), whatever a station's head says. They are GLOBAL: every station pulls them.
:func:`append` runs inside the caller's write transaction, so the event and whatever it
records (a station row, a revocation …) are stored together or not at all.
"""

from __future__ import annotations

from typing import Any

from peewee import fn

from schema import hlc as HLC
from schema.events import Event, seal
from schema.ids import new_id
from sync.scope import GLOBAL
from sync.server.config import now_iso, now_ms
from sync.server.db import CountyDB, event_row, insert_events
from sync.server.keystore import County

ACTOR = "county-center"
ROLE = "admin"


def append(cdb: CountyDB, county: County, kind: str, subject: str, body: dict[str, Any]) -> Event:
    """Append one county event; call inside ``cdb.write()``."""
    S = cdb.m.Station
    row = cdb.lock_station(county.station)
    if row is None:
        raise RuntimeError("the county's own station row is missing")
    seen = S.select(fn.MAX(S.head_hlc)).scalar() or 0
    ms = now_ms()
    hlc = HLC.receive(row.head_hlc, seen, ms)
    ev = seal(
        id=new_id(ms),
        station=county.station,
        seq=row.head_seq + 1,
        prev=row.head_hash,
        at=now_iso(ms),
        hlc=hlc,
        actor=ACTOR,
        role=ROLE,
        org=county.code,
        kind=kind,
        subject=subject,
        body=body,
    )
    cdb.lock_log()
    insert_events(cdb, [event_row(ev, scope=GLOBAL, township="", received_at=ms)])
    S.update(head_seq=ev.seq, head_hash=ev.hash, head_hlc=ev.hlc, head_at=ev.at).where(
        S.id == county.station
    ).execute()
    return ev
