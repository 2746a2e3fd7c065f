"""The case page: facts, conflicts, timeline, the actions allowed (and only those), audited reveal."""

from __future__ import annotations

from textual.widgets import RadioSet, Static

from schema import events as K
from schema import rules
from schema.case import State
from schema.events import seal
from station import clock
from station.services import case_detail, cases
from station.ui.screens.case_page import CaseScreen, action_dialog
from station.ui.screens.dialogs import ConfirmDialog, FormDialog
from tests.helpers import DIBAO, PENSION, id_number, material_names, receive, rongque_names
from tests.ui.cases_support import idle, on_screen, screen_text, session, until
from tests.ui.conftest import unlock


def arrange(station_dir, code=PENSION, accept=True, received=None):
    """One case registered (and accepted) at the village; returns its case id."""
    with session(station_dir) as s:
        view = cases.register(
            s,
            item_code=code,
            name="王秀英",
            id_number=id_number(),
            phone="13800001234",
            received=material_names(code) if received is None else received,
        )
        if accept:
            rongque = [m for m in rongque_names(code) if received is not None and m not in received]
            values = {"rongque": rongque, "promise": "十个工作日内补交"} if rongque else {}
            cases.act(s, view.case_id, "accept", values)
        return view.case_id


async def open_case(pilot, case_id: str) -> CaseScreen:
    await unlock(pilot)
    pilot.app.open_case(case_id)
    page = await on_screen(pilot, CaseScreen)
    await until(pilot, lambda: page.detail is not None, "the case to load")
    return page


def footer_line(app) -> str:
    return screen_text(app).split("\n")[-1]


async def test_the_page_shows_the_case_and_offers_exactly_the_allowed_actions(station_dir, make_app, now):
    case_id = arrange(station_dir)
    app = make_app(station_dir)
    async with app.run_test(size=(120, 36)) as pilot:
        page = await open_case(pilot, case_id)
        text = screen_text(app)
        assert "办件 330522101001-20260302-01-0001　办理中" in text
        assert "承诺办结：2026-03-05" in text
        assert "3305**********0011" in text and id_number() not in text
        assert "138****1234" in text
        assert "2026-03-02 09:00  村级代办员 agent1" in text
        assert "收件登记：城乡居民基本养老保险参保登记" in text

        view = page.detail.view
        author = await app.db(lambda s: s.author, app.session)
        expected = {a.kind for a in rules.allowed_actions(view, author, clock.iso(clock.now()))}
        assert expected == {
            K.CASE_NOTIFIED_MISSING,
            K.CASE_FORWARDED,
            K.CASE_SPECIAL_STARTED,
            K.CASE_VOID_REQUESTED,
        }
        actions = str(page.query_one("#case-actions", Static).render())
        footer = footer_line(app)
        for action in rules.REGISTRY.actions:
            shown = action.kind in expected
            assert (f" {action.key.upper()}  {action.label}" in actions) is shown, action.kind
            assert (f"{action.key} {action.label}" in footer) is shown, action.kind
        # A key for an action that is not allowed does nothing.
        await pilot.press("d")
        await idle(pilot)
        assert app.screen is page
        assert app.internal_errors == []


async def test_overdue_is_highlighted_and_estimated_dates_are_marked(station_dir, make_app, now):
    case_id = arrange(station_dir)
    now("2026-03-10T09:00:00+08:00")  # due 2026-03-05: five calendar days late
    app = make_app(station_dir)
    async with app.run_test(size=(120, 36)) as pilot:
        page = await open_case(pilot, case_id)
        assert page.detail.due.overdue
        assert "承诺办结：2026-03-05  已超期5天" in screen_text(app)


async def test_estimated_due_date_is_marked(tmp_path, make_app, now):
    from tests.helpers import make_station

    now("2030-03-04T09:00:00+08:00")  # beyond chinese_calendar's years: an estimate
    root = tmp_path / "station"
    make_station(root).close()
    case_id = arrange(root)
    app = make_app(root)
    async with app.run_test(size=(120, 36)) as pilot:
        await open_case(pilot, case_id)
        assert "承诺办结：2030-03-07（预计）" in screen_text(app)


async def test_reveal_asks_and_is_audited(station_dir, make_app, now):
    case_id = arrange(station_dir)
    app = make_app(station_dir)
    async with app.run_test(size=(120, 36)) as pilot:
        page = await open_case(pilot, case_id)
        await pilot.press("i")
        dialog = await on_screen(pilot, ConfirmDialog)
        assert "审计记录" in dialog.text
        await pilot.press("escape")  # changed their mind: nothing shown, nothing recorded
        await on_screen(pilot, CaseScreen)
        assert id_number() not in screen_text(app)
        await pilot.press("i")
        await on_screen(pilot, ConfirmDialog)
        await pilot.press("enter")
        page = await on_screen(pilot, CaseScreen)
        await until(pilot, lambda: page.revealed is not None, "the reveal")
        await idle(pilot)
        text = screen_text(app)
        assert id_number() in text and "查看完整身份证号" in text  # in the timeline too
        events = await app.db(lambda s: [e.kind for e in s.store.case_events(case_id)], app.session)
        assert events.count(K.CASE_ID_VIEWED) == 1


