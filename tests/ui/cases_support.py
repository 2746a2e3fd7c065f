"""Helpers for the cases helper's UI tests (intake, case list, case page, inbox, workflows)."""

from __future__ import annotations

from pathlib import Path

from schema.org import Role
from station.session import unlock as open_station
from tests.helpers import COUNTY, PIN, TOWN, make_station

# Workers that wait for a dialog to close: waiting for them would wait for the test itself.
DIALOG_GROUPS = frozenset({"intake-submit", "case-action", "intake-leave"})


async def idle(pilot) -> None:
    """Let messages and every worker that does not wait on a dialog finish."""
    app = pilot.app
    for _ in range(4):
        await pilot.pause()
        busy = [w for w in app.workers if w.group not in DIALOG_GROUPS and not w.is_finished]
        if busy:  # (an empty list would mean "all workers" to wait_for_complete)
            await app.workers.wait_for_complete(busy)
    await pilot.pause()


async def until(pilot, condition, what: str = "condition", tries: int = 200) -> None:
    """Pause until ``condition()`` holds (the screen changed, a dialog opened …)."""
    for _ in range(tries):
        if condition():
            return
        await pilot.pause(0.01)
    raise AssertionError(f"timed out waiting for {what}; screen is {pilot.app.screen!r}")


async def on_screen(pilot, cls) -> object:
    await idle(pilot)
    await until(pilot, lambda: isinstance(pilot.app.screen, cls), cls.__name__)
    await idle(pilot)
    return pilot.app.screen


def screen_text(app) -> str:
    """The active screen as plain text (for assertions on what a user reads)."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


def session(data_dir: Path, login: str = "agent1"):
    """A session on ``data_dir`` for arranging data or checking what the app stored."""
    return open_station(data_dir, login, PIN)


def town_station(root: Path):
    return make_station(root, org=TOWN, role=Role.CLERK, login="clerk1", name="城关镇便民服务中心")


def county_station(root: Path):
    return make_station(root, org=COUNTY, role=Role.REVIEWER, login="shenpi", name="县民政局")
