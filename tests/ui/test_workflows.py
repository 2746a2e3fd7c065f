"""Whole workflows across real stations (tmp dirs; events carried by ``store.ingest`` as sync would):
village 转报 → township 退回 → village again; township 转报 → county 决定 → village 送达 and 好差评."""

from __future__ import annotations

from textual.widgets import RadioSet

from schema.case import State
from station.services import cases
from station.ui.screens.case_page import CaseScreen
from station.ui.screens.dialogs import FormDialog
from station.ui.screens.inbox import InboxScreen
from tests.helpers import (
    DIBAO,
    TOWN,
    VILLAGE,
    id_number,
    make_station,
    material_names,
    receive,
    rongque_names,
)
from tests.ui.cases_support import county_station, idle, on_screen, screen_text, session, town_station, until
from tests.ui.conftest import unlock


def sync(src_dir, dst_dir, src_login, dst_login) -> int:
    """Carry every event of one station to another (what a sync or a USB bundle does)."""
    with session(src_dir, src_login) as src:
        events = list(src.store.events())
    with session(dst_dir, dst_login) as dst:
        return receive(dst, events)


def timeline_of(page: CaseScreen) -> str:
    """The whole timeline as drawn (scrolled out of view or not)."""
    return str(page.query_one("#case-timeline").render())


async def open_from_inbox(pilot, login: str) -> CaseScreen:
    await unlock(pilot, login)
    await pilot.press("f4")
    await on_screen(pilot, InboxScreen)
    await pilot.press("enter")
    page = await on_screen(pilot, CaseScreen)
    await until(pilot, lambda: page.detail is not None, "the case")
    return page


async def act(pilot, key: str, *typed: str):
    """Press an action key on the case page, type into its dialog, confirm; return the reloaded page."""
    page = pilot.app.screen
    loads = page.loads
    await pilot.press(key)
    await until(pilot, lambda: isinstance(pilot.app.screen, FormDialog), f"the dialog of {key}")
    await pilot.press(*typed)
    await until(pilot, lambda: pilot.app.screen is page and page.loads > loads, f"the action {key}")
    await idle(pilot)
    return page


def dibao_at_village(root) -> str:
    """A 低保 case registered and accepted at the village with its bank account as 容缺."""
    bank = rongque_names(DIBAO)
    with make_station(root) as v:
        view = cases.register(
            v,
            item_code=DIBAO,
            name="李建国",
            id_number=id_number(seq="002"),
            phone="13900001111",
            received=[m for m in material_names(DIBAO) if m not in bank],
        )
        cases.act(v, view.case_id, "accept", {"rongque": bank, "promise": "十个工作日内补交"})
        return view.case_id


async def test_township_forward_and_return(tmp_path, make_app, now):
    village, town = tmp_path / "village", tmp_path / "town"
    case_id = dibao_at_village(village)
    town_station(town).close()

    # The village agent forwards the case (转报) from its case page.
    app = make_app(village)
    async with app.run_test(size=(100, 30)) as pilot:
        await unlock(pilot)
        app.open_case(case_id)
        page = await on_screen(pilot, CaseScreen)
        await until(pilot, lambda: page.detail is not None, "the case")
        await pilot.press("f")
        dialog = await on_screen(pilot, FormDialog)
        assert "转报上一级" in dialog.prompt
        await pilot.press(*"材料齐全请审核", "enter")
        await until(pilot, lambda: page.detail.view.holder_org == TOWN, "the forward")
        assert "f 转报" not in screen_text(app).split("\n")[-1]  # no longer the village's to forward

    sync(village, town, "agent1", "clerk1")

    # The township clerk finds it in the inbox and returns it with a reason.
    app = make_app(town)
    async with app.run_test(size=(100, 30)) as pilot:
        page = await open_from_inbox(pilot, "clerk1")
        assert page.case_id == case_id
        assert "当前经办：乡镇级（330522101000）" in screen_text(app)
        assert "转报：材料齐全请审核" in timeline_of(page)
        page = await act(pilot, "t", "enter", *"家庭经济状况核对授权书未签字", "enter")
        assert page.detail.view.state is State.RETURNED
        assert page.detail.view.holder_org == VILLAGE

    with session(town, "clerk1") as t:
        view = cases.get(t, case_id)
        assert (view.state, view.holder_org) == (State.RETURNED, VILLAGE)

    sync(town, village, "clerk1", "agent1")

    # Back at the village: the returned case waits in its inbox with the township's reason.
    app = make_app(village)
    async with app.run_test(size=(100, 30)) as pilot:
        page = await open_from_inbox(pilot, "agent1")
        assert page.case_id == case_id and page.detail.view.state is State.RETURNED
        text = timeline_of(page)
        assert "乡镇级窗口人员 clerk1" in text and "退回：家庭经济状况核对授权书未签字" in text
        page = await act(pilot, "f", *"已补签授权书", "enter")
        assert page.detail.view.holder_org == TOWN
        assert app.internal_errors == []


async def test_county_decision_then_delivery_at_the_village(tmp_path, make_app, now):
    village, town, county = tmp_path / "village", tmp_path / "town", tmp_path / "county"
    case_id = dibao_at_village(village)
    with session(village) as v:
        cases.act(v, case_id, "forward", {"opinion": "请审核"})
    town_station(town).close()
    county_station(county).close()
    sync(village, town, "agent1", "clerk1")
    with session(town, "clerk1") as t:
        cases.act(t, case_id, "receive")
        cases.act(t, case_id, "supplement", {"materials": rongque_names(DIBAO)})  # the promised bank account arrived
        cases.act(t, case_id, "forward", {"opinion": "入户调查属实，报县审批"})
    sync(village, county, "agent1", "shenpi")
    sync(town, county, "clerk1", "shenpi")
    with session(county, "shenpi") as c:  # taken in, and 低保 is publicised for 7 days before approval
        cases.act(c, case_id, "receive")
        cases.act(c, case_id, "publicity", {"note": "村务公开栏"})
    now("2026-03-10T09:00:00+08:00")
    with session(county, "shenpi") as c:
        cases.act(c, case_id, "publicity-end", {"result": "公示期满无异议"})

    app = make_app(county)
    async with app.run_test(size=(120, 36)) as pilot:
        page = await open_from_inbox(pilot, "shenpi")
        assert page.case_id == case_id
        assert "入户调查属实，报县审批" in timeline_of(page)
        await pilot.press("d")
        form = await on_screen(pilot, FormDialog)
        form.query_one("#field-outcome", RadioSet).focus()
        await pilot.press("enter", "tab", *"符合低保条件同意", "tab", "tab", "ctrl+s")
        await until(pilot, lambda: page.detail.view.state is State.DONE, "the decision")
        assert page.detail.view.outcome == "approved"
        assert "办结：办结" in screen_text(app)
        assert "县级审批人员 shenpi" in timeline_of(page) and "决定：准予，符合低保条件同意" in timeline_of(
            page
        )

    sync(county, village, "shenpi", "agent1")

    app = make_app(village)
    async with app.run_test(size=(120, 36)) as pilot:
        await unlock(pilot)
        app.open_case(case_id)
        page = await on_screen(pilot, CaseScreen)
        await until(pilot, lambda: page.detail is not None, "the case")
        assert page.detail.view.state is State.DONE  # the county's result arrived at the village
        page = await act(pilot, "g", "enter", "ctrl+s")  # 送达: 窗口领取 (the first choice)
        assert page.detail.view.state is State.DELIVERED
        assert app.internal_errors == []