async def test_conflicts_are_shown_prominently_in_plain_chinese(station_dir, make_app, now):
    case_id = arrange(station_dir)
    with session(station_dir) as s:
        acc = next(e for e in s.store.case_events(case_id) if e.kind == K.CASE_ACCEPTED)
        # A second village PC that had not seen this acceptance accepts the case too.
        twin = seal(
            **{
                **acc.unsigned(),
                "id": acc.id + "-2",
                "station": "village-pc-2",
                "seq": 1,
                "prev": "",
                "hlc": acc.hlc + 1,
            }
        )
        receive(s, [twin])
    app = make_app(station_dir)
    async with app.run_test(size=(120, 36)) as pilot:
        page = await open_case(pilot, case_id)
        box = page.query_one("#case-conflicts", Static)
        assert box.display
        text = str(box.render())
        assert "此办件有1处冲突" in text and "受理：办件当前状态为“办理中”，不能受理" in text
        assert "【冲突：" in screen_text(app)  # marked in the timeline as well


async def test_decision_dialog_keeps_input_on_a_refused_decision(tmp_path, make_app, now):
    # A county reviewer deciding a case held at the county.
    from tests.ui.cases_support import county_station, town_station

    village_dir = tmp_path / "village"
    from tests.helpers import make_station

    make_station(village_dir).close()
    case_id = arrange(
        village_dir, code=DIBAO, received=[m for m in material_names(DIBAO) if m not in rongque_names(DIBAO)]
    )
    with session(village_dir) as v:
        cases.act(v, case_id, "forward", {"opinion": "请审核"})
        events = list(v.store.events())
    with town_station(tmp_path / "town") as t:
        receive(t, events)
        cases.act(t, case_id, "receive")
        cases.act(t, case_id, "supplement", {"materials": rongque_names(DIBAO)})  # the 容缺 bank account arrived
        cases.act(t, case_id, "forward", {"opinion": "审核通过"})
        events += list(t.store.events())
    county_dir = tmp_path / "county"
    with county_station(county_dir) as c:
        receive(c, events)
        cases.act(c, case_id, "receive")
    app = make_app(county_dir)
    async with app.run_test(size=(120, 36)) as pilot:
        await unlock(pilot, "shenpi")
        app.open_case(case_id)
        page = await on_screen(pilot, CaseScreen)
        await until(pilot, lambda: page.detail is not None, "load")
        assert "d 决定" in footer_line(app) and "t 退回" in footer_line(app)
        await pilot.press("d")
        form = await on_screen(pilot, FormDialog)
        outcome = form.query_one("#field-outcome", RadioSet)
        outcome.focus()
        await pilot.press("down", "enter")  # 不予批准
        await pilot.press("ctrl+s")  # without a reason: the rule refuses, the dialog stays
        await idle(pilot)
        assert app.screen is form
        assert "请填写不予批准的理由" in str(form.query_one("#form-error", Static).render())
        assert form.values()["outcome"] == "denied"  # what was chosen is kept
        await pilot.press("tab", *"家庭收入超过低保标准", "enter")
        page = await on_screen(pilot, CaseScreen)
        await until(pilot, lambda: page.detail.view.state is State.DONE, "the decision")
        assert page.detail.view.outcome == "denied"
        text = screen_text(app)
        assert "县级审批人员 shenpi" in text and "决定：不予批准，家庭收入超过低保标准" in text


async def test_return_needs_a_reason(tmp_path, make_app, now):
    from tests.helpers import make_station
    from tests.ui.cases_support import town_station

    village_dir = tmp_path / "village"
    make_station(village_dir).close()
    case_id = arrange(village_dir, code=DIBAO)
    with session(village_dir) as v:
        cases.act(v, case_id, "forward")
        events = list(v.store.events())
    town_dir = tmp_path / "town"
    with town_station(town_dir) as t:
        receive(t, events)
    app = make_app(town_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await unlock(pilot, "clerk1")
        app.open_case(case_id)
        page = await on_screen(pilot, CaseScreen)
        await until(pilot, lambda: page.detail is not None, "load")
        await pilot.press("t")
        dialog = await on_screen(pilot, FormDialog)
        await pilot.press("enter")
        await idle(pilot)
        assert app.screen is dialog and "请填写退回理由" in str(
            dialog.query_one("#error-reason", Static).render()
        )
        await pilot.press(*"户口簿复印件不清晰", "enter")
        page = await on_screen(pilot, CaseScreen)
        await until(pilot, lambda: page.detail.view.state is State.RETURNED, "the return")
        assert page.detail.view.holder_org == page.detail.view.intake_org


def test_every_rule_has_a_key_and_a_dialog(tmp_path, now):
    from tests.helpers import make_station

    keys = [a.key for a in rules.REGISTRY.actions]
    assert all(keys) and len(set(keys)) == len(keys)  # one key per action
    with make_station(tmp_path / "v") as s:
        case_id = cases.register(
            s, item_code=DIBAO, name="王秀英", id_number=id_number(), phone="", received=material_names(DIBAO)
        ).case_id
        detail = case_detail.detail(s, case_id)
        for kind, action in rules.ACTIONS.items():
            dialog = action_dialog(kind, detail, {"promised": "2026-03-05", "deadline": "2026-04-01"}, None)
            assert isinstance(dialog, FormDialog), kind
            assert dialog.title_text.startswith(action.label)
            assert [f.key for f in dialog.fields] == [f.name for f in action.fields]
