"""Working-day calendar and deadline arithmetic (承诺时限 in 工作日 or 自然日).

Where each day's status comes from, first match wins:

1. the county's override table (date -> workday / rest), synced from the county;
2. ``chinese_calendar`` (the 国务院办公厅 notices, 2004–2026 in 1.11.0);
3. an estimate: weekends are rest, plus the statutory holidays of 全国年节及纪念日放假办法
   (国务院令第793号 from 2025: 元旦 1, 春节 4 = 除夕 + 初一至初三, 清明 1, 劳动节 5/1–5/2, 端午 1,
   中秋 1, 国庆 10/1–10/3), with no 调休 because the notice is not out yet.

Days from the estimate are flagged *estimated* (the UI shows "预计"), unless the county declared the
year complete or overrode that very date. Deadlines are recomputed when authoritative data arrives.

Statuses are computed once per year and kept as a byte map with prefix sums, so a deadline is a
bisect rather than a day-by-day walk: deadlines are recomputed for every open case whenever a
calendar changes.
"""

from __future__ import annotations

import datetime
import enum
import functools
import itertools
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

import chinese_calendar

from schema.errors import ValidationError

# A deadline search gives up after this many unpaused calendar days, so a county table that marks
# (nearly) every day as rest produces a clear error instead of an endless search.
MAX_SEARCH_DAYS = 3 * 366

_MAX_ORDINAL = datetime.date.max.toordinal()


class TimeUnit(enum.StrEnum):
    WORKDAY = "workday"
    NATURAL = "natural"

    @property
    def label(self) -> str:
        return "工作日" if self is TimeUnit.WORKDAY else "自然日"

    @classmethod
    def parse(cls, text: str | TimeUnit) -> TimeUnit:
        """Accept the English id or the Chinese word; a bare "日"/"天" means calendar days."""
        if isinstance(text, TimeUnit):
            return text
        t = str(text).strip().lower()
        if t in ("workday", "工作日"):
            return cls.WORKDAY
        if t in ("natural", "自然日", "日", "天"):
            return cls.NATURAL
        raise ValidationError(f"未知的时限单位“{text}”，请填写“工作日”或“自然日”", field="time_unit")


@dataclass(frozen=True, slots=True)
class Deadline:
    date: datetime.date
    estimated: bool  # some day that decided the date came from the estimate → show "预计"


# --- per-year base statuses (shared by every calendar; they depend only on the pinned libraries) ---


def _fixed_statutory(year: int) -> set[datetime.date]:
    # The solar-date holidays of 国务院令第793号, for years the lunar tables do not reach.
    md = [(1, 1), (5, 1), (5, 2), (10, 1), (10, 2), (10, 3)]
    return {datetime.date(year, m, d) for m, d in md}


def _estimate_year(year: int, days: list[datetime.date]) -> bytes:
    # Imported here: `holidays` is slow to import and only needed for years chinese_calendar lacks.
    from holidays.countries.china import China

    # observed=False: no substitute days. For 2027+ this yields exactly the 13 statutory days of
    # 国务院令第793号; for years before 2004 it also knows the notices of the time, which is closer
    # to the truth than the bare statute.
    table = China(years=year, observed=False)
    if not table:  # outside the library's lunar tables (before 1950, after 2100)
        rest = _fixed_statutory(year)
        return bytes(d.weekday() < 5 and d not in rest for d in days)
    return bytes(table.is_working_day(d) for d in days)


@functools.cache
def _base_year(year: int) -> tuple[bytes, bool]:
    """(workday flag per day of ``year``, whether the year is estimated)."""
    first = datetime.date(year, 1, 1)
    days = [first + datetime.timedelta(i) for i in range((datetime.date(year, 12, 31) - first).days + 1)]
    try:
        return bytes(chinese_calendar.is_workday(d) for d in days), False
    except NotImplementedError:  # year not published in this chinese_calendar release
        return _estimate_year(year, days), True


@dataclass(slots=True)
class _Year:
    first: int  # ordinal of 1 January
    work: bytes  # 1 = workday, per day of year
    est: bytes  # 1 = estimated, per day of year
    cum: list[int]  # cum[i] = workdays among days [0, i)
    est_cum: list[int]  # est_cum[i] = estimated days among days [0, i)


