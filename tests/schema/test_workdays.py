import time
from datetime import date, timedelta

import chinese_calendar
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schema.errors import ValidationError
from schema.workdays import MAX_SEARCH_DAYS, Deadline, TimeUnit, WorkCalendar
from tests.helpers import scaled

W = TimeUnit.WORKDAY
N = TimeUnit.NATURAL
CAL = WorkCalendar()  # shared: its per-year tables are the point of the speed test

# Building a year table the first time takes milliseconds; that is not what hypothesis should time.
props = settings(deadline=None, max_examples=scaled(150))

dates_2000_2100 = st.dates(date(2000, 1, 1), date(2100, 12, 31))
pause_lists = st.lists(
    st.tuples(st.integers(-5, 60), st.integers(0, 20)),  # (offset from start, length - 1)
    max_size=3,
)


def pauses_from(start: date, spec: list[tuple[int, int]]) -> list[tuple[date, date]]:
    return [(start + timedelta(off), start + timedelta(off + length)) for off, length in spec]


def days(first: date, last: date):
    return [first + timedelta(i) for i in range((last - first).days + 1)]


# --- TimeUnit ---


def test_time_unit_labels():
    assert W.label == "工作日"
    assert N.label == "自然日"


@pytest.mark.parametrize(
    ("text", "unit"),
    [
        ("workday", W),
        ("工作日", W),
        (" 工作日 ", W),
        ("natural", N),
        ("自然日", N),
        ("日", N),
        ("天", N),
        (W, W),
    ],
)
def test_time_unit_parse(text, unit):
    assert TimeUnit.parse(text) is unit


def test_time_unit_parse_rejects_unknown_in_chinese():
    with pytest.raises(ValidationError) as e:
        TimeUnit.parse("周")
    assert e.value.message == "未知的时限单位“周”，请填写“工作日”或“自然日”"


# --- facts from the published 2026 notice ---


def test_2026_has_248_working_days_none_estimated():
    statuses = [CAL.day(d) for d in days(date(2026, 1, 1), date(2026, 12, 31))]
    assert sum(work for work, _ in statuses) == 248
    assert not any(est for _, est in statuses)


def test_2026_make_up_saturday_and_national_day():
    assert CAL.day(date(2026, 2, 14)) == (True, False)  # Saturday, 调休 workday
    assert not CAL.is_workday(date(2026, 10, 1))
    assert not CAL.is_workday(date(2026, 10, 7))
    assert CAL.is_workday(date(2026, 10, 10))  # Saturday, 调休 workday


def test_fifth_working_day_after_national_day_eve():
    assert CAL.add(date(2026, 9, 30), 5, W) == Deadline(date(2026, 10, 13), False)


def test_agrees_with_chinese_calendar_find_workday():
    # find_workday first moves a rest-day start to the next workday; from a workday both count
    # the same way (the next workday is day 1).
    for start in [d for d in days(date(2025, 1, 1), date(2025, 12, 31)) if chinese_calendar.is_workday(d)]:
        for n in (1, 5, 20):
            assert CAL.add(start, n, W).date == chinese_calendar.find_workday(n, start), (start, n)


# --- counting convention ---


def test_day_one_is_the_day_after_acceptance():
    assert CAL.add(date(2026, 3, 2), 1, W).date == date(2026, 3, 3)  # Monday → Tuesday
    assert CAL.add(date(2026, 3, 6), 1, W).date == date(2026, 3, 9)  # Friday → Monday
    assert CAL.add(date(2026, 3, 7), 1, W).date == date(2026, 3, 9)  # accepted on a Saturday


def test_zero_is_the_acceptance_day_and_negative_is_an_error():
    assert CAL.add(date(2026, 3, 7), 0, W) == Deadline(date(2026, 3, 7), False)
    assert CAL.add(date(2030, 3, 7), 0, N) == Deadline(date(2030, 3, 7), False)
    with pytest.raises(ValueError):
        CAL.add(date(2026, 3, 2), -1, W)


def test_unit_may_be_given_as_its_string_value():
    assert CAL.add(date(2026, 9, 30), 5, "workday") == CAL.add(date(2026, 9, 30), 5, W)


# --- natural days ---


