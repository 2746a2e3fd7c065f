"""The station's event store: append to the hash-chained log and update the
projections in the same transaction (DESIGN.md §4).

Only this module writes the ``event`` and ``quarantine`` tables. Every local
event is checked by the case rules before it is appended, so a refused action
never reaches the log; events received from other stations are stored as they
are and become conflicts on the case if they break a rule. Received events the
sync layer does not admit (``station.replication.admission``: authority, clock),
and foreign events displaced by the county's copy, are *set aside* in
``quarantine`` with their reason: kept, never folded.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from peewee import IntegrityError

from schema import events as K
from schema import hlc as HLC
from schema.authority import claim_problem
from schema.errors import TransitionError, UserError
from schema.events import GENESIS, Event, seal
from schema.ids import new_id
from schema.org import Role
from station import clock
from station.projections import registers
from station.projections.authors import Authors
from station.projections.cases import CaseProjection
from station.projections.directory import DirectoryProjection
from station.projections.registers import RegisterProjection
from station.replication import registry
from station.store.db import translate_errors

log = logging.getLogger(__name__)

EVENT_COLUMNS = "id, station, seq, prev, at, hlc, actor, role, org, kind, subject, body, hash"
REPAIR = "repair.authority"  # set by migration 0005: finish_upgrade() has work to do
REPLACED = "与县中心保存的同一条记录不同，已按县中心的记录为准"


@dataclass(frozen=True, slots=True)
class Actor:
    user_id: str
    role: Role
    org: str
    name: str = ""


def body_json(body: dict[str, Any]) -> str:
    return json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def row_to_event(row: tuple) -> Event:
    i, st, seq, prev, at, hlc, actor, role, org, kind, subject, body, h = row
    return Event(i, st, seq, prev, at, hlc, actor, role, org, kind, subject, json.loads(body), h)


@dataclass
class IngestCounts:
    received: int = 0
    new: int = 0
    own: int = 0  # this station's own events (never re-ingested)
    known: int = 0  # already in the log (or repeated in the batch)
    rejected: int = 0  # (station, seq) already held by another event: a foreign fork, not stored
    replaced: list[Event] = field(default_factory=list)  # our copies displaced by the county's (authoritative)


class Store:
    """``org`` is this station's own org: the fold takes every event's org from its station's
    registration (own events: ``org``; others: the registry), never from the event itself."""

    def __init__(self, db, station_id: str, org: str | None = None) -> None:
        self.db = db
        self.station_id = station_id
        self.org = org
        self._orgs: dict[str, str] | None = None
        self.authors = Authors(db, self.org_of)
        self.cases = CaseProjection(db, self.authors)
        self.registers = RegisterProjection(db, self.authors)
        self.directory = DirectoryProjection(db)
        self._txn_depth = 0
        self._head: tuple[int, str] | None = None
        self._hlc = 0
        self.last_ingest = IngestCounts()

    # -- writing ---------------------------------------------------------------

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """One write transaction; nested calls join the outer one.

        IMMEDIATE takes the write lock at once, so the head we read cannot be
        moved by another process (the UI and the CLI may share a data dir).
        """
        if self._txn_depth:
            self._txn_depth += 1
            try:
                yield
            finally:
                self._txn_depth -= 1
            return
        with translate_errors(), self.db.atomic("IMMEDIATE"):
            self._txn_depth = 1
            self._orgs = None  # the registry may have changed since the last transaction
            try:
                if self.cases.check_fresh():  # another connection (a sync thread) may have written
                    self.authors.forget()
                self._head = self._read_head()
                self._hlc = int(self.meta("hlc") or 0)
                yield
                self.set_meta("hlc", str(self._hlc))
            except BaseException:
                self.cases.forget_cache()
                raise
            finally:
                self._txn_depth = 0
                self._head = None

    def record(
        self, actor: Actor, kind: str, subject: str, body: dict[str, Any], *, at: datetime | None = None
    ) -> Event:
        """Append one local event (checked against the case rules first)."""
        with self.writing():
            assert self._head is not None
            seq, prev = self._head
            now = at or clock.now()
            if clock.ms(now) < HLC.EARLIEST_MS:  # a dead CMOS battery: the county would refuse it for good
                raise UserError(
                    f"电脑的日期是 {clock.iso(now)[:10]}，早于2020年，不对。请先把电脑的日期和时间改对，再办理业务"
                )
            self._hlc = HLC.tick(self._hlc, clock.ms(now))
            ev = seal(
                id=new_id(clock.ms(now)),
                station=self.station_id,
                seq=seq + 1,
                prev=prev,
                at=clock.iso(now),
                hlc=self._hlc,
                actor=actor.user_id,
                role=actor.role.value,
                org=actor.org,
                kind=kind,
                subject=subject,
                body=body,
            )
            problem = claim_problem(ev, self.org) if self.org else None
            if problem is not None:  # e.g. an account from before roles were bound to the station's level
                raise TransitionError(f"不能保存：{problem}。请由本站管理员处理")
            self._project(ev, strict=True)
            self._insert([ev])
            self._head = (ev.seq, ev.hash)
            return ev

    def ingest(self, events: Iterable[Event], *, authoritative: bool = False, ref_ms: int | None = None) -> int:
        """Store events made elsewhere (sync, bundles). Returns how many were new.

        Own events and ids already in the log are skipped; the rest are stored as
        they are and projected non-strictly (a rule they break becomes a conflict
        on the case). Works in batches: one id look-up per 900 events, one
        ``executemany`` insert, and each case touched is saved once per call (its
        new events applied in order, or the case refolded from the log when they
        arrive late). Joins an outer :meth:`writing` transaction, so a caller can
        store a sync cursor atomically with the events. ``last_ingest`` holds the
        counts of the latest call.

        Another station's event at a (station, seq) we already hold with other content is a
        fork of that station's chain: normally the one we hold stays. ``authoritative`` (a
        county-signed page: the county's copy is what every replica will hold) displaces ours
        instead: it is set aside with the reason and its cases are refolded
        (``last_ingest.replaced``).

        ``ref_ms``: the county's time the events were admitted against (a pulled page's ``now``).
        Our clock may follow them that far: a local event must sort after every event it folds
        onto, even on a PC whose clock is behind the county's.
        """
        counts = IngestCounts()
        with self.writing():
            seen: set[str] = set()
            candidates: list[Event] = []
            for ev in events:
                counts.received += 1
                if ev.station == self.station_id:
                    counts.own += 1
                elif ev.id in seen:
                    counts.known += 1
                else:
                    seen.add(ev.id)
                    candidates.append(ev)
            known = self._known_ids([e.id for e in candidates])
            fresh = sorted((e for e in candidates if e.id not in known), key=lambda e: e.order)
            counts.known += len(candidates) - len(fresh)
            refold: set[str] = set()
            if fresh:
                inserted = self._insert(fresh, ignore=True)
                if inserted != len(fresh):
                    # Another event already holds (station, seq): a foreign fork. Never let one bad
                    # event block the rest: it is counted and not projected — unless the county says
                    # otherwise (authoritative), then its copy replaces ours.
                    stored = self._known_ids([e.id for e in fresh])
                    lost = [e for e in fresh if e.id not in stored]
                    won = self._displace(lost, counts, refold) if authoritative else []
                    counts.rejected = len(lost) - len(won)
                    stored |= {e.id for e in won}
                    fresh = [e for e in fresh if e.id in stored]
                if fresh:
                    local = clock.ms(clock.now())
                    ref = local if ref_ms is None else max(local, ref_ms)
                    self._hlc = HLC.receive(self._hlc, max(e.hlc for e in fresh), ref)
                    self._project_batch(fresh)
            if refold:
                self.cases.refold(sorted(refold), events_of_many=self.case_events_many)
            counts.new = len(fresh)
        self.last_ingest = counts
        return counts.new

    def _displace(self, lost: list[Event], counts: IngestCounts, refold: set[str]) -> list[Event]:
        """Replace our copies of other stations' events at the same (station, seq) by ``lost``."""
        won = []
        for ev in lost:
            row = self.db.execute_sql(
                f"SELECT {EVENT_COLUMNS} FROM event WHERE station = ? AND seq = ?", (ev.station, ev.seq)
            ).fetchone()
            if row is None or ev.station == self.station_id:
                continue  # our own chain is never replaced (a fork of it stops our push instead)
            ours = row_to_event(row)
            self.set_aside([(ours, REPLACED)], "replaced")
            self.db.execute_sql("DELETE FROM event WHERE id = ?", (ours.id,))
            self._insert([ev])
            counts.replaced.append(ours)
            refold.update(e.subject for e in (ours, ev) if e.kind.startswith("case."))
            won.append(ev)
        return won

    def set_aside(self, items: list[tuple[Event, str]], source: str) -> int:
        """Keep received events that are not admitted (or were displaced) in ``quarantine``, with why.

        ``source``: pull, return, relay, replaced, upgrade. An event already set aside stays as it was.
        """
        if not items:
            return 0
        now = clock.iso(clock.now())
        cur = self.db.cursor()
        cur.executemany(
            f"INSERT OR IGNORE INTO quarantine ({EVENT_COLUMNS}, reason, source, set_aside_at) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            [
                (e.id, e.station, e.seq, e.prev, e.at, e.hlc, e.actor, e.role, e.org, e.kind, e.subject,
                 body_json(e.body), e.hash, reason, source, now)
                for e, reason in items
            ],
        )
        return cur.rowcount

    def withdraw(self, events: list[Event], reason: str, source: str) -> int:
        """Set aside other stations' events we hold (the county refused them); refold their cases."""
        with self.writing():
            held = self._known_ids([e.id for e in events if e.station != self.station_id])
            gone = [e for e in events if e.id in held]
            self.set_aside([(e, reason) for e in gone], source)
            for e in gone:
                self.db.execute_sql("DELETE FROM event WHERE id = ?", (e.id,))
            cases = sorted({e.subject for e in gone if e.kind.startswith("case.")})
            if cases:
                self.cases.refold(cases, events_of_many=self.case_events_many)
        return len(gone)

    def finish_upgrade(self) -> None:
        """Once after migration 0005, when the station's own id and org are known.

        Foreign events beyond the clock bound at this moment (``schema.hlc``; the county's own
        chain excepted) are moved to ``quarantine`` (a user they added is removed again), the
        cases they touched and every case whose events claim another org than their station's
        are refolded, and the ``hlc`` meta is recomputed from what remains.
        """
        if self.meta(REPAIR) is None:
            return
        with self.writing():
            if self.meta(REPAIR) is None:
                return
            county = registry.county_station(self.db)
            now = clock.ms(clock.now())
            bad = []
            for ev in self.events():
                if ev.station in (self.station_id, county):
                    continue
                problem = HLC.clock_problem(ev.hlc, ev.at, now, ref_name="本机时间")
                if problem is not None:
                    bad.append((ev, problem.reason))
            self.set_aside(bad, "upgrade")
            refold = set()
            for ev, _ in bad:
                self.db.execute_sql("DELETE FROM event WHERE id = ?", (ev.id,))
                if ev.kind.startswith("case."):
                    refold.add(ev.subject)
                elif ev.kind == K.USER_ADDED:
                    self.db.execute_sql(
                        "DELETE FROM user WHERE user_id = ? AND station = ? AND added_seq = ?",
                        (ev.subject, ev.station, ev.seq),
                    )
            rows = self.db.execute_sql(
                "SELECT DISTINCT e.subject FROM event e LEFT JOIN registry r ON r.station = e.station "
                "WHERE e.kind LIKE 'case.%' AND e.org != coalesce(CASE WHEN e.station = ? THEN ? ELSE r.org END, '')",
                (self.station_id, self.org or ""),
            ).fetchall()
            refold.update(r[0] for r in rows)
            if refold:
                self.cases.refold(sorted(refold), events_of_many=self.case_events_many)
            top = self.db.execute_sql("SELECT max(hlc) FROM event").fetchone()[0]
            self._hlc = int(top or 0)
            self.db.execute_sql("DELETE FROM meta WHERE key = ?", (REPAIR,))

    def _known_ids(self, ids: list[str]) -> set[str]:
        known: set[str] = set()
        for i in range(0, len(ids), 900):
            chunk = ids[i : i + 900]
            rows = self.db.execute_sql(
                f"SELECT id FROM event WHERE id IN ({','.join('?' * len(chunk))})", chunk
            ).fetchall()
            known.update(r[0] for r in rows)
        return known

    def _project_batch(self, evs: list[Event]) -> None:
        """Project foreign events already inserted in the log (sorted by order)."""
        by_case: dict[str, list[Event]] = {}
        calendar = False
        stations: list[str] = []
        for ev in evs:
            if ev.kind.startswith("case."):
                by_case.setdefault(ev.subject, []).append(ev)
                continue
            try:
                if ev.kind in registers.KINDS:
                    self.registers.apply(ev, strict=False, events_of=self.subject_events)
                    continue
                self.directory.apply(ev)
                if ev.kind == K.USER_ADDED:
                    self.authors.forget()
            except (KeyError, TypeError, ValueError, AttributeError, IntegrityError):
                # Authentic but malformed (the county stores what stations send): the event is
                # kept in the log; one bad body must never block the rest of a sync.
                log.warning("event %s (%s): body not projected", ev.id, ev.kind)
                continue
            if ev.kind == K.CALENDAR_SET:
                calendar = True
            elif ev.kind in registry.KINDS and ev.subject not in stations:
                stations.append(ev.subject)
        if calendar:
            self.cases.calendar_changed()
        for station in stations:
            registry.rebuild(self.db, station, self.station_id)
        if stations:
            self._orgs = None
        if by_case:
            self.cases.apply_batch(by_case, events_of_many=self.case_events_many)

    def _project(self, ev: Event, *, strict: bool) -> None:
        if ev.kind.startswith("case."):
            self.cases.apply(ev, strict=strict, events_of=self.case_events)
        elif ev.kind in registers.KINDS:
            self.registers.apply(ev, strict=strict, events_of=self.subject_events)
        else:
            self.directory.apply(ev)
            if ev.kind == K.USER_ADDED:
                self.authors.forget()
            if ev.kind == K.CALENDAR_SET:
                self.cases.calendar_changed()

    def _insert(self, evs: list[Event], *, ignore: bool = False) -> int:
        cur = self.db.cursor()
        verb = "INSERT OR IGNORE" if ignore else "INSERT"
        cur.executemany(
            f"{verb} INTO event ({EVENT_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            [
                (e.id, e.station, e.seq, e.prev, e.at, e.hlc, e.actor, e.role, e.org, e.kind, e.subject,
                 body_json(e.body), e.hash)
                for e in evs
            ],
        )
        return cur.rowcount

    def _read_head(self) -> tuple[int, str]:
        row = self.db.execute_sql(
            "SELECT seq, hash FROM event WHERE station = ? ORDER BY seq DESC LIMIT 1", (self.station_id,)
        ).fetchone()
        return (row[0], row[1]) if row else (0, GENESIS)

    # -- reading ---------------------------------------------------------------

    def org_of(self, station: str) -> str | None:
        """The enrolled org of ``station`` (this one: its own org; None if not registered here)."""
        if station == self.station_id:
            return self.org
        if self._orgs is None:
            self._orgs = registry.orgs(self.db)
        return self._orgs.get(station)

    def head(self) -> tuple[int, str]:
        with translate_errors():
            return self._read_head()

    def has_event(self, event_id: str) -> bool:
        return self.db.execute_sql("SELECT 1 FROM event WHERE id = ?", (event_id,)).fetchone() is not None

    def case_events(self, case_id: str) -> list[Event]:
        rows = self.db.execute_sql(
            f"SELECT {EVENT_COLUMNS} FROM event WHERE subject = ? ORDER BY hlc, station, seq", (case_id,)
        ).fetchall()
        return [row_to_event(r) for r in rows]

    def subject_events(self, subject: str) -> list[Event]:
        """Every event about ``subject`` (a complaint, a case …) in folding order."""
        return self.case_events(subject)

    def case_events_many(self, case_ids: list[str]) -> dict[str, list[Event]]:
        """The case events of several cases, each list in folding order."""
        out: dict[str, list[Event]] = {cid: [] for cid in case_ids}
        for i in range(0, len(case_ids), 500):
            chunk = case_ids[i : i + 500]
            rows = self.db.execute_sql(
                f"SELECT {EVENT_COLUMNS} FROM event WHERE subject IN ({','.join('?' * len(chunk))}) "
                "AND kind LIKE 'case.%'",
                chunk,
            ).fetchall()
            for r in rows:
                out[r[10]].append(row_to_event(r))
        for evs in out.values():
            evs.sort(key=lambda e: e.order)
        return out

    def events(self, station: str | None = None, after_seq: int = 0, batch: int = 5000) -> Iterator[Event]:
        """All events (or one station's, from ``after_seq``), in log order, streamed in batches."""
        last = 0
        while True:
            with translate_errors():
                if station is None:
                    rows = self.db.execute_sql(
                        f"SELECT rowid, {EVENT_COLUMNS} FROM event WHERE rowid > ? ORDER BY rowid LIMIT ?",
                        (last, batch),
                    ).fetchall()
                else:
                    rows = self.db.execute_sql(
                        f"SELECT seq, {EVENT_COLUMNS} FROM event WHERE station = ? AND seq > ? "
                        "ORDER BY seq LIMIT ?",
                        (station, max(last, after_seq), batch),
                    ).fetchall()
            if not rows:
                return
            for r in rows:
                yield row_to_event(r[1:])
            last = rows[-1][0]

    def set_aside_count(self) -> int:
        return self.db.execute_sql("SELECT count(*) FROM quarantine").fetchone()[0]

    def set_aside_recent(self, limit: int = 5) -> list[dict[str, Any]]:
        """The latest events set aside: station, seq, kind, reason, source, when."""
        rows = self.db.execute_sql(
            "SELECT station, seq, kind, reason, source, set_aside_at FROM quarantine ORDER BY rowid DESC LIMIT ?",
            (limit,),
        ).fetchall()
        keys = ("station", "seq", "kind", "reason", "source", "at")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    def event_count(self) -> int:
        return self.db.execute_sql("SELECT count(*) FROM event").fetchone()[0]

    def meta(self, key: str) -> str | None:
        row = self.db.execute_sql("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute_sql("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def next_counter(self, key: str) -> int:
        """A gapless counter kept in the same transaction as the events that use it."""
        with self.writing():
            n = int(self.meta(key) or 0) + 1
            self.set_meta(key, str(n))
            return n
