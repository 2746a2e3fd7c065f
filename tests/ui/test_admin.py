"""Administration: users (add, disable, reset PIN), station info, settings, the ID-number audit."""

from __future__ import annotations

import pytest
from textual.widgets import DataTable, Input, Static, TabbedContent

from schema.org import Role
from station.config import DataDir
from station.services import cases
from station.session import unlock as open_station
from station.store.keyslots import UserDisabled
from station.ui.screens.admin import AdminScreen
from station.ui.screens.dialogs import ConfirmDialog, FormDialog
from tests.helpers import PENSION, PIN, VILLAGE, id_number, make_station, material_names
from tests.ui.conftest import settle, unlock

NEW_PIN = "Cun-2026-xin"


@pytest.fixture
def admin_village(tmp_path, now):
    """A village station set up with its local administrator ``admin1`` (who manages its users)."""
    root = tmp_path / "village"
    make_station(root, org=VILLAGE, role=Role.ADMIN, login="admin1").close()
    return root


def text_of(widget) -> str:
    return str(widget.render())


def rows(table: DataTable) -> list[list[str]]:
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


async def until(pilot, condition, tries: int = 300) -> None:
    for _ in range(tries):
        if condition():
            return
        await pilot.pause()
    raise AssertionError("the screen did not get there")


async def open_admin(pilot) -> AdminScreen:
    await pilot.press("f10")
    await settle(pilot)
    assert isinstance(pilot.app.screen, AdminScreen)
    return pilot.app.screen


async def fill(pilot, dialog: FormDialog, **values: str) -> None:
    for key, value in values.items():
        dialog.query_one(f"#field-{key}", Input).value = value
    await pilot.press("ctrl+s")


async def test_add_disable_and_reset_pin(admin_village, make_app):
    app = make_app(admin_village)
    async with app.run_test(size=(80, 24)) as pilot:
        await unlock(pilot, "admin1")
        screen = await open_admin(pilot)
        table = screen.query_one("#users-table", DataTable)
        assert [r[0] for r in rows(table)] == ["admin1"]
        assert "可添加：代办员" in text_of(screen.query_one("#users-note"))
        # One's own account cannot be disabled here.
        assert not screen.check_action("disable_user", ())

        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, FormDialog))
        dialog = app.screen
        assert all(dialog.query_one(f"#field-{k}", Input).password for k in ("pin", "pin2"))
        await fill(pilot, dialog, login="agent2", name="王芳", pin=NEW_PIN, pin2=NEW_PIN + "x")
        await until(pilot, lambda: not dialog._busy and "-shown" in dialog.query_one("#error-pin2").classes)
        assert text_of(dialog.query_one("#error-pin2", Static)) == "两次输入的PIN不一致"
        assert app.screen is dialog  # nothing typed is lost
        await fill(pilot, dialog, pin2=NEW_PIN)
        await until(pilot, lambda: app.screen is screen)
        await settle(pilot)
        assert rows(table)[1][:3] == ["agent2", "王芳", "代办员"]

        table.focus()
        table.move_cursor(row=1)
        await pilot.pause()
        await pilot.press("p")
        await until(pilot, lambda: isinstance(app.screen, FormDialog))
        await fill(pilot, app.screen, pin="Other-2026-pin", pin2="Other-2026-pin")
        await until(pilot, lambda: app.screen is screen)
        await settle(pilot)

        table.move_cursor(row=1)
        await pilot.pause()
        await pilot.press("x")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        assert "agent2" in text_of(app.screen.query_one(".dialog-text", Static))
        await pilot.press("enter")
        await until(pilot, lambda: app.screen is screen)
        await settle(pilot)
        assert rows(table)[1][0] == "agent2" and rows(table)[1][3] == "已停用"
        assert not screen.check_action("reset_pin", ())  # a disabled account has no PIN to reset
    with pytest.raises(UserDisabled):
        open_station(admin_village, "agent2", "Other-2026-pin")
    with open_station(admin_village, "admin1", PIN) as s:
        kinds = [k for (k,) in s.db.execute_sql("SELECT kind FROM event ORDER BY seq").fetchall()]
    assert kinds[-3:] == ["user.added", "user.pin_reset", "user.disabled"]


