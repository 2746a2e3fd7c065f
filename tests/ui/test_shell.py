"""The shell of the terminal UI: first run, unlock, home, locking, global keys, errors."""

from __future__ import annotations

import logging

import pytest
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Button, DataTable, Footer, Input, Select, Static

from schema.errors import NotFoundError, ValidationError
from station.config import DataDir
from station.services import cases
from station.session import unlock as unlock_station
from station.ui.app import INTERNAL_ERROR
from station.ui.background import THREAD_NAME
from station.ui.messages import CaseChanged
from station.ui.screens.case_page import CaseScreen
from station.ui.screens.cases import CasesScreen
from station.ui.screens.first_run import FirstRunScreen
from station.ui.screens.home import HomeScreen
from station.ui.screens.inbox import InboxScreen
from station.ui.screens.intake import IntakeScreen
from station.ui.screens.unlock import UnlockScreen
from station.ui.widgets.help import HelpScreen
from station.ui.widgets.tile import CountTile
from tests.helpers import DIBAO, LAND, PENSION, PIN, VILLAGE, id_number, material_names
from tests.ui.conftest import MESSAGE, PIN_INPUT, settle, unlock

SECRET_NAME, SECRET_ID = "王秀英", "330522195001010012"


def text(widget: Static) -> str:
    return str(widget.render())


def record_notes(app) -> list[tuple[str, str]]:
    notes: list[tuple[str, str]] = []
    original = app.notify

    def notify(message, *, title="", severity="information", **kw):
        notes.append((message, severity))
        original(message, title=title, severity=severity, **kw)

    app.notify = notify
    return notes


def record_calls(app, name: str) -> list:
    calls: list = []
    original = getattr(app, name)

    def wrapper(*args, **kwargs):
        calls.append((args, kwargs))
        return original(*args, **kwargs)

    setattr(app, name, wrapper)
    return calls


def seed(root) -> dict[str, str]:
    """A few cases at the station_dir village (Monday 2026-03-02): one 待补正, one accepted, one new."""
    ids = {}
    with unlock_station(root, "agent1", PIN) as s:
        ids["accepted"] = cases.register(
            s,
            item_code=PENSION,
            name="王秀英",
            id_number=id_number(seq="001"),
            phone="13800001234",
            received=material_names(PENSION),
        ).case_id
        cases.act(s, ids["accepted"], "accept")
        ids["supplement"] = cases.register(
            s, item_code=DIBAO, name="李建国", id_number=id_number(seq="003"), received=[]
        ).case_id
        cases.act(s, ids["supplement"], "notify-missing")
        ids["new"] = cases.register(
            s, item_code=LAND, name="张玉兰", id_number=id_number(seq="005"), received=material_names(LAND)
        ).case_id
    return ids


async def click_next(pilot) -> None:
    """Click 下一步/完成 (a Button ignores a click within 0.2 s of the previous one: wait that out)."""
    button = pilot.app.screen.query_one("#wizard-next", Button)
    while button.has_class("-active"):
        await pilot.pause(0.05)
    await pilot.click(button)
    await settle(pilot)


# -- first run ------------------------------------------------------------------------------------


