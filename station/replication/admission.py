"""Which received events a station takes in: the county's authority and clock checks, again.

A signature proves which station made an event, not that it had the authority for it. The
county refuses at ingest what a station could not claim (``schema.authority``) and clocks
beyond the bound (``schema.hlc``); a station checks again everything it receives, with its
own copy of the station registry and of the users every station added:

- **Pull pages and return files** (:func:`screen`): county-signed, so the county's own chain
  is taken as it is; any other event that fails is *set aside* (``quarantine``, with the
  reason) and the rest of the page is stored — the cursor moves on, so one bad event never
  blocks the pull; the sync report and ``sync-status`` say what was skipped and why. The
  reference time is the county's, from the signed page.
- **Village segments a township relays** (:func:`check_segment`): all or nothing, as at the
  county: scope (``sync.scope``), clock (reference: this PC's clock) and authority. What the
  township cannot judge yet — a case or a user it has not received, a clock ahead of its own
  — is a ``retry`` refusal: the segment is relayed unverified and judged again after the next
  pull; anything else refuses the segment.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from schema import events as K
from schema import hlc as HLC
from schema.authority import Account, Ledger, referenced_users, target_of
from schema.events import Event
from station.replication import registry
from sync.errors import ProtocolError
from sync.scope import CREATION_KINDS, is_case, scope_of

LOCAL_CLOCK = "本机时间"
COUNTY_CLOCK = "县中心时间"


def ledger_for(db, events: list[Event]) -> Ledger:
    """A :class:`Ledger` holding the accounts ``events`` refer to (from the ``user`` projection)."""
    wanted = sorted(referenced_users(events))
    accounts = []
    for i in range(0, len(wanted), 500):
        chunk = wanted[i : i + 500]
        rows = db.execute_sql(
            "SELECT user_id, station, role, added_seq, disabled_seq FROM user "
            f"WHERE station != '' AND user_id IN ({','.join('?' * len(chunk))})",
            chunk,
        ).fetchall()
        accounts += [Account(*r) for r in rows]
    return Ledger(accounts)


@dataclass
class Screened:
    admitted: list[Event] = field(default_factory=list)
    refused: list[tuple[Event, str]] = field(default_factory=list)  # (event, Chinese reason)


def screen(session, events: list[Event], *, ref_ms: int, ref_name: str = COUNTY_CLOCK) -> Screened:
    """Split county-delivered events into those to store and those to set aside (in page order)."""
    store = session.store
    county = registry.county_station(session.db)
    out = Screened()
    foreign = [e for e in events if e.station not in (store.station_id, county)]
    ledger = ledger_for(session.db, foreign)
    for ev in events:
        if ev.station in (store.station_id, county):
            out.admitted.append(ev)  # ours are skipped by ingest; the county's chain is verified by the page
            continue
        reason = _problem(store, ledger, ev, ref_ms, ref_name)
        if reason is None:
            out.admitted.append(ev)
        else:
            out.refused.append((ev, reason))
    return out


def _problem(store, ledger: Ledger, ev: Event, ref_ms: int, ref_name: str) -> str | None:
    org = store.org_of(ev.station)
    if org is None:
        return "来自本站不知道的工作站（未在县中心登记）"
    clock = HLC.clock_problem(ev.hlc, ev.at, ref_ms, ref_name=ref_name)
    if clock is not None:
        return clock.reason
    return ledger.admit(ev, org)


def check_segment(session, org: str, events: list[Event], *, now_ms: int) -> None:
    """Raise ProtocolError unless a township may take in this village segment (``org``: its station's).

    ``retry`` in the error: this station cannot judge it yet (see the module docstring).
    """
    cases = _case_scopes(session.db, events)
    ledger = ledger_for(session.db, events)
    for ev in events:
        try:
            scope = scope_of(ev.kind, ev.subject, station_org=org, case_scope=cases.get(ev.subject))
        except ProtocolError as e:
            raise ProtocolError(e.code, f"第{ev.seq}条记录：{e.message}", seq=ev.seq, **e.detail) from None
        if ev.kind in CREATION_KINDS:
            cases.setdefault(ev.subject, scope)
        clock = HLC.clock_problem(ev.hlc, ev.at, now_ms, ref_name=LOCAL_CLOCK)
        if clock is not None:
            raise ProtocolError("clock", f"第{ev.seq}条记录：{clock.reason}", seq=ev.seq, retry=clock.ahead)
        unknown = _unknown_user(ledger, ev)
        reason = ledger.admit(ev, org)
        if reason is not None:
            raise ProtocolError("authority", f"第{ev.seq}条记录：{reason}", seq=ev.seq, retry=unknown)


def _unknown_user(ledger: Ledger, ev: Event) -> bool:
    """True if judging ``ev`` needs a user this station has not received (yet)."""
    if ev.seq > 2 and ev.actor not in ledger.accounts:
        return True
    target = target_of(ev) if ev.kind in (K.USER_DISABLED, K.USER_PIN_RESET) else None
    return target is not None and target not in ledger.accounts


# Where each scoped subject's scope is kept: the org it was created at.
_SCOPE_SOURCES = (
    "SELECT case_id, intake_org FROM case_view WHERE case_id IN ({})",
    "SELECT consult_id, org FROM consult WHERE consult_id IN ({})",
    "SELECT complaint_id, filed_org FROM complaint WHERE complaint_id IN ({})",
)


def _case_scopes(db, events: list[Event]) -> dict[str, str]:
    """subject → its scope, for the cases and 咨询/投诉 records this station holds."""
    wanted = sorted({e.subject for e in events if is_case(e.kind)})
    out: dict[str, str] = {}
    for i in range(0, len(wanted), 500):
        chunk = wanted[i : i + 500]
        marks = ",".join("?" * len(chunk))
        for sql in _SCOPE_SOURCES:
            out.update(db.execute_sql(sql.format(marks), chunk).fetchall())
    return out


def summary(refused: list[tuple[Event, str]], names: dict[str, str] | None = None) -> list[str]:
    """Chinese lines saying what was set aside and why (at most a few, then a count)."""
    lines = []
    for ev, reason in refused[:5]:
        who = (names or {}).get(ev.station) or f"工作站 {ev.station[:8]}"
        lines.append(f"{who} 的第{ev.seq}条记录未采用：{reason}")
    if len(refused) > 5:
        lines.append(f"另有 {len(refused) - 5} 条记录未采用（见 station sync-status）")
    return lines