def _merge_pauses(paused: Iterable[tuple[datetime.date, datetime.date]]) -> list[tuple[int, int]]:
    spans = []
    for first, last in paused:
        if last < first:
            raise ValueError(f"pause interval ends before it starts: {first} > {last}")
        spans.append((first.toordinal(), last.toordinal()))
    spans.sort()
    merged: list[tuple[int, int]] = []
    for a, b in spans:
        if merged and a <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


def _free_runs(pos: int, pauses: list[tuple[int, int]]) -> Iterator[tuple[int, int]]:
    """The unpaused runs of days after ``pos``, as (after, last): days after < o <= last.

    The final run is open-ended (up to date.max).
    """
    for a, b in pauses:
        if b <= pos:
            continue
        if a > pos + 1:
            yield pos, a - 1
        pos = max(pos, b)
    if pos < _MAX_ORDINAL:
        yield pos, _MAX_ORDINAL


def _fmt(d: datetime.date) -> str:
    return f"{d.year}年{d.month}月{d.day}日"


class WorkCalendar:
    """Which days are working days, and deadlines counted in them.

    ``overrides`` is the county-published table (date -> True workday / False rest); it wins over
    everything. ``complete_years`` are years for which the county declared its overrides to be the
    whole 国务院办公厅 notice: days of those years are then authoritative, not estimated (their
    status still comes from overrides first, then the library or the statutory estimate).

    Both are copied at construction; when the county table changes, build a new calendar.
    """

    def __init__(
        self,
        overrides: Mapping[datetime.date, bool] | None = None,
        complete_years: Iterable[int] = (),
    ) -> None:
        self._overrides: dict[int, list[tuple[datetime.date, bool]]] = {}
        for d, work in (overrides or {}).items():
            self._overrides.setdefault(d.year, []).append((d, bool(work)))
        self._complete = frozenset(complete_years)
        self._years: dict[int, _Year] = {}

    # --- single days ---

    def _year(self, year: int) -> _Year:
        y = self._years.get(year)
        if y is None:
            base, estimated = _base_year(year)
            work = bytearray(base)
            est = bytearray([estimated and year not in self._complete]) * len(base)
            first = datetime.date(year, 1, 1).toordinal()
            for d, is_work in self._overrides.get(year, ()):
                work[d.toordinal() - first] = is_work
                est[d.toordinal() - first] = 0
            y = _Year(
                first=first,
                work=bytes(work),
                est=bytes(est),
                cum=list(itertools.accumulate(work, initial=0)),
                est_cum=list(itertools.accumulate(est, initial=0)),
            )
            self._years[year] = y
        return y

    def day(self, d: datetime.date) -> tuple[bool, bool]:
        """(is_workday, estimated) for one date."""
        y = self._year(d.year)
        i = d.toordinal() - y.first
        return bool(y.work[i]), bool(y.est[i])

    def is_workday(self, d: datetime.date) -> bool:
        return self.day(d)[0]

    def next_workday(self, d: datetime.date) -> datetime.date:
        """``d`` itself if it is a working day, else the first working day after it."""
        if self.is_workday(d):
            return d
        o = d.toordinal()
        found, _, _ = self._seek(o, 1, min(o + MAX_SEARCH_DAYS, _MAX_ORDINAL), TimeUnit.WORKDAY)
        if found is None:
            raise ValidationError(f"{_fmt(d)}之后三年内没有工作日，请检查节假日设置")
        return datetime.date.fromordinal(found)

    # --- counting ---

    def _seek(self, after: int, k: int, limit: int, unit: TimeUnit) -> tuple[int | None, int, bool]:
        """Find the k-th counted day (k >= 1) in (after, limit].

        Returns (its ordinal or None, how many of k are still missing, estimated), where estimated
        says whether any workday status read on the way was estimated.
        """
        if unit is TimeUnit.NATURAL:  # every day counts; no status is read
            avail = limit - after
            return (after + k, 0, False) if k <= avail else (None, k - avail, False)
        estimated = False
        o = after + 1
        while o <= limit:
            y = self._year(datetime.date.fromordinal(o).year)
            i = o - y.first
            end = min(limit - y.first + 1, len(y.work))  # exclusive day index within this year
            avail = y.cum[end] - y.cum[i]
            if avail >= k:
                m = bisect_left(y.cum, y.cum[i] + k, i + 1, end + 1)  # day m-1 is the k-th workday
                return y.first + m - 1, 0, estimated or y.est_cum[m] > y.est_cum[i]
            k -= avail
            estimated = estimated or y.est_cum[end] > y.est_cum[i]
            o = y.first + end
        return None, k, estimated

    def add(
        self,
        start: datetime.date,
        n: int,
        unit: TimeUnit | str,
        paused: Iterable[tuple[datetime.date, datetime.date]] = (),
    ) -> Deadline:
        """The date of day ``n`` counted from acceptance day ``start``.

        - Day 1 is the first counted day *after* ``start`` (受理次日 is day 1); the acceptance day
          itself never counts. ``n == 0`` gives ``start``; ``n < 0`` raises ValueError.
        - WORKDAY counts working days only. NATURAL counts every calendar day, but if day ``n`` is
          a rest day the period ends on the first working day after it (行政许可法, 民法典 Art. 203:
          a period whose last day is a holiday ends on the day after the holiday).
        - ``paused`` holds inclusive (first_day, last_day) intervals when the clock is stopped
          (补正, 特别程序). Paused days never count, whatever the unit, and a NATURAL period never
          ends on a paused day. Intervals may overlap and come in any order.
        - ``estimated`` is True if any day whose status decided the result came from the estimate.
        - Raises ValidationError if the search runs past ``MAX_SEARCH_DAYS`` unpaused days (a
          calendar with almost no working days, or an absurd ``n``).
        """
        unit = TimeUnit(unit)
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        if n == 0:
            return Deadline(start, False)
        pauses = _merge_pauses(paused)
        left, estimated, budget = n, False, MAX_SEARCH_DAYS
        for after, last in _free_runs(start.toordinal(), pauses):
            limit = min(last, after + budget)
            found, left, est = self._seek(after, left, limit, unit)
            estimated = estimated or est
            if found is not None:
                if unit is TimeUnit.NATURAL:
                    return self._roll_to_workday(found, pauses, estimated, start)
                return Deadline(datetime.date.fromordinal(found), estimated)
            budget -= limit - after
            if budget <= 0:
                break
        unit_word = "工作日" if unit is TimeUnit.WORKDAY else "天"
        raise ValidationError(
            f"从{_fmt(start)}起三年内数不够{n}个{unit_word}，请检查承诺时限或节假日设置（是否把太多日期设成了休息日）"
        )

    def _roll_to_workday(
        self, o: int, pauses: list[tuple[int, int]], estimated: bool, start: datetime.date
    ) -> Deadline:
        stop = min(o + MAX_SEARCH_DAYS, _MAX_ORDINAL)
        while o <= stop:
            if any(a <= o <= b for a, b in pauses):
                o += 1
                continue
            work, est = self.day(datetime.date.fromordinal(o))
            estimated = estimated or est
            if work:
                return Deadline(datetime.date.fromordinal(o), estimated)
            o += 1
        raise ValidationError(f"从{_fmt(start)}起的期限届满后三年内没有工作日，请检查节假日设置")

    def elapsed(
        self,
        start: datetime.date,
        end: datetime.date,
        unit: TimeUnit | str,
        paused: Iterable[tuple[datetime.date, datetime.date]] = (),
    ) -> tuple[int, bool]:
        """(days counted in (start, end], estimated), by the same rules as :meth:`add`.

        For WORKDAY, ``elapsed(s, add(s, n).date) == n``. For NATURAL this is the plain count of
        unpaused days, so after a rest-day rollover it exceeds ``n``; it reads no day's status and
        is never estimated. ``end <= start`` gives 0.
        """
        unit = TimeUnit(unit)
        s, e = start.toordinal(), end.toordinal()
        total, estimated = 0, False
        for after, last in _free_runs(s, _merge_pauses(paused)):
            if after >= e:
                break
            hi = min(last, e)
            want = hi - after + 1  # more than the run can hold, so _seek counts the whole run
            _, missing, est = self._seek(after, want, hi, unit)
            total += want - missing
            estimated = estimated or est
        return total, estimated
