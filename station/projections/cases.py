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
from datetime import date

from schema import deadlines, rules
from schema.case import CaseView, Conflict, State
from schema.events import Event
from schema.rules import Who
from schema.workdays import WorkCalendar
from station.search import case_terms

log = logging.getLogger(__name__)

CACHE_SIZE = 4096
_MALFORMED = (KeyError, TypeError, ValueError, AttributeError)

VIEW_COLUMNS = (
    "case_id, case_no, item_code, item_name, state, applicant_name, id_number, phone, intake_org, holder_org, "
    "holder_level, registered_at, accepted_at, due_date, due_estimated, supplement_deadline, closed_at, "
    "conflicts, updated_at, legal_due, stage_due, watch_until, rongque_due, rectify_due, rectify_org, view"
)
_MARKS = ",".join("?" * len(VIEW_COLUMNS.split(",")))


def _iso(d) -> str | None:
    return d.date.isoformat() if d is not None else None


def view_row(view: CaseView, cal: WorkCalendar) -> tuple:
    """The ``case_view`` row of a case: its fold plus the dates lists and supervision filter on."""
    w = deadlines.watch(view, cal)
    a = view.applicant
    r = view.rectify if view.rectify and not view.rectify.get("closed_at") else None
    rectify_due = (r.get("due") if r.get("verified_at") else r.get("verify_due")) if r else None
    return (
        view.case_id, view.case_no, view.item.get("code", ""), view.item.get("name", ""), view.state.value,
        a.get("name", ""), a.get("id_number", ""), a.get("phone", ""), view.intake_org, view.holder_org,
        view.holder_level, view.registered_at, view.accepted_at, _iso(w.due), int(bool(w.due and w.due.estimated)),
        view.supplement_deadline, view.closed_at, len(view.conflicts), view.last_at,
        _iso(w.legal), _iso(w.stage), w.special_until, w.rongque_due, rectify_due, r["org"] if r else None,
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
    """``who`` resolves who made an event for the rules (``station.projections.authors``)."""

    def __init__(self, db, who: Who = rules.claimed) -> None:
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
            self._write(CaseView.from_dict(json.loads(v)), cal)

    # -- applying events ---------------------------------------------------------

    def forget_cache(self) -> None:
        self._cache.clear()

    def check_fresh(self) -> bool:
        """Drop the caches if another connection committed since we last looked; True if it did.

        Two connections may share the database (the UI's and a sync thread's,
        ``Session.fork``); SQLite's ``data_version`` changes only for commits made
        by *other* connections, so our own writes keep the cache warm.
        """
        version = self.db.execute_sql("PRAGMA data_version").fetchone()[0]
        changed = version != self._data_version and self._data_version is not None
        if changed:
            self._cache.clear()
            self._calendar = None
        self._data_version = version
        return changed

    def load(self, case_id: str) -> CaseView | None:
        if self._cache and not self.db.in_transaction() and self.check_fresh():
            forget = getattr(self.who, "forget", None)
            if forget is not None:
                forget()
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
                raise AssertionError(f"a local event must sort after everything already folded {ev.kind} {ev.order} {current.last_order}")
            view = rules.apply(current, ev, self.who)
        elif in_order and current is not None:
            view = rules.apply_or_conflict(current, ev, self.who)
        else:  # late, or the case is new here: actions may have arrived before their registration
            view = rules.fold([*events_of(ev.subject), ev], self.who)
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
                        view = rules.apply_or_conflict(view, ev, self.who)
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
                view = rules.fold(logs[case_id], self.who)
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

    def _write(self, view: CaseView, cal: WorkCalendar) -> None:
        self.db.execute_sql(f"INSERT OR REPLACE INTO case_view ({VIEW_COLUMNS}) VALUES ({_MARKS})", view_row(view, cal))

    def _save(self, view: CaseView, *, new: bool) -> None:
        self._write(view, self.calendar())
        if new:
            a = view.applicant
            terms = case_terms(view.case_no, a.get("name", ""), a.get("id_number", ""), a.get("phone", ""))
            self.db.cursor().executemany(
                "INSERT OR IGNORE INTO case_term (term, case_id) VALUES (?, ?)", [(t, view.case_id) for t in terms]
            )
        self._remember(view)

    # -- rebuilding ----------------------------------------------------------------

    def fold_all(self, events: list[Event]) -> dict[str, CaseView]:
        """Fold every case from scratch, in memory (``station verify``, rebuilds)."""
        return fold_all(events, self.who)


def fold_all(events: list[Event], who: Who = rules.claimed) -> dict[str, CaseView]:
    """Every case the events make, folded from scratch in memory."""
    by_case: dict[str, list[Event]] = {}
    for ev in events:
        if ev.kind.startswith("case."):
            by_case.setdefault(ev.subject, []).append(ev)
    out = {}
    for cid, evs in by_case.items():
        view = rules.fold(evs, who)
        if view is not None:
            out[cid] = view
    return out
