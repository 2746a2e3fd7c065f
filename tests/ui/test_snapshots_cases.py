"""Snapshots of 收件 (an item chosen), the case list and a case page at 80×24 and 120×36.

Deterministic: the clock is pinned (``now``), names and ID numbers are fixed, case numbers come
from the pinned date, and the cursor does not blink. Update with ``--snapshot-update``.
"""

from __future__ import annotations

import pytest
from textual.widgets import Input

from station.services import cases
from tests.helpers import DIBAO, OLD_AGE_CARD, PENSION, id_number, material_names, rongque_names
from tests.ui.cases_support import idle, session, until
from tests.ui.conftest import unlock

SIZES = [(80, 24), (120, 36)]


@pytest.fixture(autouse=True)
def no_cursor_blink(monkeypatch):
    monkeypatch.setattr(Input, "_toggle_cursor", lambda self: None)


def arrange(station_dir, now) -> str:
    """A few cases in different states; returns the id of a 低保 case with a rich timeline."""
    people = [("王秀英", PENSION), ("李建国", DIBAO), ("张桂兰", OLD_AGE_CARD), ("赵德福", PENSION)]
    with session(station_dir) as s:
        ids = []
        for i, (name, code) in enumerate(people):
            now(f"2026-03-02T{9 + i:02d}:00:00+08:00")
            bank = rongque_names(code)
            received = [m for m in material_names(code) if m not in bank]
            v = cases.register(
                s,
                item_code=code,
                name=name,
                id_number=id_number(seq=f"{i + 1:03d}"),
                phone=f"1390000{i:04d}",
                received=received,
            )
            ids.append(v.case_id)
        cases.act(s, ids[0], "accept")
        cases.act(s, ids[1], "accept", {"rongque": rongque_names(DIBAO), "opinion": "材料已核对", "promise": "十日内补交"})
        cases.act(s, ids[2], "notify-missing")
        now("2026-03-09T10:00:00+08:00")  # a week later: the pension case is overdue
    return ids[1]


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_intake_with_an_item_chosen(snap_compare, station_dir, make_app, now, size):
    app = make_app(station_dir)

    async def run_before(pilot):
        await unlock(pilot)
        app.open_intake()
        await idle(pilot)
        await pilot.press(*"基本养老保险参保", "enter")
        await idle(pilot)
        await pilot.press(*"王秀英", "tab", *id_number(), "tab", "tab")
        await pilot.press("space")
        await idle(pilot)

    assert snap_compare(app, run_before=run_before, terminal_size=size)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_case_list(snap_compare, station_dir, make_app, now, size):
    arrange(station_dir, now)
    app = make_app(station_dir)

    async def run_before(pilot):
        await unlock(pilot)
        app.open_cases()
        await idle(pilot)

    assert snap_compare(app, run_before=run_before, terminal_size=size)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_case_page(snap_compare, station_dir, make_app, now, size):
    case_id = arrange(station_dir, now)
    app = make_app(station_dir)

    async def run_before(pilot):
        await unlock(pilot)
        app.open_case(case_id)
        await idle(pilot)
        await until(pilot, lambda: getattr(app.screen, "detail", None) is not None, "the case")
        await idle(pilot)

    assert snap_compare(app, run_before=run_before, terminal_size=size)
