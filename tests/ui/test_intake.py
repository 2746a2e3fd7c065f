"""收件 through keys: find the item, enter the applicant, tick materials, then 受理 / 一次性告知 /
不予受理 / 即办; live ID validation; advice-only items; errors next to their field."""

from __future__ import annotations

from textual.widgets import Input, OptionList, Static

from schema.case import State
from station.services import cases, queries
from station.services import timeline as timelines
from station.ui.screens.case_page import CaseScreen
from station.ui.screens.dialogs import ConfirmDialog, FormDialog, ReasonDialog
from station.ui.screens.intake import IntakeScreen
from station.ui.widgets.material_checklist import MaterialChecklist
from tests.helpers import ID_CARD, MEDICAL, PENSION, id_number
from tests.ui.cases_support import idle, on_screen, screen_text, session, until
from tests.ui.conftest import unlock

ID = id_number()  # 330522195001010011: born 1950-01-01, male


async def open_intake(pilot) -> IntakeScreen:
    await unlock(pilot)
    await pilot.press("f2")
    return await on_screen(pilot, IntakeScreen)


async def choose(pilot, text: str) -> None:
    """Type ``text`` in the 事项 search and take the first result (Enter)."""
    screen = pilot.app.screen
    screen.query_one("#item-search", Input).focus()
    await pilot.press(*text)
    await idle(pilot)
    await pilot.press("enter")
    await idle(pilot)


async def fill_applicant(pilot, name="王秀英", ident=ID, phone="13800001234") -> None:
    screen = pilot.app.screen
    screen.query_one("#applicant-name", Input).focus()
    await pilot.press(*name, "tab", *ident, "tab", *phone, "tab")
    await idle(pilot)


async def stored(app, **filters):
    return await app.db(queries.list_cases, app.session, **filters)


async def test_intake_to_accept_shows_the_promised_date_and_opens_the_case(station_dir, make_app, now):
    app = make_app(station_dir)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_intake(pilot)
        await choose(pilot, "基本养老保险参保")
        assert screen.item.impl_code == PENSION
        assert "承诺时限：3个工作日" in str(screen.query_one("#guide", Static).render())
        await fill_applicant(pilot)
        assert app.focused is screen.query_one("#materials", MaterialChecklist)
        await pilot.press("a")  # 全部已收
        await idle(pilot)
        assert "受理后承诺办结日：2026-03-05" in str(screen.query_one("#preview", Static).render())

        await pilot.press("f6")
        dialog = await on_screen(pilot, ConfirmDialog)
        assert "承诺办结日：2026-03-05" in dialog.text and "3305**********0011" in dialog.text
        assert ID not in dialog.text  # the full number never appears on screen
        await pilot.press("enter")
        done = await on_screen(pilot, ConfirmDialog)
        assert "办件编号：330522101001-20260302-01-0001" in done.text
        await pilot.press("enter")  # 打开办件
        page = await on_screen(pilot, CaseScreen)
        assert page.detail.view.state is State.IN_PROGRESS

        rows = await stored(app)
        assert [(r.case_no, r.state, r.applicant_name, r.due_date) for r in rows] == [
            ("330522101001-20260302-01-0001", State.IN_PROGRESS, "王秀英", "2026-03-05")
        ]
        # Esc from the case goes back to a blank intake form, ready for the next applicant.
        await pilot.press("escape")
        screen = await on_screen(pilot, IntakeScreen)
        assert screen.item is None and screen.query_one("#applicant-name", Input).value == ""
        assert app.internal_errors == []


async def test_notify_missing_then_supplement_on_the_case_page(station_dir, make_app, now):
    app = make_app(station_dir)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_intake(pilot)
        await choose(pilot, "基本养老保险参保")
        await fill_applicant(pilot)
        await pilot.press("space")  # the first material (居民身份证) received; the other two missing
        await idle(pilot)
        preview = str(screen.query_one("#preview", Static).render())
        assert "缺必需材料：户口簿（首页及本人页）、《城乡居民基本养老保险参保登记表》" in preview

        await pilot.press("f6")  # 受理 is not possible: the reason is shown, no dialog
        await idle(pilot)
        assert isinstance(app.screen, IntakeScreen)

        await pilot.press("f7")
        dialog = await on_screen(pilot, ConfirmDialog)
        # ALL missing materials at once, and the 补正 deadline (30 natural days).
        assert "1. 户口簿（首页及本人页）" in dialog.text
        assert "2. 《城乡居民基本养老保险参保登记表》" in dialog.text
        assert "补正期限：2026-04-01" in dialog.text
        await pilot.press("enter")
        await on_screen(pilot, ConfirmDialog)
        await pilot.press("enter")
        page = await on_screen(pilot, CaseScreen)
        assert page.detail.view.state is State.AWAITING_SUPPLEMENT
        assert "补正期限：2026-04-01" in screen_text(app)

        now("2026-03-04T10:00:00+08:00")
        await pilot.press("b")  # 补正
        from textual.widgets import SelectionList

        from station.ui.screens.dialogs import FormDialog

        form = await on_screen(pilot, FormDialog)
        choices = form.query_one("#field-materials", SelectionList)
        assert choices.option_count == 2
        await pilot.press("space", "down", "space", "ctrl+s")
        page = await on_screen(pilot, CaseScreen)
        await until(pilot, lambda: page.detail.view.state is State.RECEIVED, "补正 to finish")

        [row] = await stored(app)
        assert row.state is State.RECEIVED  # back to 待受理: the notice came before 受理
        view = page.detail.view
        assert set(view.materials.values()) == {"received"}
        # Now it can be accepted from the case page.
        await pilot.press("a")
        form = await on_screen(pilot, FormDialog)
        assert "受理后承诺办结日：2026-03-09" in form.prompt  # from Wednesday 4 March: 3 working days
        await pilot.press("ctrl+s")
        page = await on_screen(pilot, CaseScreen)
        await until(pilot, lambda: page.detail.view.state is State.IN_PROGRESS, "受理")
        assert app.internal_errors == []