async def test_the_reset_pin_opens_the_account(admin_village, make_app):
    from station.services import admin

    with open_station(admin_village, "admin1", PIN) as s:
        admin.add_user(s, login="agent2", role="agent", pin=NEW_PIN, pin2=NEW_PIN, name="王芳")
    app = make_app(admin_village)
    async with app.run_test(size=(80, 24)) as pilot:
        await unlock(pilot, "admin1")
        screen = await open_admin(pilot)
        screen.query_one("#users-table", DataTable).move_cursor(row=1)
        await pilot.pause()
        await pilot.press("p")
        await until(pilot, lambda: isinstance(app.screen, FormDialog))
        await fill(pilot, app.screen, pin="12", pin2="12")
        dialog = app.screen
        await until(pilot, lambda: not dialog._busy and "-shown" in dialog.query_one("#error-pin").classes)
        assert "PIN至少需要6位" in text_of(dialog.query_one("#error-pin", Static))
        await fill(pilot, dialog, pin="Other-2026-pin", pin2="Other-2026-pin")
        await until(pilot, lambda: app.screen is screen)
    open_station(admin_village, "agent2", "Other-2026-pin").close()


async def test_a_village_agent_sees_a_read_only_view(station_dir, make_app):
    app = make_app(station_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await unlock(pilot)
        screen = await open_admin(pilot)
        assert "代办员只能查看用户" in text_of(screen.query_one("#users-note"))
        assert not screen.query_one("#users-buttons").display
        for action in ("add_user", "disable_user", "reset_pin"):
            assert not screen.check_action(action, ())
        await pilot.press("a")
        await settle(pilot)
        assert app.screen is screen
        await pilot.press("3")
        await settle(pilot)
        assert screen.query_one("#county-url", Input).disabled
        assert screen.query_one("#idle-minutes", Input).disabled
        assert "代办员只能查看设置" in text_of(screen.query_one("#settings-note"))
        await pilot.press("ctrl+s")
        await settle(pilot)
    assert DataDir(station_dir).load_config().idle_lock_minutes == 10


async def test_settings_are_checked_saved_and_used_at_once(admin_village, make_app):
    app = make_app(admin_village)
    async with app.run_test(size=(80, 24)) as pilot:
        await unlock(pilot, "admin1")
        screen = await open_admin(pilot)
        await pilot.press("3")
        await settle(pilot)
        assert screen.query_one("#admin-tabs", TabbedContent).active == "admin-settings"
        url, minutes = screen.query_one("#county-url", Input), screen.query_one("#idle-minutes", Input)
        assert minutes.value == "10"
        url.value = "county.example.cn"
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert "县中心地址" in text_of(screen.query_one("#msg-county_url"))
        assert app.focused is url
        url.value = "http://127.0.0.1:9/"  # nothing listens there: saved only when confirmed
        minutes.value = "0"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))  # a worker waits on it: no settle()
        assert "无法连接" in app.screen.text
        await pilot.press("enter")  # 仍然保存
        await settle(pilot)
        assert text_of(screen.query_one("#msg-idle_lock_minutes")) == "自动锁定时间应为1到120分钟"
        assert "-shown" not in screen.query_one("#msg-county_url").classes
        minutes.value = "15"
        minutes.focus()
        await pilot.press("enter")  # Enter in the last field saves too
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("enter")
        await settle(pilot)
        assert url.value == "http://127.0.0.1:9"
        assert app.idle_lock_minutes == 15  # the idle lock follows at once
        await pilot.press("2")
        await settle(pilot)
        info = text_of(screen.query_one("#station-info"))
        assert "http://127.0.0.1:9" in info and "闲置 15 分钟" in info
    cfg = DataDir(admin_village).load_config()
    assert (cfg.county_url, cfg.idle_lock_minutes) == ("http://127.0.0.1:9", 15)


async def test_id_view_audit_shows_who_viewed_which_case(station_dir, make_app):
    with open_station(station_dir, "agent1", PIN) as s:
        case = cases.register(
            s,
            item_code=PENSION,
            name="王秀英",
            id_number=id_number(seq="001"),
            received=material_names(PENSION),
        )
    app = make_app(station_dir)
    async with app.run_test(size=(120, 36)) as pilot:
        await unlock(pilot)
        screen = await open_admin(pilot)
        await pilot.press("4")
        await settle(pilot)
        audit = screen.query_one("#audit-table", DataTable)
        assert rows(audit)[0][0] == "没有记录"
        # Reveal the number on the case page (it asks first, then records who looked).
        app.open_case(case.case_id)
        await settle(pilot)
        await pilot.press("i")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("enter")
        await until(pilot, lambda: type(app.screen).__name__ == "CaseScreen" and app.screen.revealed)
        await pilot.press("escape")
        await settle(pilot)
        assert app.screen is screen
        (row,) = rows(audit)
        assert row[1:] == ["agent1", "代办员", case.case_no, "东村便民服务室"]
        assert row[0] == "2026-03-02 09:00"
        assert "王秀英" not in " ".join(row) and id_number(seq="001") not in " ".join(row)
        audit.focus()
        await pilot.press("enter")  # opens that case
        await settle(pilot)
        assert type(app.screen).__name__ == "CaseScreen" and app.screen.case_id == case.case_id