def test_natural_days_count_every_day():
    assert CAL.add(date(2026, 3, 2), 10, N) == Deadline(date(2026, 3, 12), False)


def test_natural_period_ending_on_weekend_rolls_to_monday():
    assert CAL.add(date(2026, 3, 4), 3, N).date == date(2026, 3, 9)  # Saturday 3/7 → Monday 3/9


def test_natural_period_ending_in_holiday_rolls_past_it():
    assert CAL.add(date(2026, 9, 28), 3, N).date == date(2026, 10, 8)


def test_natural_period_ending_on_make_up_saturday_does_not_roll():
    assert CAL.add(date(2026, 2, 11), 3, N).date == date(2026, 2, 14)


def test_natural_rollover_skips_paused_days():
    # Day 3 is Saturday 3/7; Monday 3/9 is paused, so the period ends Tuesday 3/10.
    got = CAL.add(date(2026, 3, 4), 3, N, paused=[(date(2026, 3, 9), date(2026, 3, 9))])
    assert got.date == date(2026, 3, 10)


# --- paused intervals ---


def test_paused_working_days_do_not_count():
    # Without pause: 10/8, 10/9, 10/10, 10/12, 10/13. Pausing 10/8–10/12 leaves 10/13…10/19.
    got = CAL.add(date(2026, 9, 30), 5, W, paused=[(date(2026, 10, 8), date(2026, 10, 12))])
    assert got.date == date(2026, 10, 19)


def test_paused_calendar_days_do_not_count():
    got = CAL.add(date(2026, 3, 2), 10, N, paused=[(date(2026, 3, 3), date(2026, 3, 5))])
    assert got.date == date(2026, 3, 16)  # day 10 lands on Sunday 3/15 → Monday


def test_overlapping_and_unsorted_pauses_equal_their_union():
    start = date(2026, 4, 1)
    messy = [
        (date(2026, 4, 20), date(2026, 4, 22)),
        (date(2026, 4, 2), date(2026, 4, 8)),
        (date(2026, 4, 5), date(2026, 4, 10)),
    ]
    union = [(date(2026, 4, 2), date(2026, 4, 10)), (date(2026, 4, 20), date(2026, 4, 22))]
    assert CAL.add(start, 15, W, messy) == CAL.add(start, 15, W, union)
    assert CAL.elapsed(start, date(2026, 6, 1), W, messy) == CAL.elapsed(start, date(2026, 6, 1), W, union)


def test_pause_starting_on_acceptance_day():
    start = date(2026, 3, 2)
    got = CAL.add(start, 1, W, paused=[(start, date(2026, 3, 4))])
    assert got.date == date(2026, 3, 5)


def test_reversed_pause_interval_is_a_programming_error():
    with pytest.raises(ValueError):
        CAL.add(date(2026, 3, 2), 5, W, paused=[(date(2026, 3, 5), date(2026, 3, 4))])


# --- elapsed ---


def test_elapsed_counts_days_after_start_up_to_end():
    assert CAL.elapsed(date(2026, 9, 30), date(2026, 10, 13), W) == (5, False)
    assert CAL.elapsed(date(2026, 9, 30), date(2026, 10, 13), N) == (13, False)
    assert CAL.elapsed(date(2026, 9, 30), date(2026, 9, 30), W) == (0, False)
    assert CAL.elapsed(date(2026, 9, 30), date(2026, 9, 1), W) == (0, False)


def test_elapsed_skips_paused_days():
    pause = [(date(2026, 10, 8), date(2026, 10, 12))]
    assert CAL.elapsed(date(2026, 9, 30), date(2026, 10, 19), W, pause) == (5, False)
    assert CAL.elapsed(date(2026, 9, 30), date(2026, 10, 19), N, pause) == (14, False)


def test_elapsed_into_an_unpublished_year_is_estimated_for_workdays_only():
    assert CAL.elapsed(date(2026, 12, 1), date(2027, 1, 10), W)[1] is True
    assert CAL.elapsed(date(2026, 12, 1), date(2027, 1, 10), N)[1] is False


# --- next_workday ---


def test_next_workday():
    assert CAL.next_workday(date(2026, 10, 9)) == date(2026, 10, 9)
    assert CAL.next_workday(date(2026, 10, 1)) == date(2026, 10, 8)
    assert CAL.next_workday(date(2026, 10, 11)) == date(2026, 10, 12)


