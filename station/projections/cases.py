"""The case projection: one ``case_view`` row per case plus its search terms.

Kept current inside the append transaction. Events that arrive in order are
applied incrementally; an event that sorts before the case's last folded
event (a late sync) makes the case refold from all its events, so every
replica with the same events holds the same rows (DESIGN.md §4).
"""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import asdict, fields
from datetime import date, timedelta

from schema import lifecycle
from schema.case import CaseView, Conflict, State
from schema.events import Event
from schema.lifecycle import Who
from schema.workdays import TimeUnit, WorkCalendar
from station.search import case_terms

log = logging.getLogger(__name__)

CACHE_SIZE = 4096
_MALFORMED = (KeyError, TypeError, ValueError, AttributeError)

VIEW_COLUMNS = (
    "case_id, case_no, item_code, item_name, state, applicant_name, id_number, phone, intake_org, holder_org, "
    "holder_level, registered_at, accepted_at, due_date, due_estimated, supplement_deadline, closed_at, "
    "conflicts, updated_at, view"
)


def _day(iso: str) -> date:
    return date.fromisoformat(iso[:10])


def due_of(view: CaseView, cal: WorkCalendar) -> tuple[str | None, bool]:
    """The promised completion date, or None while not accepted or paused.

    Pause days are those after the day the clock stopped up to and including
    the day it restarted, mirroring "受理次日 is day 1".
    """
    days = view.item.get("promise_days")
    if view.accepted_at is None or days is None:
        return None, False
    paused = []
    for start, end, _ in view.pauses:
        if end is None:
            return None, False
        first, last = _day(start) + timedelta(days=1), _day(end)
        if first <= last:
            paused.append((first, last))
    d = cal.add(_day(view.accepted_at), int(days), TimeUnit(view.item.get("promise_unit", "workday")), paused)
    return d.date.isoformat(), d.estimated


def view_row(view: CaseView, cal: WorkCalendar) -> tuple:
    due, estimated = due_of(view, cal)
    a = view.applicant
    return (
        view.case_id, view.case_no, view.item.get("code", ""), view.item.get("name", ""), view.state.value,
        a.get("name", ""), a.get("id_number", ""), a.get("phone", ""), view.intake_org, view.holder_org,
        view.holder_level, view.registered_at, view.accepted_at, due, int(estimated), view.supplement_deadline,
        view.closed_at, len(view.conflicts), view.last_at,
        view_json(view),
    )


_VIEW_FIELDS = tuple(f.name for f in fields(CaseView))


def _conflict(o: object) -> dict:
    if isinstance(o, Conflict):
        return asdict(o)
    raise TypeError(f"{type(o).__name__} in a case view")


def view_json(view: CaseView) -> str:
    """``json.dumps(view.to_dict())`` without the deep copy ``to_dict`` makes first (same text)."""
    d = {name: getattr(view, name) for name in _VIEW_FIELDS}
    d["state"] = view.state.value
    return json.dumps(d, ensure_ascii=False, separators=(",", ":"), default=_conflict)


