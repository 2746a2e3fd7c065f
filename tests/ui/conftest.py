"""Fixtures for the Textual app's tests (owned by the shell).

* ``station_dir`` — a village station (org ``helpers.VILLAGE``, name 东村便民服务室) with the user
  ``agent1`` (role agent, PIN ``helpers.PIN``), created while the ``now`` fixture pins the clock.
  The session that created it is closed: the app unlocks it itself.
* ``make_app(data_dir, **kwargs)`` — builds a :class:`station.ui.app.StationApp`; the factory
  closes any session an app left open at the end of the test, and fails the test if the app
  met an unexpected exception (``app.internal_errors``: shown to the user as 程序内部错误 and
  logged; a test that provokes one on purpose clears the list).
* autouse: the text cursor does not blink (snapshots are deterministic).
* ``unlock(pilot, login, pin)`` — a plain helper (``from tests.ui.conftest import unlock``)
  that drives the unlock screen and waits until the unlock attempt has finished.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import PIN, make_station

# Widget ids of the unlock screen (the shell's contract with this helper).
USER_SELECT = "#unlock-user"
PIN_INPUT = "#unlock-pin"
MESSAGE = "#unlock-message"


@pytest.fixture
def station_dir(tmp_path: Path, now) -> Path:
    root = tmp_path / "station"
    make_station(root).close()
    return root


@pytest.fixture
def make_app():
    apps = []

    def factory(data_dir: Path, **kwargs):
        from station.ui.app import StationApp

        app = StationApp(data_dir, **kwargs)
        apps.append(app)
        return app

    yield factory
    for app in apps:
        app.shutdown_session()  # idempotent; the app also does it on exit
    errors = [e for app in apps for e in app.internal_errors]
    assert not errors, f"unexpected exceptions in the app: {errors!r}"


@pytest.fixture(autouse=True)
def no_cursor_blink(monkeypatch):
    from textual.widgets import Input

    monkeypatch.setattr(Input, "_toggle_cursor", lambda self: None)


async def settle(pilot) -> None:
    """Let queued messages, workers and session-thread calls finish."""
    app = pilot.app
    for _ in range(3):
        await pilot.pause()
        await app.workers.wait_for_complete()
    await pilot.pause()


async def unlock(pilot, login: str = "agent1", pin: str = PIN) -> None:
    """Choose ``login`` on the unlock screen, enter ``pin``, press Enter and wait for the result."""
    from textual.widgets import Input, Select

    from station.ui.screens.unlock import UnlockScreen

    app = pilot.app
    await settle(pilot)
    screen = app.screen
    assert isinstance(screen, UnlockScreen), f"not on the unlock screen: {screen!r}"
    screen.query_one(USER_SELECT, Select).value = login
    pin_input = screen.query_one(PIN_INPUT, Input)
    pin_input.focus()
    pin_input.value = pin  # typing it key by key costs ~60 ms a key; the tmux smoke test types it
    await pilot.pause()
    await pilot.press("enter")
    await settle(pilot)
