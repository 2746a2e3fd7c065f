"""The village PC in the UI (issue 12): F9 from anywhere, leaving with records waiting, the county
address checked before it is saved, backup and restore from the admin screen, the backup reminder.

Against a real county center (uvicorn on 127.0.0.1, port 0) and real encrypted stations.
"""

# ruff: noqa: F811 - the county/village fixtures are imported from test_sync_screen
from __future__ import annotations

from pathlib import Path

from textual.widgets import Input, TabbedContent

from schema.org import Role
from station.replication.enroll import enroll_online
from station.replication.status import sync_status
from station.services import backup as B
from station.session import unlock as open_station
from station.ui.screens.admin import AdminScreen
from station.ui.screens.dialogs import ChoiceDialog, ConfirmDialog, FormDialog
from station.ui.screens.sync import SyncScreen
from station.ui.screens.unlock import UnlockScreen
from tests.helpers import PIN, VILLAGE, differ, make_station
from tests.station.sync_kit import Reply, ScriptedServer, register_case
from tests.ui.conftest import settle, unlock
from tests.ui.test_sync_screen import county, pick, text_of, until, village  # noqa: F401 - fixtures


def pending(root: Path) -> int:
    with open_station(root, "agent1", PIN) as s:
        return sync_status(s).pending


def add_case(root: Path, n: int) -> None:
    """Another program (the CLI) registers a case while the UI is open."""
    with open_station(root, "agent1", PIN) as s:
        register_case(s, n)


async def open_station_tab(pilot) -> AdminScreen:
    await pilot.press("f10")
    await settle(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, AdminScreen)
    await pilot.press("2")
    await settle(pilot)
    assert screen.query_one("#admin-tabs", TabbedContent).active == "admin-station"
    return screen


async def restore_in_admin(pilot, backup: Path, pin: str) -> None:
    """管理 → 工作站 → 从备份恢复 (R): confirm, pick the file, the PIN (the login is preselected)."""
    app = pilot.app
    await open_station_tab(pilot)
    await pilot.press("r")
    await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
    await pilot.press("enter")
    await pick(pilot, backup)
    await until(pilot, lambda: isinstance(app.screen, FormDialog))
    app.screen.query_one("#field-pin", Input).value = pin
    await pilot.press("ctrl+s")


async def test_f9_syncs_from_every_screen(village, make_app):
    app = make_app(village)
    async with app.run_test(size=(80, 24)) as pilot:
        await unlock(pilot)
        for n, key in enumerate(("f2", "f3", "f4", "f10", None)):  # intake, cases, inbox, admin, home
            if key:
                await pilot.press(key)
                await settle(pilot)
            below = app.screen
            add_case(village, 10 + n)
            assert pending(village) > 0
            await pilot.press("f9")  # one key: the sync screen opens and the sync runs
            await settle(pilot)
            screen = app.screen
            assert isinstance(screen, SyncScreen), key
            await until(pilot, lambda screen=screen: not screen.busy)
            await settle(pilot)
            assert text_of(screen.query_one("#sync-result")).startswith("同步成功"), key
            assert pending(village) == 0, key
            await pilot.press("escape")
            await settle(pilot)
            assert app.screen is below, key  # back where F9 was pressed
            if key:
                await pilot.press("escape")
                await settle(pilot)


async def test_leaving_with_records_waiting_offers_sync_first(village, make_app):
    app = make_app(village)
    async with app.run_test(size=(80, 24)) as pilot:
        await unlock(pilot)
        await pilot.press("ctrl+q")
        await until(pilot, lambda: isinstance(app.screen, ChoiceDialog))
        assert "还有 3 条记录没有交给县中心" in app.screen.text
        await pilot.press("escape")  # cancel: stay
        await until(pilot, lambda: not isinstance(app.screen, ChoiceDialog))
        assert app.is_running
        await pilot.press("ctrl+q")
        await until(pilot, lambda: isinstance(app.screen, ChoiceDialog))
        await pilot.press("1")  # 同步后退出
        await until(pilot, lambda: not app.is_running, tries=2000)
    assert pending(village) == 0


async def test_leaving_with_nothing_waiting_or_choosing_to_just_leave(village, make_app, tmp_path):
    app = make_app(village)
    async with app.run_test(size=(80, 24)) as pilot:
        await unlock(pilot)
        await pilot.press("ctrl+q")
        await until(pilot, lambda: isinstance(app.screen, ChoiceDialog))
        await pilot.press("3")  # 直接退出: the records stay on disk for the next sync
        await until(pilot, lambda: not app.is_running)
    assert pending(village) == 3
    app = make_app(village)
    async with app.run_test(size=(80, 24)) as pilot:
        await unlock(pilot)
        await pilot.press("f9")
        await settle(pilot)
        await until(pilot, lambda: not app.screen.busy)
        await settle(pilot)
        await pilot.press("ctrl+q")  # nothing waiting: no question
        await until(pilot, lambda: not app.is_running)