async def test_first_run_offline_set_up_lands_on_home_signed_in(tmp_path, now, make_app):
    root = tmp_path / "new"
    app = make_app(root)
    async with app.run_test(size=(100, 36)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, FirstRunScreen)
        assert [b.id for b in screen.query(".mode-button")] == ["mode-offline", "mode-online", "mode-usb", "mode-restore"]
        await pilot.press("enter")  # the focused 离线初始化 button
        assert screen.page == "page-station"

        # A bad code: the message sits under the field, nothing typed is lost.
        await pilot.press(*"33052210100")
        await click_next(pilot)
        await settle(pilot)
        assert screen.page == "page-station"
        assert "应为12位数字" in text(screen._field("#org").query_one(".field-message", Static))
        assert screen.query_one("#org", Input).value == "33052210100"
        await pilot.press("1")  # now 12 digits: the level appears as it is typed
        await settle(pilot)
        assert text(screen._field("#org").query_one(".field-message", Static)) == "村级单位"
        await click_next(pilot)  # no station name yet
        assert screen.page == "page-station"
        assert "工作站名称" in text(screen._field("#station-name").query_one(".field-message", Static))
        assert app.focused is screen.query_one("#station-name", Input)
        screen.query_one("#station-name", Input).value = "东村便民服务室"
        await click_next(pilot)
        await settle(pilot)
        assert screen.page == "page-user"

        # Roles the village station allows, the village's own role chosen.
        role = screen.query_one("#role", Select)
        assert role.value == "agent"
        await pilot.press(*"zhang", "enter")
        screen.query_one("#user-name", Input).value = "张三"
        screen.query_one("#pin", Input).value = "Xiang-2026"
        screen.query_one("#pin2", Input).value = "Xiang-2027"
        await click_next(pilot)
        await settle(pilot)
        assert "两次输入的PIN不一致" in text(screen._field("#pin2").query_one(".field-message", Static))
        assert not DataDir(root).exists()
        screen.query_one("#pin2", Input).value = "Xiang-2026"
        await click_next(pilot)
        await settle(pilot)

        assert isinstance(app.screen, HomeScreen)
        assert app.session is not None and app.session.user.login == "zhang"
        assert text(app.screen.query_one("#home-station", Static)) == "东村便民服务室"
        assert text(app.screen.query_one("#home-user", Static)) == "张三 · 代办员"
    assert app.session is None  # closed on exit
    with unlock_station(root, "zhang", "Xiang-2026") as s:
        assert (s.config.org, s.config.name, s.user.name, s.user.role.value) == (
            VILLAGE,
            "东村便民服务室",
            "张三",
            "agent",
        )


async def test_first_run_role_list_follows_the_station_level(tmp_path, now, make_app):
    app = make_app(tmp_path / "town")
    async with app.run_test(size=(100, 36)) as pilot:
        await settle(pilot)
        screen = app.screen
        await pilot.press("enter")
        screen.query_one("#org", Input).value = "330522101000"
        screen.query_one("#station-name", Input).value = "城关镇便民服务中心"
        await click_next(pilot)
        await settle(pilot)
        role = screen.query_one("#role", Select)
        assert [v for _, v in role._options if v is not Select.NULL] == ["clerk", "admin"]  # a township holds only these
        assert role.value == "clerk"
        await pilot.press("escape")  # back: the station page still holds what was typed
        assert screen.page == "page-station"
        assert screen.query_one("#station-name", Input).value == "城关镇便民服务中心"


async def test_first_run_error_from_the_service_goes_next_to_its_field(tmp_path, now, make_app):
    app = make_app(tmp_path / "new")
    async with app.run_test(size=(100, 36)) as pilot:
        await settle(pilot)
        screen = app.screen
        await pilot.press("enter")
        screen.query_one("#org", Input).value = VILLAGE
        screen.query_one("#station-name", Input).value = "东村便民服务室"
        await click_next(pilot)
        await settle(pilot)
        screen.query_one("#login", Input).value = "张三"  # login must be Latin letters: init_station says so
        screen.query_one("#user-name", Input).value = "张三"
        screen.query_one("#pin", Input).value = screen.query_one("#pin2", Input).value = PIN
        await click_next(pilot)
        await settle(pilot)
        assert isinstance(app.screen, FirstRunScreen)
        assert "登录名" in text(screen._field("#login").query_one(".field-message", Static))
        assert app.session is None


# -- unlock ------------------------------------------------------------------------------------------


async def test_unlock_with_a_wrong_then_the_right_pin(station_dir, make_app):
    app = make_app(station_dir)
    async with app.run_test() as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, UnlockScreen)
        assert text(screen.query_one("#unlock-station", Static)) == "东村便民服务室"
        assert "村级" in text(screen.query_one("#unlock-org", Static))
        await unlock(pilot, "agent1", "wrong-pin-1")
        assert app.screen is screen and app.session is None
        assert text(screen.query_one(MESSAGE, Static)) == "PIN不正确，还可尝试9次"
        assert screen.query_one(PIN_INPUT, Input).value == ""
        assert app.focused is screen.query_one(PIN_INPUT, Input)
        await unlock(pilot, "agent1", PIN)
        assert isinstance(app.screen, HomeScreen)
        assert app.session.user.login == "agent1"
        assert text(app.screen.query_one("#home-station", Static)) == "东村便民服务室"