async def test_refuse_requires_a_reason(station_dir, make_app, now):
    app = make_app(station_dir)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_intake(pilot)
        await choose(pilot, "基本养老保险参保")
        await fill_applicant(pilot)
        await pilot.press("f8")
        dialog = await on_screen(pilot, ReasonDialog)
        await pilot.press("enter")  # empty: refused by the form, the dialog stays
        await idle(pilot)
        assert app.screen is dialog
        assert "请填写理由" in str(dialog.query_one("#error-reason", Static).render())
        await pilot.press(*"不属于本村受理范围", "enter")
        done = await on_screen(pilot, ConfirmDialog)
        assert "已不予受理" in done.text
        await pilot.press("escape")  # 继续收件
        screen = await on_screen(pilot, IntakeScreen)
        assert screen.item is None

        [row] = await stored(app)
        assert row.state is State.REFUSED
        entries = await app.db(timelines.timeline, app.session, row.case_id)
        assert entries[-1].action == "不予受理" and entries[-1].detail == "不属于本村受理范围"


async def test_immediate_item_is_done_on_the_spot(station_dir, make_app, now):
    app = make_app(station_dir)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_intake(pilot)
        await choose(pilot, "医保参保")
        assert screen.item.impl_code == MEDICAL
        assert screen.query_one("#do-immediate").display
        await fill_applicant(pilot)
        await pilot.press("a", "f12")
        dialog = await on_screen(pilot, ConfirmDialog)
        assert "当场办结" in dialog.text
        await pilot.press("enter")
        done = await on_screen(pilot, ConfirmDialog)
        assert "已即办办结" in done.text
        await pilot.press("escape")
        await on_screen(pilot, IntakeScreen)
        [row] = await stored(app)
        assert row.state is State.DONE
        view = await app.db(cases.get, app.session, row.case_id)
        assert view.outcome == "approved"


async def test_enter_typed_before_the_search_finishes_takes_the_new_first_result(
    station_dir, make_app, now, monkeypatch
):
    import time

    from station.ui.screens import intake as intake_screen

    search = intake_screen._search

    def slow_search(session, text):  # a slow PC: the results arrive after the Enter
        time.sleep(0.3)
        return search(session, text)

    app = make_app(station_dir)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_intake(pilot)
        monkeypatch.setattr(intake_screen, "_search", slow_search)
        screen.query_one("#item-search", Input).focus()
        await pilot.press(*"医保参保", "enter")
        assert screen.item is None and screen._results_for != "医保参保"  # Enter came first
        await idle(pilot)
        assert screen.item is not None and screen.item.impl_code == MEDICAL


async def test_immediate_is_not_offered_for_a_promised_item(station_dir, make_app, now):
    app = make_app(station_dir)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_intake(pilot)
        await choose(pilot, "基本养老保险参保")
        assert not screen.query_one("#do-immediate").display
        assert "F12" not in screen_text(app).split("\n")[-1]  # not in the footer either
        await pilot.press("f12")
        await idle(pilot)
        assert app.screen is screen and await stored(app) == []


async def test_id_number_is_checked_live_and_masked_after_leaving(station_dir, make_app, now):
    app = make_app(station_dir)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_intake(pilot)
        await choose(pilot, "基本养老保险参保")
        note = screen.query_one("#id-note", Static)
        field = screen.query_one("#applicant-id", Input)
        field.focus()
        await pilot.press(*ID[:17])
        await idle(pilot)
        assert str(note.render()) == "已输入17位，共18位"
        wrong = "0" if ID[17] != "0" else "1"
        await pilot.press(wrong)
        await idle(pilot)
        assert "校验不通过" in str(note.render()) and note.has_class("-error")
        await pilot.press("backspace", ID[17])
        await idle(pilot)
        assert str(note.render()) == "出生日期 1950年01月01日　性别 男" and note.has_class("-ok")

        assert ID in screen_text(app)  # visible while typing
        await pilot.press("tab")
        await idle(pilot)
        text = screen_text(app)
        assert "3305**********0011" in text and ID not in text
        assert field.value == ID  # nothing typed is lost
        field.focus()
        await idle(pilot)
        assert ID in screen_text(app)

        # A letter in the middle is reported at once.
        field.value = ""
        await pilot.press(*"3305A")
        await idle(pilot)
        assert "请检查“A”" in str(note.render())