async def test_the_county_address_is_checked_before_it_is_saved(county, make_app, tmp_path, now):
    root = tmp_path / "admin-station"
    with make_station(root, org=VILLAGE, role=Role.ADMIN, login="admin1") as s:  # an admin may change settings
        enroll_online(s, county.url, county.code(VILLAGE, "village"))
    app = make_app(root)
    async with app.run_test(size=(100, 30)) as pilot:
        await unlock(pilot, "admin1")
        await pilot.press("f10")
        await settle(pilot)
        screen = app.screen
        await pilot.press("3")
        await settle(pilot)
        url = screen.query_one("#county-url", Input)
        with ScriptedServer(lambda method, path, body: Reply(200, b"<html>hello</html>", "text/html")) as web:
            url.value = web.url
            await pilot.press("ctrl+s")
            await until(pilot, lambda: "不是县中心" in text_of(screen.query_one("#msg-county_url")))
        with ScriptedServer(lambda m, p, b: Reply.json({"status": "ok", "county": "330523000000", "version": 1})) as s2:
            url.value = s2.url
            await pilot.press("ctrl+s")
            await until(pilot, lambda: "另一个县的县中心" in text_of(screen.query_one("#msg-county_url")))
        assert app.session.config.county_url == county.url  # nothing saved (the enrolled address stays)
        other_name = county.url.replace("127.0.0.1", "localhost") + "/"  # the same county by another name
        url.value = other_name
        await pilot.press("ctrl+s")
        await until(pilot, lambda: app.session.config.county_url == other_name.rstrip("/"))
        assert not isinstance(app.screen, ConfirmDialog)


async def test_backup_and_restore_from_the_admin_screen(village, make_app, tmp_path):
    usb = tmp_path / "usb"
    usb.mkdir()
    app = make_app(village)
    async with app.run_test(size=(100, 30)) as pilot:
        await unlock(pilot)
        screen = await open_station_tab(pilot)
        assert "本站还没有备份过" in text_of(screen.query_one("#station-backup"))
        await pilot.press("b")
        await pick(pilot, usb)
        await until(pilot, lambda: len(list(usb.glob("*.station-backup"))) == 1)
        await settle(pilot)
        assert "上次备份：" in text_of(screen.query_one("#station-backup"))
        [made] = usb.glob("*.station-backup")
    add_case(village, 50)  # after the backup: it is in the folder kept aside, not in the restored one
    app = make_app(village)
    async with app.run_test(size=(100, 30)) as pilot:
        await unlock(pilot)
        await restore_in_admin(pilot, made, differ(PIN))  # a wrong PIN: refused, nothing replaced
        await until(pilot, lambda: isinstance(app.screen, UnlockScreen))
        await settle(pilot)
        assert not list(tmp_path.glob("village.before-restore-*"))
        await unlock(pilot)
        await restore_in_admin(pilot, made, PIN)
        await until(pilot, lambda: isinstance(app.screen, UnlockScreen) and list(tmp_path.glob("village.before-*")))
        await settle(pilot)
        await unlock(pilot)  # the restored station opens with the backup's PIN
        assert app.session is not None
    [aside] = tmp_path.glob("village.before-restore-*")
    assert pending(aside) == pending(village) + 2  # the case made after the backup is in the old folder


async def test_the_home_screen_reminds_when_the_last_backup_is_old(village, make_app, now):
    app = make_app(village)
    now(f"2026-03-{2 + B.REMIND_DAYS:02d}T09:00:00+08:00")  # a week after the station was set up
    async with app.run_test(size=(100, 30)) as pilot:
        await unlock(pilot)
        await settle(pilot)
        assert f"已{B.REMIND_DAYS}天未备份" in text_of(app.screen.query_one("#home-sync"))
    with open_station(village, "agent1", PIN) as s:
        B.create_backup(s, village.parent / "usb" / "b.station-backup")
    app = make_app(village)
    async with app.run_test(size=(100, 30)) as pilot:
        await unlock(pilot)
        await settle(pilot)
        assert "未备份" not in text_of(app.screen.query_one("#home-sync"))


async def test_a_new_pc_restores_a_backup_from_the_first_run_wizard(village, make_app, tmp_path):
    with open_station(village, "agent1", PIN) as s:
        made = B.create_backup(s, tmp_path / "usb").path
    new_pc = tmp_path / "new-pc"
    app = make_app(new_pc)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.click("#mode-restore")
        await pick(pilot, made)
        await until(pilot, lambda: isinstance(app.screen, FormDialog))
        form = app.screen
        assert "agent1" in str(form.query_one("#field-login").pressed_button.label)  # its only user, chosen
        form.query_one("#field-pin", Input).value = PIN
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, UnlockScreen), tries=2000)
        await settle(pilot)
        await unlock(pilot)
        with open_station(village, "agent1", PIN) as original:
            assert app.session.config.station_id == original.config.station_id
    assert pending(new_pc) == pending(village)


async def test_ctrl_c_says_how_to_leave(station_dir, make_app):
    app = make_app(station_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await unlock(pilot)
        await pilot.press("ctrl+c")
        await settle(pilot)
        assert any("Ctrl+Q" in str(n.message) for n in app._notifications)
        assert app.is_running