async def test_repeated_wrong_pins_are_slowed_with_the_wait_shown(station_dir, make_app, monkeypatch):
    from datetime import UTC, datetime

    from station.store.keyslots import KeySlots

    # The key slots' clock stands still: the delay after the third failure cannot run out mid-test.
    fixed, unlock_slot = datetime(2026, 3, 2, 1, 0, tzinfo=UTC), KeySlots.unlock
    monkeypatch.setattr(
        KeySlots, "unlock", lambda self, login, pin, now=None: unlock_slot(self, login, pin, now=fixed)
    )
    app = make_app(station_dir)
    async with app.run_test() as pilot:
        for _ in range(3):
            await unlock(pilot, "agent1", "wrong-pin-1")
        msg = text(app.screen.query_one(MESSAGE, Static))
        assert "还可尝试7次" in msg and "等待" in msg
        await unlock(pilot, "agent1", PIN)  # within the delay: refused without trying the PIN
        assert isinstance(app.screen, UnlockScreen)
        assert "请等待" in text(app.screen.query_one(MESSAGE, Static))


async def test_unlock_lists_only_active_users(tmp_path, make_app, now):
    from schema.org import Role
    from station.services import users
    from tests.helpers import make_station

    with make_station(tmp_path / "v", role=Role.ADMIN, login="admin1") as s:
        users.add_user(s, "agent2", Role.AGENT, PIN, "李四")
        users.add_user(s, "agent3", Role.AGENT, PIN, "王五")
        users.disable_user(s, "agent3")
    app = make_app(tmp_path / "v")
    async with app.run_test() as pilot:
        await settle(pilot)
        select = app.screen.query_one("#unlock-user", Select)
        assert [v for _, v in select._options] == ["admin1", "agent2"]
        await unlock(pilot, "agent2", PIN)
        assert app.session.user.name == "李四"


# -- home -------------------------------------------------------------------------------------------


async def test_home_counts_and_recent_cases(station_dir, make_app):
    ids = seed(station_dir)
    app = make_app(station_dir)
    async with app.run_test(size=(120, 36)) as pilot:
        await unlock(pilot)
        home = app.screen
        counts = {t.key: (t.label, t.count) for t in home.query(CountTile)}
        assert counts == {
            "today": ("今日收件", 3),
            "supplement": ("待补正", 1),
            "pending": ("待受理/转报", 2),
            "due_soon": ("两个工作日内到期", 0),
            "overdue": ("已超期", 0),
        }
        table = home.query_one("#recent", DataTable)
        assert table.row_count == 3
        # newest first; registered in the same (pinned) second, so by case number
        assert [k.value for k in table.rows] == [ids["accepted"], ids["supplement"], ids["new"]]
        assert table.get_row_at(0)[:4] == [
            f"{VILLAGE}-20260302-01-0001",
            "城乡居民基本养老保险参保登记",
            "王秀英",
            "办理中",
        ]
        assert "待上传" in text(home.query_one("#home-sync", Static))
        assert "未登记到县中心" in text(home.query_one("#home-sync", Static))  # sync_status: never enrolled
        assert "2026年3月2日 星期一" == text(home.query_one("#home-date", Static))


async def test_a_count_opens_the_filtered_list(station_dir, make_app):
    ids = seed(station_dir)
    app = make_app(station_dir)
    async with app.run_test(size=(120, 36)) as pilot:
        await unlock(pilot)
        calls = record_calls(app, "open_cases")
        await pilot.click("#tile-supplement")
        await settle(pilot)
        assert calls == [((), {"holder": VILLAGE, "states": ["awaiting_supplement"], "title": "待补正"})]
        assert isinstance(app.screen, CasesScreen)
        assert app.screen.query_one("#cases", DataTable).row_count == 1
        assert next(iter(app.screen.query_one("#cases", DataTable).rows)).value == ids["supplement"]
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, HomeScreen)
        app.screen.query_one("#tile-pending", CountTile).focus()
        await pilot.press("enter")
        await settle(pilot)
        assert calls[-1][1]["title"] == "待受理/转报"
        assert calls[-1][1]["states"] == ["received", "in_progress", "returned"]


async def test_number_keys_open_the_counts(station_dir, make_app):
    app = make_app(station_dir)
    async with app.run_test(size=(120, 36)) as pilot:
        await unlock(pilot)
        calls = record_calls(app, "open_cases")
        await pilot.press("5")
        assert calls[0][1]["overdue"] is True and calls[0][1]["title"] == "已超期"