# --- estimate for unpublished years ---


@pytest.mark.parametrize(
    ("day", "work"),
    [
        (date(2027, 1, 1), False),  # 元旦 (Friday)
        (date(2027, 2, 5), False),  # 除夕
        (date(2027, 2, 8), False),  # 初三, Monday
        (date(2027, 2, 9), True),  # 初四: no 调休 in the estimate
        (date(2027, 4, 5), False),  # 清明
        (date(2027, 5, 3), True),  # 劳动节 is 5/1–5/2 only
        (date(2027, 6, 9), False),  # 端午
        (date(2027, 9, 15), False),  # 中秋
        (date(2027, 10, 4), True),  # 国庆 is 10/1–10/3 only
        (date(2027, 10, 9), False),  # Saturday: no make-up workdays either
        (date(2030, 2, 2), False),  # 除夕 2030
        (date(2030, 2, 5), False),  # 初三 2030
        (date(2030, 2, 6), True),
        (date(2101, 10, 3), False),  # past the lunar tables: fixed dates still known
        (date(2101, 10, 4), True),
    ],
)
def test_estimate_uses_statutory_holidays_without_make_up_days(day, work):
    assert CAL.day(day) == (work, True)


def test_estimated_deadline_after_2026():
    got = CAL.add(date(2026, 12, 20), 20, W)
    assert got.estimated
    assert got.date.year == 2027


def test_estimate_rests_on_weekends_and_the_statutory_weekdays_only():
    weekday_rest = {
        d for d in days(date(2027, 1, 1), date(2027, 12, 31)) if d.weekday() < 5 and not CAL.is_workday(d)
    }
    # The other 6 of the 13 statutory days (2/6, 2/7, 5/1, 5/2, 10/2, 10/3) fall on weekends in 2027.
    assert weekday_rest == {
        date(2027, 1, 1),
        date(2027, 2, 5),
        date(2027, 2, 8),
        date(2027, 4, 5),
        date(2027, 6, 9),
        date(2027, 9, 15),
        date(2027, 10, 1),
    }
    assert not any(CAL.is_workday(d) for d in days(date(2027, 1, 1), date(2027, 12, 31)) if d.weekday() >= 5)


# --- county overrides ---


def test_override_beats_chinese_calendar():
    local = WorkCalendar({date(2026, 3, 3): False})  # e.g. a 民族自治地方 festival
    assert local.day(date(2026, 3, 3)) == (False, False)
    assert local.add(date(2026, 3, 2), 1, W).date == date(2026, 3, 4)
    assert CAL.add(date(2026, 3, 2), 1, W).date == date(2026, 3, 3)


def test_overridden_day_in_unpublished_year_is_not_estimated():
    cal = WorkCalendar({date(2027, 2, 9): False, date(2027, 2, 20): True})
    assert cal.day(date(2027, 2, 9)) == (False, False)
    assert cal.day(date(2027, 2, 20)) == (True, False)  # make-up Saturday
    assert cal.day(date(2027, 2, 10)) == (True, True)


def test_complete_year_is_authoritative():
    notice = {date(2027, 2, 9): False, date(2027, 2, 20): True}
    cal = WorkCalendar(notice, complete_years=[2027])
    # 2/5 除夕, 2/6–2/7 weekend, 2/8 初三, 2/9 rest by the notice → 2/10, 2/11, 2/12
    assert cal.add(date(2027, 2, 4), 3, W) == Deadline(date(2027, 2, 12), False)
    assert cal.add(date(2027, 12, 20), 20, W).estimated  # 2028 is still a guess
    assert WorkCalendar(notice).add(date(2027, 2, 4), 3, W).estimated


def test_all_rest_override_table_fails_with_a_clear_message():
    first = date(2026, 1, 1)
    cal = WorkCalendar({d: False for d in days(first, first + timedelta(MAX_SEARCH_DAYS + 10))})
    with pytest.raises(ValidationError) as e:
        cal.add(first, 5, W)
    assert e.value.message.startswith("从2026年1月1日起三年内数不够5个工作日")
    with pytest.raises(ValidationError, match="没有工作日"):
        cal.add(first, 5, N)
    with pytest.raises(ValidationError, match="没有工作日"):
        cal.next_workday(first)