async def test_an_advice_only_item_cannot_be_received_at_a_village(station_dir, make_app, now):
    app = make_app(station_dir)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_intake(pilot)
        await choose(pilot, "居民身份证申领")
        assert screen.item.impl_code == ID_CARD
        assert "村级仅可咨询" in str(screen.query_one("#item-chosen", Static).render())
        assert "村级仅可咨询，不能收件" in str(screen.query_one("#preview", Static).render())
        await fill_applicant(pilot)
        await pilot.press("a", "f6")
        await idle(pilot)
        assert app.screen is screen  # no confirmation: nothing can be registered
        assert await stored(app) == []
        options = screen.query_one("#item-results", OptionList)
        assert "村级仅可咨询" in str(options.get_option_at_index(0).prompt)


async def test_errors_go_next_to_the_field_and_nothing_typed_is_lost(station_dir, make_app, now):
    app = make_app(station_dir)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_intake(pilot)
        await choose(pilot, "基本养老保险参保")
        await fill_applicant(pilot, phone="1380000")
        phone_note = screen.query_one("#phone-note", Static)
        assert "手机号应为11位数字，当前为7位" in str(phone_note.render())  # on leaving the field
        await pilot.press("a", "f6")
        await idle(pilot)
        assert app.screen is screen  # refused before any confirmation
        assert app.focused is screen.query_one("#applicant-phone", Input)
        assert screen.applicant() == {"name": "王秀英", "id_number": ID, "phone": "1380000"}
        assert set(screen.query_one("#materials", MaterialChecklist).values().values()) == {"received"}
        assert await stored(app) == []

        await pilot.press("end", *"1234", "f6")
        await on_screen(pilot, ConfirmDialog)
        await pilot.press("enter")
        await on_screen(pilot, ConfirmDialog)
        await pilot.press("escape")
        await on_screen(pilot, IntakeScreen)
        [row] = await stored(app)
        assert row.phone_masked == "138****1234"


async def test_rongque_is_offered_only_where_the_catalog_allows_it(station_dir, make_app, now):
    app = make_app(station_dir)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_intake(pilot)
        await choose(pilot, "老年人优待证")
        await fill_applicant(pilot)
        checklist = screen.query_one("#materials", MaterialChecklist)
        await pilot.press("a", "3")  # row 1 (居民身份证) is not 容缺-able: refused, stays 已收
        await idle(pilot)
        assert checklist.values()["居民身份证"] == "received"
        await pilot.press("down", "3")  # 近期1寸免冠彩色照片 may be 容缺
        await idle(pilot)
        assert checklist.values()["近期1寸免冠彩色照片"] == "rongque"
        assert "容缺受理：近期1寸免冠彩色照片" in str(screen.query_one("#preview", Static).render())
        await pilot.press("f6")
        form = await on_screen(pilot, FormDialog)  # the applicant's written promise is recorded
        assert "容缺材料：近期1寸免冠彩色照片" in form.prompt
        await pilot.press("enter")  # no promise typed: refused, the form stays
        await idle(pilot)
        assert app.screen is form and "请填写申请人书面承诺的内容" in str(form.query_one("#error-promise", Static).render())
        await pilot.press(*"本人承诺五日内补交照片", "enter")
        await on_screen(pilot, ConfirmDialog)
        await pilot.press("escape")
        await on_screen(pilot, IntakeScreen)
        [row] = await stored(app)
        assert row.state is State.IN_PROGRESS

    with session(station_dir) as s:
        view = cases.get(s, row.case_id)
        assert view.materials["近期1寸免冠彩色照片"] == "rongque"
        assert view.rongque_promise["promise"] == "本人承诺五日内补交照片" and view.rongque_promise["due"]


async def test_leaving_a_filled_form_asks_first(station_dir, make_app, now):
    from station.ui.screens.home import HomeScreen

    app = make_app(station_dir)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_intake(pilot)
        await choose(pilot, "基本养老保险参保")
        await pilot.press(*"王秀英")
        await pilot.press("escape")
        dialog = await on_screen(pilot, ConfirmDialog)
        assert "不保存" in dialog.text
        await pilot.press("escape")  # 继续填写: everything is still there
        await on_screen(pilot, IntakeScreen)
        assert screen.query_one("#applicant-name", Input).value == "王秀英"
        await pilot.press("escape")
        await on_screen(pilot, ConfirmDialog)
        await pilot.press("enter")  # 放弃
        await on_screen(pilot, HomeScreen)
        assert await stored(app) == []
