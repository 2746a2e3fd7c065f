"""PINs in the UI: changing one's own, the protection shown to the admin, county recovery (F6)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from textual.widgets import Input, Select, Static

from schema.org import Role
from station.session import unlock as open_station
from station.store import keyslots as ks
from station.store.keyslots import KeySlots
from station.ui.screens.dialogs import FormDialog
from station.ui.screens.home import HomeScreen
from station.ui.screens.recovery import RecoveryScreen
from station.ui.screens.unlock import UnlockScreen
from tests.helpers import PIN, VILLAGE
from tests.station.sync_kit import PASSPHRASE, CountyServer, enrolled_station, ok
from tests.ui.conftest import settle, unlock
from tests.ui.test_admin import fill, open_admin, text_of, until

NEW_PIN = "Xin-2026-mima"


async def test_an_agent_changes_her_own_pin(station_dir, make_app):
    app = make_app(station_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await unlock(pilot)
        screen = await open_admin(pilot)
        assert screen.check_action("change_pin", ()) and not screen.check_action("reset_pin", ())
        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, FormDialog))
        dialog = app.screen
        assert all(dialog.query_one(f"#field-{k}", Input).password for k in ("old", "pin", "pin2"))
        await fill(pilot, dialog, old="000999", pin=NEW_PIN, pin2=NEW_PIN)  # a wrong old PIN
        await until(pilot, lambda: not dialog._busy and "-shown" in dialog.query_one("#error-old").classes)
        assert text_of(dialog.query_one("#error-old", Static)).startswith("原PIN不正确，还可尝试9次")
        await fill(pilot, dialog, old=PIN, pin="abc", pin2="abc")
        await until(pilot, lambda: not dialog._busy and "-shown" in dialog.query_one("#error-pin").classes)
        assert "PIN至少需要6位" in text_of(dialog.query_one("#error-pin", Static))
        await fill(pilot, dialog, old=PIN, pin=NEW_PIN, pin2=NEW_PIN)
        await until(pilot, lambda: app.screen is screen)
        await pilot.press("ctrl+l")
        await settle(pilot)
        await unlock(pilot, pin=PIN)
        assert isinstance(app.screen, UnlockScreen)  # the old PIN no longer opens
        await unlock(pilot, pin=NEW_PIN)
        assert isinstance(app.screen, HomeScreen)
    open_station(station_dir, "agent1", NEW_PIN).close()


async def test_the_admin_sees_how_pins_are_protected(station_dir, make_app):
    app = make_app(station_dir)
    async with app.run_test(size=(100, 40)) as pilot:
        await unlock(pilot)
        screen = await open_admin(pilot)
        await pilot.press("2")
        await settle(pilot)
        info = text_of(screen.query_one("#station-info", Static))
        assert "PIN保护：警告：本机没有可用的系统凭据库" in info.replace("\n", "")


@pytest.fixture
def locked_village(tmp_path, now):
    """The one agent of an enrolled, synced village PC, locked out after ten wrong PINs."""
    from station.replication.runner import sync_now

    county = CountyServer(tmp_path / "county")
    root = tmp_path / "village"
    with enrolled_station(root, county, org=VILLAGE, role=Role.AGENT) as s:
        ok(sync_now(s))
    t = datetime.now(UTC)
    for i in range(ks.MAX_FAILURES):
        with pytest.raises((ks.WrongPin, ks.LockedOut)):
            KeySlots.load(root / ks.FILE_NAME).unlock("agent1", "000999", now=t - timedelta(minutes=10 * (9 - i)))
    yield root, county
    county.stop()


async def test_the_one_agent_recovers_through_the_county_with_a_usb_stick(locked_village, make_app, tmp_path):
    from sync.server import recovery as county_recovery
    from sync.server.keystore import unlock_recovery

    root, county = locked_village
    usb = tmp_path / "usb"
    usb.mkdir()
    app = make_app(root)
    async with app.run_test(size=(100, 32)) as pilot:
        await unlock(pilot, pin=PIN)
        message = text_of(app.screen.query_one("#unlock-message", Static))
        assert "已被锁定" in message and "F6" in message
        assert app.screen.query_one("#unlock-user", Select).value == "agent1"
        await pilot.press("f6")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, RecoveryScreen)
        assert "已锁定" in text_of(screen.query_one("#recovery-state", Static))

        await pilot.press("u")
        await until(pilot, lambda: isinstance(app.screen, FormDialog))
        await fill(pilot, app.screen, path=str(usb), pin=NEW_PIN, pin2=differ_pin(NEW_PIN))
        dialog = app.screen
        await until(pilot, lambda: not dialog._busy and "-shown" in dialog.query_one("#error-pin2").classes)
        await fill(pilot, dialog, path=str(usb), pin=NEW_PIN, pin2=NEW_PIN)
        await until(pilot, lambda: app.screen is screen)
        await settle(pilot)
        shown = text_of(screen.query_one("#recovery-result", Static))
        (request_file,) = usb.iterdir()
        wire = json.loads(request_file.read_text("utf-8"))

        # The county admin, after the phone call (the code the agent reads from the screen).
        item = county_recovery.review(county.cdb, county.county, wire)
        assert item.request.check_code in shown and "东村便民服务室" in shown
        answer = county_recovery.answer(county.cdb, county.county, unlock_recovery(county.cdb, PASSPHRASE), item,
                                        check=item.request.check_code)
        (usb / "answer.json").write_text(json.dumps(answer), "utf-8")

        await pilot.press("i")
        await until(pilot, lambda: isinstance(app.screen, FormDialog))
        await fill(pilot, app.screen, path=str(usb / "answer.json"), pin=NEW_PIN)
        await until(pilot, lambda: isinstance(app.screen, HomeScreen))
        assert app.session is not None and app.session.user.login == "agent1"
    open_station(root, "agent1", NEW_PIN).close()


def differ_pin(pin: str) -> str:
    from tests.helpers import differ

    return differ(pin)
