"""What the case page shows, in one call: the case, its due date as people read it, its
timeline and the actions the signed-in user may take now; and the inputs those actions offer.

Plain functions (no Textual): the UI renders these and calls :mod:`station.services.cases`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from schema import rules
from schema.case import CaseView, State
from schema.org import Level
from schema.rules import Action
from schema.workdays import Deadline, TimeUnit
from station import clock
from station.services import cases
from station.services.timeline import Entry, timeline
from station.session import Session


@dataclass(frozen=True, slots=True)
class DueInfo:
    text: str  # "2026-03-05", "2026-03-05（预计）", "暂停计时", "未受理", "—"
    overdue: bool
    days_over: int = 0  # calendar days past the promised date, while overdue

    @property
    def label(self) -> str:
        return self.text + (f"  已超期{self.days_over}天" if self.overdue else "")


def due_info(
    state: State, due_date: str | None, estimated: bool, *, accepted: bool = True, today: date | None = None
) -> DueInfo:
    """The promised completion date as shown: 预计 when estimated, overdue when it has passed.

    Overdue means what ``queries.list_cases(overdue=True)`` means: an open case with a due date
    before today (a 特别程序 or 公示 that ran past its end date counts: its clock resumed).
    """
    if due_date is None:
        if not accepted:
            return DueInfo("未受理" if state.is_open else "—", False)
        if state in (State.SUSPENDED, State.AWAITING_SUPPLEMENT):
            return DueInfo("暂停计时", False)
        return DueInfo("—", False)
    text = due_date + ("（预计）" if estimated else "")
    today = today or clock.today()
    due = date.fromisoformat(due_date)
    if state.is_open and due < today:
        return DueInfo(text, True, (today - due).days)
    return DueInfo(text, False)


@dataclass(frozen=True)
class CaseDetail:
    view: CaseView
    due: DueInfo
    timeline: list[Entry]
    actions: list[Action]

    @property
    def holder_label(self) -> str:
        return f"{Level(self.view.holder_level).label}（{self.view.holder_org}）"


def detail(session: Session, case_id: str) -> CaseDetail:
    # A copy: the projection caches views and folds later events into them in place, on the
    # session thread, while the UI thread reads this one.
    view = CaseView.from_dict(cases.get(session, case_id).to_dict())
    row = session.db.execute_sql(
        "SELECT due_date, due_estimated FROM case_view WHERE case_id = ?", (view.case_id,)
    ).fetchone()
    due = due_info(view.state, row[0], bool(row[1]), accepted=view.accepted_at is not None)
    actions = rules.allowed_actions(view, session.author, clock.iso(clock.now()))
    return CaseDetail(view, due, timeline(session, view.case_id), actions)


# -- inputs the actions offer ------------------------------------------------------------------


def promised_if_accepted_today(session: Session, view: CaseView) -> Deadline | None:
    """The 承诺办结日 a 受理 today would give (None if the item has no promised limit)."""
    days = view.item.get("promise_days")
    if days is None:
        return None
    unit = TimeUnit(view.item.get("promise_unit") or "workday")
    return session.store.cases.calendar().add(clock.today(), int(days), unit)


def preview_body(session: Session, view: CaseView, action: Action) -> dict:
    """What the action would write with default inputs (the 补正期限 of a 一次性告知, a 公示's end
    date …), for its dialog to show before the person confirms."""
    try:
        return action.prepare(view, {f.name: None for f in action.fields}, cases.env(session))
    except (TypeError, ValueError, KeyError):
        return {}
