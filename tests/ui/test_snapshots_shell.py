"""Pictures of the shell's screens at 80×24 and 120×36 (baselines in __snapshots__/; update with
``pytest tests/ui/test_snapshots_shell.py --snapshot-update`` and review snapshot_report.html)."""

from __future__ import annotations

import pytest

from tests.ui.conftest import settle, unlock
from tests.ui.test_shell import seed

SIZES = pytest.mark.parametrize("size", [(80, 24), (120, 36)], ids=["80x24", "120x36"])


@SIZES
def test_unlock_screen(snap_compare, station_dir, make_app, size):
    assert snap_compare(make_app(station_dir), terminal_size=size, run_before=settle)


@SIZES
def test_unlock_screen_after_a_wrong_pin(snap_compare, station_dir, make_app, size):
    async def wrong_pin(pilot):
        await unlock(pilot, "agent1", "wrong-pin-1")

    assert snap_compare(make_app(station_dir), terminal_size=size, run_before=wrong_pin)


@SIZES
def test_first_run_choice(snap_compare, tmp_path, now, make_app, size):
    assert snap_compare(make_app(tmp_path / "new"), terminal_size=size, run_before=settle)


@SIZES
def test_first_run_station_page_with_an_error(snap_compare, tmp_path, now, make_app, size):
    async def bad_code(pilot):
        await settle(pilot)
        await pilot.press("enter", *"330522101", "enter")
        await pilot.click("#wizard-next")
        await settle(pilot)

    assert snap_compare(make_app(tmp_path / "new"), terminal_size=size, run_before=bad_code)


@SIZES
def test_home(snap_compare, station_dir, make_app, size):
    seed(station_dir)
    assert snap_compare(make_app(station_dir), terminal_size=size, run_before=unlock)