def test_absurd_limit_fails_with_a_clear_message():
    with pytest.raises(ValidationError, match="三年内数不够"):
        CAL.add(date(2026, 1, 1), 2000, W)


def test_end_of_calendar_is_a_validation_error_not_overflow():
    with pytest.raises(ValidationError):
        CAL.add(date(9999, 12, 30), 5, W)
    with pytest.raises(ValidationError):
        CAL.add(date(9999, 12, 30), 5, N)


# --- speed ---


def test_twenty_workday_deadline_is_fast():
    starts = [date(2024, 1, 1) + timedelta(i) for i in range(0, 3 * 365, 3)]
    for s in starts:  # warm the year tables
        CAL.add(s, 20, W)
    rounds = 20
    t0 = time.perf_counter()
    for _ in range(rounds):
        for s in starts:
            CAL.add(s, 20, W)
    per_call = (time.perf_counter() - t0) / (rounds * len(starts))
    assert per_call < 50e-6


# --- properties ---


@props
@given(start=dates_2000_2100, n=st.integers(0, 120))
def test_workday_deadline_is_a_workday_and_strictly_increasing(start, n):
    here, nxt = CAL.add(start, n, W).date, CAL.add(start, n + 1, W).date
    assert here < nxt
    assert CAL.is_workday(nxt)
    if n:
        assert CAL.is_workday(here)


@props
@given(start=dates_2000_2100, n=st.integers(0, 120), spec=pause_lists)
def test_elapsed_inverts_add_for_workdays(start, n, spec):
    paused = pauses_from(start, spec)
    deadline = CAL.add(start, n, W, paused)
    assert CAL.elapsed(start, deadline.date, W, paused) == (n, deadline.estimated)


@props
@given(start=dates_2000_2100, n=st.integers(1, 120), spec=pause_lists)
def test_natural_deadline_is_day_n_or_the_first_free_workday_after_it(start, n, spec):
    paused = pauses_from(start, spec)
    got = CAL.add(start, n, N, paused).date
    free = [d for d in days(start + timedelta(1), got) if not any(a <= d <= b for a, b in paused)]
    assert free[-1] == got  # the deadline is never a paused day
    assert len(free) >= n
    assert CAL.is_workday(got)
    assert not any(CAL.is_workday(d) for d in free[n - 1 : -1])  # rolled over rest days only
    assert CAL.elapsed(start, got, N, paused)[0] == len(free)


@props
@given(
    start=st.dates(date(2004, 1, 1), date(2099, 6, 30)),
    n=st.integers(1, 80),
    offset=st.integers(0, 200),
    length=st.integers(0, 30),
)
def test_pause_inside_span_shifts_deadline_by_paused_working_days(start, n, offset, length):
    plain = CAL.add(start, n, W).date
    first = start + timedelta(1 + offset)
    last = first + timedelta(length)
    if last > plain:  # only pauses inside (start, deadline]
        return
    paused_workdays = sum(CAL.is_workday(d) for d in days(first, last))
    got = CAL.add(start, n, W, [(first, last)]).date
    assert got >= plain
    assert CAL.elapsed(plain, got, W)[0] == paused_workdays


@props
@given(start=dates_2000_2100, n=st.integers(0, 300), unit=st.sampled_from(TimeUnit), spec=pause_lists)
def test_never_raises_between_2000_and_2100(start, n, unit, spec):
    got = CAL.add(start, n, unit, pauses_from(start, spec))
    assert got.date >= start
    CAL.elapsed(start, got.date + timedelta(7), unit, pauses_from(start, spec))


@props
@given(
    start=st.dates(date(2004, 1, 1), date(2030, 12, 31)),
    n=st.integers(0, 120),
    unit=st.sampled_from(TimeUnit),
)
def test_estimated_iff_deadline_reaches_past_2026(start, n, unit):
    got = CAL.add(start, n, unit)
    assert got.estimated == (n > 0 and got.date.year > 2026)


@props
@given(d=st.dates(date(2004, 1, 1), date(2026, 12, 31)))
def test_published_years_match_chinese_calendar(d):
    assert CAL.day(d) == (chinese_calendar.is_workday(d), False)
