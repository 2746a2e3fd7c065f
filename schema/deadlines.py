"""The dates a case is watched by, computed from its view and the working-day calendar.

Pure functions, used by every projection (a station's case list, the county's supervision):

- **承诺办结日** (:func:`promised`): counted from 受理 in the item's unit; 补正 and pause-type
  特别程序/公示 days do not count; 延长审批 adds its days. A pause with a stated end date (特别程序,
  公示) resumes on its own at that date even if nobody ends it, so such a case still has a due
  date and turns overdue when it runs past; a 补正 pause has no end date, so while it is open the
  case has none (暂停计时).
- **法定办结日** (:func:`legal`): the same count with the 法定时限 and no extensions.
- **环节时限** (:func:`stage_due`): how long the level now holding an accepted case may keep it
  before it forwards or decides (the catalog's stage limits), counted from when it got the case.

Pause days are those after the day the clock stopped up to and including the day it restarted,
mirroring "受理次日 is day 1" (docs/station-core.md, Time limits).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from schema.case import CaseView, State
from schema.workdays import Deadline, TimeUnit, WorkCalendar


def _day(iso: str) -> date:
    return date.fromisoformat(iso[:10])


def paused_days(view: CaseView) -> list[tuple[date, date]] | None:
    """Inclusive (first, last) paused intervals, or None while an open-ended pause runs."""
    out = []
    for pause in view.pauses:
        start, end = pause[0], pause[1]
        until = pause[3] if len(pause) > 3 else None
        if end is None:
            if until is None:
                return None
            last = _day(until)
        else:
            last = _day(end)
            if until is not None:  # resumed on its own at ``until`` even if ended later
                last = min(last, _day(until))
        first = _day(str(start)) + timedelta(days=1)
        if first <= last:
            out.append((first, last))
    return out


def promised(view: CaseView, cal: WorkCalendar) -> Deadline | None:
    days = view.item.get("promise_days")
    if view.accepted_at is None or days is None:
        return None
    paused = paused_days(view)
    if paused is None:
        return None
    total = int(days) + sum(int(e.get("days") or 0) for e in view.extensions)
    unit = TimeUnit(view.item.get("promise_unit") or "workday")
    return cal.add(_day(view.accepted_at), total, unit, paused)


def legal(view: CaseView, cal: WorkCalendar) -> Deadline | None:
    days = view.item.get("legal_days")
    if view.accepted_at is None or days is None:
        return None
    paused = paused_days(view)
    if paused is None:
        return None
    return cal.add(_day(view.accepted_at), int(days), TimeUnit(view.item.get("legal_unit") or "workday"), paused)


def stage_due(view: CaseView, cal: WorkCalendar) -> Deadline | None:
    """When the holder level's stage ends, for an open, accepted case below its deciding level."""
    if not view.is_open or view.accepted_at is None or not view.stage_since:
        return None
    limits = view.item.get("stage_days") or {}
    days = limits.get(view.holder_level) if isinstance(limits, dict) else None
    if not isinstance(days, int) or days <= 0:
        return None
    paused = paused_days(view)
    if paused is None:
        return None
    return cal.add(_day(view.stage_since), days, TimeUnit.WORKDAY, paused)


@dataclass(frozen=True, slots=True)
class Watch:
    """Everything a list or a supervision screen needs about one case's dates."""

    due: Deadline | None
    legal: Deadline | None
    stage: Deadline | None
    special_until: str | None  # a running 特别程序/公示 should end on this date
    rongque_due: str | None  # 容缺 materials promised by this date (still outstanding)

    def overdue_days(self, today: date) -> int:
        return max(0, (today - self.due.date).days) if self.due else 0


def watch(view: CaseView, cal: WorkCalendar) -> Watch:
    special_until = view.special.get("until") if view.special and view.state is State.SUSPENDED else None
    rongque_due = None
    if view.rongque_promise and view.outstanding_rongque and view.is_open:
        rongque_due = view.rongque_promise.get("due")
    return Watch(promised(view, cal), legal(view, cal), stage_due(view, cal), special_until, rongque_due)
