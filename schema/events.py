"""The event envelope (DESIGN.md §4): every change anyone makes is one event.

Events are appended to the log of the station where they were made and never
edited. Each station's log is a hash chain: ``prev`` is the hash of the same
station's previous event, ``hash`` is SHA-256 of the canonical encoding of all
other fields. Folding order everywhere is :attr:`Event.order` =
``(hlc, station, seq)``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from schema import canonical

GENESIS = ""  # ``prev`` of a station's first event

# Event kinds. Each case kind has its rule object in schema/rules/actions/
CASE_REGISTERED = "case.registered"
CASE_ACCEPTED = "case.accepted"
CASE_NOTIFIED_MISSING = "case.notified_missing"
CASE_SUPPLEMENTED = "case.supplemented"
CASE_LAPSED = "case.lapsed"
CASE_REFUSED = "case.refused"
CASE_FORWARDED = "case.forwarded"
CASE_RETURNED = "case.returned"
CASE_SPECIAL_STARTED = "case.special_started"
CASE_SPECIAL_ENDED = "case.special_ended"
CASE_CO_OPINION = "case.co_opinion"
CASE_DECIDED = "case.decided"
CASE_DELIVERED = "case.delivered"
CASE_RATED = "case.rated"
CASE_VOIDED = "case.voided"
CASE_ID_VIEWED = "case.id_viewed"  # audit: someone displayed a full ID number
CASE_PRINTED = "case.printed"  # a document was handed to the applicant (补打 when printed again)
CASE_RECEIVED = "case.received"  # 接件 at the level a case was forwarded to
CASE_PUBLICITY_STARTED = "case.publicity_started"
CASE_PUBLICITY_ENDED = "case.publicity_ended"
CASE_CO_DISPATCHED = "case.co_dispatched"  # 联办: sent to the co-handling departments
CASE_VOID_REQUESTED = "case.void_requested"
CASE_VOID_APPROVED = "case.void_approved"
CASE_VOID_REJECTED = "case.void_rejected"
CASE_RECTIFY_VERIFIED = "case.rectify_verified"  # 差评整改: 核实
CASE_RECTIFY_CLOSED = "case.rectify_closed"  # 差评整改: 整改结果

# Registers that are not cases but travel and count like them (their subject is their own id).
CONSULT_RECORDED = "consult.recorded"  # 咨询
COMPLAINT_FILED = "complaint.filed"  # 投诉
COMPLAINT_FORWARDED = "complaint.forwarded"
COMPLAINT_ANSWERED = "complaint.answered"

USER_ADDED = "user.added"
USER_DISABLED = "user.disabled"
USER_PIN_RESET = "user.pin_reset"
USER_DELEGATED = "user.delegated"  # A岗 absent: B岗 stands in for a period
STATION_INITIALISED = "station.initialised"
STATION_ENROLLED = "station.enrolled"  # county-published: the station registry
STATION_REVOKED = "station.revoked"  # county-published: a station may no longer sync
CATALOG_PUBLISHED = "catalog.published"
CALENDAR_SET = "calendar.set"

ENVELOPE_FIELDS = ("id", "station", "seq", "prev", "at", "hlc", "actor", "role", "org", "kind", "subject", "body")


@dataclass(frozen=True, slots=True)
class Event:
    id: str
    station: str
    seq: int
    prev: str
    at: str  # station wall clock, ISO 8601 with offset
    hlc: int
    actor: str  # user id
    role: str  # the actor's role when acting (schema.org.Role value)
    org: str  # the 12-digit code of the org the actor acted for
    kind: str
    subject: str
    body: dict[str, Any] = field(default_factory=dict)
    hash: str = ""

    @property
    def order(self) -> tuple[int, str, int]:
        return (self.hlc, self.station, self.seq)

    def unsigned(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in ENVELOPE_FIELDS}

    def canonical(self) -> bytes:
        return canonical.encode(self.unsigned())

    def compute_hash(self) -> str:
        return canonical.sha256_hex(self.canonical())

    def to_dict(self) -> dict[str, Any]:
        d = self.unsigned()
        d["hash"] = self.hash
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, verify: bool = True) -> Event:
        ev = cls(**{name: d[name] for name in (*ENVELOPE_FIELDS, "hash")})
        if verify and ev.compute_hash() != ev.hash:
            raise ValueError(f"event {ev.id}: hash does not match its content")
        return ev


def seal(**fields: Any) -> Event:
    """Build an event and compute its hash."""
    ev = Event(**fields)
    return Event(**{**{n: getattr(ev, n) for n in ENVELOPE_FIELDS}, "hash": ev.compute_hash()})


class ChainError(ValueError):
    pass


def verify_chain(events: Iterable[Event], *, prev: str = GENESIS, start_seq: int = 1) -> str:
    """Check that ``events`` (one station, ascending seq) form an unbroken chain.

    Returns the head hash. Raises :class:`ChainError` at the first break.
    """
    expected = start_seq
    station = None
    for ev in events:
        if station is None:
            station = ev.station
        elif ev.station != station:
            raise ChainError(f"event {ev.id} belongs to station {ev.station}, expected {station}")
        if ev.seq != expected:
            raise ChainError(f"station {ev.station}: expected seq {expected}, found {ev.seq}")
        if ev.prev != prev:
            raise ChainError(f"station {ev.station} seq {ev.seq}: prev does not link to the previous event")
        if ev.compute_hash() != ev.hash:
            raise ChainError(f"station {ev.station} seq {ev.seq}: hash does not match content")
        prev = ev.hash
        expected += 1
    return prev
