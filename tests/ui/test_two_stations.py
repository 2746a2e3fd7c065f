"""A village and a county-level station, both enrolled with one real county center, driven by the UI.

The village registers a case and forwards it (case page) and syncs (sync screen); the township
above it — a third station, driven through the plain services as its clerk would through its
own UI — syncs, forwards it to the county and syncs; the county station syncs, decides on the
case page and syncs; the village syncs again and finds the case 已办结 with the decision, on
its home screen and its case page.
"""

from __future__ import annotations

from textual.widgets import DataTable, Input, Static

from schema.case import State
from schema.org import Role
from station.replication.runner import sync_now
from station.services import cases
from station.session import unlock as open_station
from station.ui.screens.dialogs import FormDialog
from station.ui.screens.sync import SyncScreen
from tests.helpers import COUNTY, PENSION, PIN, TOWN, VILLAGE, id_number, material_names
from tests.station.sync_kit import CountyServer, enrolled_station
from tests.ui.conftest import settle, unlock


def text_of(widget) -> str:
    return str(widget.render())


async def until(pilot, condition, tries: int = 300) -> None:
    for _ in range(tries):
        if condition():
            return
        await pilot.pause()
    raise AssertionError("the screen did not get there")


async def sync_through_the_screen(pilot) -> SyncScreen:
    await pilot.press("f9")  # opens the sync screen and syncs at once
    await settle(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, SyncScreen)
    await until(pilot, lambda: not screen.busy)
    await settle(pilot)
    result = text_of(screen.query_one("#sync-result"))
    assert result.startswith("同步成功"), result
    await pilot.press("escape")
    await settle(pilot)
    return screen


async def act_on_case_page(pilot, case_id: str, key: str, **choices) -> None:
    app = pilot.app
    app.open_case(case_id)
    await settle(pilot)
    await pilot.press(key)
    await until(pilot, lambda: isinstance(app.screen, FormDialog))
    dialog = app.screen
    for field, value in choices.items():
        if isinstance(value, str):
            dialog.query_one(f"#field-{field}", Input).value = value
        else:  # the index of a choice
            list(dialog.query(f"#field-{field} RadioButton"))[value].value = True
    await pilot.press("ctrl+s")
    await until(pilot, lambda: type(app.screen).__name__ == "CaseScreen")
    await settle(pilot)


async def test_a_decision_made_at_the_county_reaches_the_village(tmp_path, now, make_app):
    county = CountyServer(tmp_path)
    try:
        village_dir, town_dir, county_dir = tmp_path / "village", tmp_path / "town", tmp_path / "county"
        with enrolled_station(village_dir, county, org=VILLAGE) as v:
            case = cases.register(
                v, item_code=PENSION, name="王秀英", id_number=id_number(), received=material_names(PENSION)
            )
            cases.act(v, case.case_id, "accept")
        enrolled_station(
            town_dir, county, org=TOWN, role=Role.CLERK, login="clerk1", name="城关镇便民服务中心"
        ).close()
        enrolled_station(
            county_dir, county, org=COUNTY, role=Role.REVIEWER, login="reviewer1", name="县政务服务中心"
        ).close()

        # The village forwards the case on its case page and syncs on the sync screen.
        app = make_app(village_dir)
        async with app.run_test(size=(80, 24)) as pilot:
            await unlock(pilot)
            await act_on_case_page(pilot, case.case_id, "f", opinion="材料齐全，请审核")
            assert State.TRANSFERRED.label in text_of(app.screen.query_one("#case-title"))
            assert "乡镇级" in text_of(app.screen.query_one("#case-head"))  # now held by the township
            await pilot.press("escape")
            await settle(pilot)
            await sync_through_the_screen(pilot)

        # The township (its clerk) passes it on to the county.
        with open_station(town_dir, "clerk1", PIN) as t:
            assert sync_now(t).ok
            cases.act(t, case.case_id, "receive")
            cases.act(t, case.case_id, "forward", {"opinion": "同意上报"})
            assert sync_now(t).ok

        # The county reviewer syncs, decides on the case page, syncs.
        app = make_app(county_dir)
        async with app.run_test(size=(120, 36)) as pilot:
            await unlock(pilot, "reviewer1")
            await sync_through_the_screen(pilot)
            await act_on_case_page(pilot, case.case_id, "j")  # 接件
            await pilot.press("escape")
            await settle(pilot)
            await act_on_case_page(pilot, case.case_id, "d", outcome=0, opinion="符合参保条件，准予登记")
            assert State.DONE.label in text_of(app.screen.query_one("#case-title"))
            await pilot.press("escape")
            await settle(pilot)
            await sync_through_the_screen(pilot)

        # Back at the village: after a sync the result is on the home screen and the case page.
        app = make_app(village_dir)
        async with app.run_test(size=(120, 36)) as pilot:
            await unlock(pilot)
            home = app.screen
            recent = home.query_one("#recent", DataTable)
            assert State.DONE.label not in [str(c) for c in recent.get_row(case.case_id)]
            await sync_through_the_screen(pilot)
            assert app.screen is home
            assert str(recent.get_row(case.case_id)[3]) == State.DONE.label  # 已办结
            app.open_case(case.case_id)
            await settle(pilot)
            page = app.screen
            assert State.DONE.label in text_of(page.query_one("#case-title"))
            timeline = text_of(page.query_one("#case-timeline", Static))
            assert "准予" in timeline and "符合参保条件，准予登记" in timeline
            assert "县级" in timeline
        with open_station(village_dir, "agent1", PIN) as v:
            assert cases.get(v, case.case_id).state is State.DONE
    finally:
        county.stop()