class CaseProjection:
    """``who`` gives the enrolled org of a station: the fold judges what events claim by it."""

    def __init__(self, db, who: Who | None = None) -> None:
        self.db = db
        self.who = who
        self._cache: OrderedDict[str, CaseView] = OrderedDict()
        self._calendar: WorkCalendar | None = None
        self._data_version: int | None = None

    # -- the calendar the due dates are counted on ---------------------------

    def calendar(self) -> WorkCalendar:
        if self._calendar is None:
            rows = self.db.execute_sql("SELECT day, workday FROM calendar_override").fetchall()
            self._calendar = WorkCalendar({date.fromisoformat(d): bool(w) for d, w in rows})
        return self._calendar

    def calendar_changed(self) -> None:
        """Recount the due dates of open cases after a calendar override."""
        self._calendar = None
        cal = self.calendar()
        open_states = tuple(s.value for s in State if s.is_open)
        marks = ",".join("?" * len(open_states))
        rows = self.db.execute_sql(
            f"SELECT view FROM case_view WHERE state IN ({marks}) AND accepted_at IS NOT NULL", open_states
        ).fetchall()
        for (v,) in rows:
            view = CaseView.from_dict(json.loads(v))
            due, est = due_of(view, cal)
            self.db.execute_sql(
                "UPDATE case_view SET due_date = ?, due_estimated = ? WHERE case_id = ?", (due, int(est), view.case_id)
            )

    # -- applying events ---------------------------------------------------------

    def forget_cache(self) -> None:
        self._cache.clear()

    def check_fresh(self) -> None:
        """Drop the caches if another connection committed since we last looked.

        Two connections may share the database (the UI's and a sync thread's,
        ``Session.fork``); SQLite's ``data_version`` changes only for commits made
        by *other* connections, so our own writes keep the cache warm.
        """
        version = self.db.execute_sql("PRAGMA data_version").fetchone()[0]
        if version != self._data_version:
            if self._data_version is not None:
                self._cache.clear()
                self._calendar = None
            self._data_version = version

    def load(self, case_id: str) -> CaseView | None:
        if self._cache and not self.db.in_transaction():
            self.check_fresh()
        view = self._cache.get(case_id)
        if view is not None:
            self._cache.move_to_end(case_id)
            return view
        row = self.db.execute_sql("SELECT view FROM case_view WHERE case_id = ?", (case_id,)).fetchone()
        if row is None:
            return None
        view = CaseView.from_dict(json.loads(row[0]))
        self._remember(view)
        return view

    def _remember(self, view: CaseView) -> None:
        self._cache[view.case_id] = view
        self._cache.move_to_end(view.case_id)
        if len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)

    def apply(self, ev: Event, *, strict: bool, events_of: Callable[[str], list[Event]]) -> CaseView | None:
        """Fold ``ev`` (not yet in the log) into its case.

        ``strict`` (local events): a rule violation raises TransitionError and
        nothing is written. Otherwise it is recorded as a conflict.
        """
        current = self.load(ev.subject)
        in_order = current is None or tuple(ev.order) > tuple(current.last_order)
        if strict:
            if not in_order:
                raise AssertionError("a local event must sort after everything already folded")
            view = lifecycle.apply(current, ev, who=self.who)
        elif in_order and current is not None:
            view = lifecycle.apply_or_conflict(current, ev, who=self.who)
        else:  # late, or the case is new here: actions may have arrived before their registration
            view = lifecycle.fold([*events_of(ev.subject), ev], who=self.who)
        if view is None:  # an action whose registration has not arrived yet
            return None
        self._save(view, new=current is None)
        return view

    def apply_batch(
        self, by_case: dict[str, list[Event]], *, events_of_many: Callable[[list[str]], dict[str, list[Event]]]
    ) -> None:
        """Fold foreign events already inserted in the log: each case saved once.

        ``by_case`` maps a case to its new events in folding order. A case whose
        new events all sort after what is folded gets them applied in order (the
        incremental path); any other case is refolded from the log in one query
        per 500 cases. Either way the result is the fold of all its events.
        """
        refold: list[tuple[str, bool]] = []
        for case_id, evs in by_case.items():
            current = self.load(case_id)
            if current is not None and tuple(evs[0].order) > tuple(current.last_order):
                try:
                    view: CaseView | None = current
                    for ev in evs:
                        view = lifecycle.apply_or_conflict(view, ev, who=self.who)
                    assert view is not None
                    self._save(view, new=False)
                except _MALFORMED:
                    self._unprojectable(case_id)
            else:
                refold.append((case_id, current is None))
        if not refold:
            return
        self.refold([cid for cid, _ in refold], events_of_many=events_of_many, new={c for c, n in refold if n})

    def refold(
        self,
        case_ids: list[str],
        *,
        events_of_many: Callable[[list[str]], dict[str, list[Event]]],
        new: set[str] | frozenset[str] = frozenset(),
    ) -> None:
        """Fold these cases again from the log (after events were added late or set aside)."""
        logs = events_of_many(case_ids)
        for case_id in case_ids:
            try:
                view = lifecycle.fold(logs[case_id], who=self.who)
                if view is not None:  # None: only actions so far, the registration has not arrived
                    self._save(view, new=case_id in new)
                else:
                    self._drop(case_id)
            except _MALFORMED:
                self._unprojectable(case_id)

    def _drop(self, case_id: str) -> None:
        """A case whose registration is no longer in the log (set aside): no row, no search terms."""
        self._cache.pop(case_id, None)
        self.db.execute_sql("DELETE FROM case_view WHERE case_id = ?", (case_id,))
        self.db.execute_sql("DELETE FROM case_term WHERE case_id = ?", (case_id,))

    def _unprojectable(self, case_id: str) -> None:
        # An authentic event whose body the projection cannot even read (another program's bug):
        # it stays in the log; the case keeps its last good row. Never blocks the sync.
        self._cache.pop(case_id, None)
        log.warning("case %s: events not projectable", case_id)

    def _save(self, view: CaseView, *, new: bool) -> None:
        row = view_row(view, self.calendar())
        self.db.execute_sql(f"INSERT OR REPLACE INTO case_view ({VIEW_COLUMNS}) VALUES ({','.join('?' * 20)})", row)
        if new:
            a = view.applicant
            terms = case_terms(view.case_no, a.get("name", ""), a.get("id_number", ""), a.get("phone", ""))
            self.db.cursor().executemany(
                "INSERT OR IGNORE INTO case_term (term, case_id) VALUES (?, ?)", [(t, view.case_id) for t in terms]
            )
        self._remember(view)

    # -- rebuilding ----------------------------------------------------------------

    @staticmethod
    def fold_all(events: list[Event], who: Who | None = None) -> dict[str, CaseView]:
        """Fold every case from scratch, in memory (``station verify``)."""
        by_case: dict[str, list[Event]] = {}
        for ev in events:
            if ev.kind.startswith("case."):
                by_case.setdefault(ev.subject, []).append(ev)
        out = {}
        for cid, evs in by_case.items():
            view = lifecycle.fold(evs, who=who)
            if view is not None:
                out[cid] = view
        return out

