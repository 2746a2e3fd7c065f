"""The case list: search by name, ID tail and 办件编号; filters; paging; opening a case."""

from __future__ import annotations

from textual.widgets import Checkbox, Input, Select

from schema.case import State
from station.services import cases
from station.ui.screens.case_page import CaseScreen
from station.ui.screens.cases import PAGE, CasesScreen
from station.ui.widgets.case_table import CaseTable
from tests.helpers import OLD_AGE_CARD, PENSION, id_number, material_names
from tests.ui.cases_support import idle, on_screen, screen_text, session
from tests.ui.conftest import unlock

NAMES = ["王秀英", "李建国", "张桂兰", "王建军"]


def arrange(station_dir, n: int = 4) -> list:
    """``n`` cases, names cycling through NAMES, ID numbers ending in distinct tails."""
    views = []
    with session(station_dir) as s:
        for i in range(n):
            code = PENSION if i % 2 == 0 else OLD_AGE_CARD
            v = cases.register(
                s,
                item_code=code,
                name=NAMES[i % len(NAMES)],
                id_number=id_number(seq=f"{i:03d}"),
                phone=f"1380000{i:04d}",
                received=material_names(code),
            )
            if i % 2 == 0:
                v = cases.act(s, v.case_id, "accept")
            views.append(v)
    return views


def shown(screen: CasesScreen) -> list[str]:
    table = screen.query_one("#cases", CaseTable)
    return [table.coordinate_to_cell_key((r, 0))[0].value for r in range(table.row_count)]


async def open_list(pilot, **filters) -> CasesScreen:
    await unlock(pilot)
    pilot.app.open_cases(**filters)
    screen = await on_screen(pilot, CasesScreen)
    await idle(pilot)
    return screen


async def search(pilot, screen: CasesScreen, text: str) -> list[str]:
    box = screen.query_one("#search", Input)
    box.focus()
    box.value = ""
    await idle(pilot)
    await pilot.press(*text)
    await idle(pilot)
    assert screen.shown_query == ("search", text)
    return shown(screen)


async def test_search_finds_by_name_id_tail_case_number_and_initials(station_dir, make_app, now):
    views = arrange(station_dir)
    by_no = {v.case_no: v.case_id for v in views}
    app = make_app(station_dir)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_list(pilot)
        assert set(shown(screen)) == set(by_no.values())  # newest first, all of them

        assert set(await search(pilot, screen, "王")) == {views[0].case_id, views[3].case_id}
        assert await search(pilot, screen, "桂兰") == [views[2].case_id]
        assert await search(pilot, screen, "ljg") == [views[1].case_id]  # 李建国's initials
        tail = id_number(seq="001")[-4:]
        assert await search(pilot, screen, tail) == [views[1].case_id]
        assert await search(pilot, screen, views[3].case_no) == [views[3].case_id]
        assert await search(pilot, screen, "13800000002") == [views[2].case_id]
        assert await search(pilot, screen, "赵") == []
        assert "没有找到与“赵”匹配的办件" in screen_text(app)
        # The table only ever shows masked ID numbers and phones.
        await search(pilot, screen, "王")
        text = screen_text(app)
        assert "3305**********" in text and id_number(seq="000") not in text
        assert app.internal_errors == []


async def test_enter_or_a_click_opens_the_case(station_dir, make_app, now):
    views = arrange(station_dir)
    app = make_app(station_dir)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_list(pilot)
        await search(pilot, screen, views[1].case_no)
        await pilot.press("enter")  # from the search box: to the table
        await pilot.press("enter")  # open
        page = await on_screen(pilot, CaseScreen)
        assert page.case_id == views[1].case_id
        await pilot.press("escape")
        screen = await on_screen(pilot, CasesScreen)
        await pilot.click("#cases", offset=(4, 1))  # the first data row
        page = await on_screen(pilot, CaseScreen)
        assert page.case_id == views[1].case_id


async def test_filters_by_state_item_overdue_and_dates(station_dir, make_app, now):
    views = arrange(station_dir)
    app = make_app(station_dir)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_list(pilot)
        screen.query_one("#filter-state", Select).value = State.IN_PROGRESS.value
        await idle(pilot)
        assert set(shown(screen)) == {views[0].case_id, views[2].case_id}
        screen.query_one("#filter-state", Select).clear()
        await idle(pilot)
        screen.query_one("#filter-item", Select).value = OLD_AGE_CARD
        await idle(pilot)
        assert set(shown(screen)) == {views[1].case_id, views[3].case_id}
        screen.query_one("#filter-item", Select).clear()
        await idle(pilot)
        assert len(shown(screen)) == 4

        now("2026-03-20T09:00:00+08:00")  # the accepted ones (due 2026-03-05) are now overdue
        screen.query_one("#filter-overdue", Checkbox).value = True
        await idle(pilot)
        assert set(shown(screen)) == {views[0].case_id, views[2].case_id}
        assert "超期" in screen_text(app)
        screen.query_one("#filter-overdue", Checkbox).value = False

        since = screen.query_one("#filter-since", Input)
        since.focus()
        await pilot.press(*"2026-03-03", "enter")
        await idle(pilot)
        assert shown(screen) == []
        await pilot.press(*["backspace"] * 10, *"2026-3-2", "enter")
        await idle(pilot)
        assert "起始日期“2026-3-2”应为 YYYY-MM-DD" in screen_text(app)


async def test_home_tile_filters_arrive_with_a_title(station_dir, make_app, now):
    views = arrange(station_dir)
    app = make_app(station_dir)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_list(
            pilot, title="待受理/转报", holder="330522101001", states=["received", "in_progress", "returned"]
        )
        assert "待受理/转报" in screen_text(app)
        assert screen.query_one("#filter-state", Select).value == "__base__"
        assert set(shown(screen)) == {v.case_id for v in views}


async def test_pages_load_as_the_cursor_reaches_the_end(station_dir, make_app, now):
    arrange(station_dir, n=PAGE + 12)
    app = make_app(station_dir)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_list(pilot)
        table = screen.query_one("#cases", CaseTable)
        assert table.row_count == PAGE and table.has_more
        assert "还有更多" in screen_text(app)
        table.focus()
        await pilot.press("end")
        await idle(pilot)
        assert table.row_count == PAGE + 12 and not table.has_more
        assert len(set(shown(screen))) == PAGE + 12
        assert f"共 {PAGE + 12} 件" in screen_text(app)

        # Open the last case and come back: the rows loaded and the cursor stay.
        last = table.current_case_id()
        await pilot.press("enter")
        await on_screen(pilot, CaseScreen)
        await pilot.press("escape")
        await on_screen(pilot, CasesScreen)
        await idle(pilot)
        assert table.row_count == PAGE + 12 and table.current_case_id() == last

        # Search results page the same way (a region code lists that village's cases).
        await search(pilot, screen, "330522101001")
        assert table.row_count == PAGE and table.has_more
        table.focus()
        await pilot.press("ctrl+n")
        await idle(pilot)
        assert table.row_count == PAGE + 12 and len(set(shown(screen))) == PAGE + 12