async def test_enter_on_a_recent_case_opens_it(station_dir, make_app):
    ids = seed(station_dir)
    app = make_app(station_dir)
    async with app.run_test(size=(120, 36)) as pilot:
        await unlock(pilot)
        calls = record_calls(app, "open_case")
        app.screen.query_one("#recent", DataTable).focus()
        await pilot.press("down", "enter")
        await settle(pilot)
        assert calls == [((ids["supplement"],), {})]
        assert isinstance(app.screen, CaseScreen)
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, HomeScreen)
        await pilot.click("#recent", offset=(4, 3))  # one click on the third row
        await settle(pilot)
        assert calls[-1] == ((ids["new"],), {})


async def test_home_reloads_after_a_case_changed(station_dir, make_app):
    app = make_app(station_dir)
    async with app.run_test(size=(120, 36)) as pilot:
        await unlock(pilot)
        tile = app.screen.query_one("#tile-today", CountTile)
        assert tile.count == 0
        view = await app.db(
            cases.register,
            app.session,
            item_code=LAND,
            name="张玉兰",
            id_number=id_number(seq="005"),
            received=material_names(LAND),
        )
        app.post_message(CaseChanged(view.case_id))
        await settle(pilot)
        assert tile.count == 1
        assert app.screen.query_one("#recent", DataTable).row_count == 1


async def test_global_keys(station_dir, make_app):
    app = make_app(station_dir)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        opened = {name: record_calls(app, name) for name in ("open_intake", "open_cases", "open_inbox")}
        await pilot.press("f2", "f3", "f4")  # locked: nothing opens
        await settle(pilot)
        assert isinstance(app.screen, UnlockScreen) and len(app.screen_stack) == 2
        assert all(calls == [] for calls in opened.values())
        await unlock(pilot)
        for key, name, screen in (
            ("f2", "open_intake", IntakeScreen),
            ("f3", "open_cases", CasesScreen),
            ("f4", "open_inbox", InboxScreen),
        ):
            await pilot.press(key)
            await settle(pilot)
            assert len(opened[name]) == 1, name
            assert isinstance(app.screen, screen)
            while not isinstance(app.screen, HomeScreen):
                app.pop_screen()
                await settle(pilot)
        await pilot.press("f1")
        await settle(pilot)
        assert isinstance(app.screen, HelpScreen)
        rows = [
            tuple(map(str, app.screen.query_one(DataTable).get_row_at(i)))
            for i in range(app.screen.query_one(DataTable).row_count)
        ]
        assert ("Ctrl+L", "锁定", "全局") in rows and ("F3", "办件查询", "全局") in rows
        assert all(any("\u4e00" <= c <= "\u9fff" for c in r[1]) for r in rows)  # no English left
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, HomeScreen)


# -- locking ------------------------------------------------------------------------------------------


async def test_ctrl_l_locks_closes_the_database_and_forgets_the_key(station_dir, make_app):
    app = make_app(station_dir)
    async with app.run_test() as pilot:
        await unlock(pilot)
        session = app.session
        await pilot.press("ctrl+l")
        await settle(pilot)
        assert app.session is None
        assert isinstance(app.screen, UnlockScreen) and len(app.screen_stack) == 2
        assert app.screen.query_one("#unlock-user", Select).value == "agent1"
        assert app._session_thread.call(session.db.is_closed)
        assert session.data_key() == bytearray(32)
        await unlock(pilot)
        assert isinstance(app.screen, HomeScreen)


async def test_idle_lock(station_dir, make_app):
    t = [1000.0]
    app = make_app(station_dir, idle_lock_minutes=2, clock=lambda: t[0])
    async with app.run_test() as pilot:
        await unlock(pilot)
        session = app.session
        t[0] += 119
        assert app.check_idle_lock() is False
        await pilot.press("down")  # any key counts as activity
        t[0] += 100
        assert app.check_idle_lock() is False
        t[0] += 20  # two minutes since the key
        assert app.check_idle_lock() is True
        await settle(pilot)
        assert isinstance(app.screen, UnlockScreen)
        assert app.session is None
        assert app._session_thread.call(session.db.is_closed)
        assert session.data_key() == bytearray(32)
        assert app.check_idle_lock() is False  # already locked


async def test_idle_lock_time_comes_from_the_station_config(station_dir, make_app):
    app = make_app(station_dir)
    async with app.run_test() as pilot:
        assert app.idle_lock_minutes == 0  # locked: nothing to time
        await unlock(pilot)
        assert app.idle_lock_minutes == 10  # StationConfig default
        assert app.check_idle_lock(app.last_activity + 9 * 60) is False
        assert app.check_idle_lock(app.last_activity + 10 * 60) is True


async def test_the_database_lives_on_the_session_thread(station_dir, make_app):
    import threading

    app = make_app(station_dir)
    async with app.run_test() as pilot:
        await unlock(pilot)
        assert await app.db(lambda: threading.current_thread().name) == THREAD_NAME
        assert await app.db(lambda: app.session.db.is_closed()) is False
        assert app.session.db.is_closed()  # this thread never opened it
        with pytest.raises(NotFoundError):  # exceptions come back to the awaiting handler
            await app.db(cases.get, app.session, "no-such-case")


# -- errors ---------------------------------------------------------------------------------------------


class Boom(Screen):
    """A screen with a handler that fails, a key that works, and workers that fail."""

    BINDINGS = [
        Binding("x", "mark", "标记"),
        Binding("w", "bad_worker", "坏任务"),
        Binding("u", "user_error", "提示"),
    ]
    marked = 0

    def compose(self) -> ComposeResult:
        yield Button("boom", id="boom")
        yield Footer()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        raise RuntimeError(f"{SECRET_NAME} {SECRET_ID}")  # personal data in a message must never be logged

    def action_mark(self) -> None:
        self.marked += 1

    def action_bad_worker(self) -> None:
        async def fail() -> None:
            raise KeyError(SECRET_ID)

        self.run_worker(fail(), exit_on_error=False)

    def action_user_error(self) -> None:
        async def fail() -> None:
            raise ValidationError("请填写申请人姓名")

        self.run_worker(fail(), exit_on_error=False)


async def test_an_unexpected_exception_is_logged_without_personal_data_and_the_app_keeps_running(
    station_dir, make_app, cli_logging
):
    app = make_app(station_dir)
    async with app.run_test() as pilot:
        await unlock(pilot)
        notes = record_notes(app)
        app.push_screen(Boom())
        await settle(pilot)
        boom = app.screen
        await pilot.click("#boom")
        await settle(pilot)
        assert [type(e) for e in app.internal_errors] == [RuntimeError]
        assert (INTERNAL_ERROR, "error") in notes
        await pilot.press("x")  # the screen still handles keys
        await pilot.click("#boom")  # and fails again the same way
        await settle(pilot)
        assert boom.marked == 1 and len(app.internal_errors) == 2
        await pilot.press("w")  # a worker that fails without handling its exception
        await settle(pilot)
        assert isinstance(app.internal_errors[-1], KeyError)
        await pilot.press("u")  # a UserError: its message, not an internal error
        await settle(pilot)
        assert ("请填写申请人姓名", "warning") in notes and len(app.internal_errors) == 3
        await pilot.press("ctrl+l")  # the global keys still work
        await settle(pilot)
        assert isinstance(app.screen, UnlockScreen)
        app.internal_errors.clear()  # provoked on purpose
    for h in logging.getLogger().handlers:
        h.flush()
    log = DataDir(station_dir).log.read_text(encoding="utf-8")
    assert "RuntimeError" in log and "KeyError" in log and "test_shell.py" in log
    assert SECRET_NAME not in log and SECRET_ID not in log


# -- the footer -------------------------------------------------------------------------------------------


async def test_the_footer_is_rebuilt_only_when_its_keys_change(tmp_path, now, make_app):
    from textual.widgets._footer import FooterKey

    from station.ui.widgets.footer import StationFooter

    app = make_app(tmp_path / "new")
    async with app.run_test() as pilot:
        await settle(pilot)
        footer = app.screen.query_one(StationFooter)
        keys = list(footer.query(FooterKey))
        assert "上一步" not in [k.description for k in keys]  # nothing to go back to on the first page
        app.screen.refresh_bindings()
        await settle(pilot)
        assert list(footer.query(FooterKey)) == keys  # the same widgets: not rebuilt
        await pilot.press("enter")  # choose 离线初始化: now Esc goes back
        await settle(pilot)
        assert "上一步" in [k.description for k in footer.query(FooterKey)]


def test_the_unlock_screen_starts_without_the_database_layer():
    """The first frame must come quickly: nothing behind the PIN is imported before it (bench/ui.py)."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import station.cli.main, station.ui.app, station.ui.screens.unlock, station.ui.screens.first_run\n"
        "heavy = ('peewee', 'playhouse', 'sqlcipher3', 'sqlite_utils', 'requests', 'station.services',"
        " 'station.session', 'station.store.db')\n"
        "print(sorted(m for m in sys.modules if m.startswith(heavy)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
