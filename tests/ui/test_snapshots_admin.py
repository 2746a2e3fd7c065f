"""Pictures of the sync and administration screens at 80×24 and 120×36.

Baselines in __snapshots__/ (update: ``pytest tests/ui/test_snapshots_admin.py --snapshot-update``,
then review snapshot_report.html). Deterministic: the clock is pinned, the station id and the
keys are fixed, and the sync state (county, history, clock offset) is written as a real sync
would have left it, without a server whose port and clock would change from run to run.
"""

from __future__ import annotations

import itertools

import pytest

from schema.org import Role
from station.replication import identity as I
from station.services import admin, cases
from station.session import unlock as unlock_station
from sync.crypto import KeyPair, b64
from tests.helpers import PENSION, VILLAGE, id_number, make_station, material_names
from tests.ui.conftest import settle, unlock

SIZES = pytest.mark.parametrize("size", [(80, 24), (120, 36)], ids=["80x24", "120x36"])
NEW_PIN = "Cun-2026-xin"


@pytest.fixture
def fixed_ids(monkeypatch):
    """The station id (shown on the station tab) and user ids, the same on every run."""
    counter = itertools.count(1)
    monkeypatch.setattr("station.session.new_id", lambda: f"01900000-0000-7000-8000-{next(counter):012d}")


def enroll_as_if_synced(s, *, history: bool = True) -> None:
    """What enrollment and three syncs leave in the station's meta and sync_log."""
    county_key, station_key = KeyPair.from_bytes(bytes(range(64))), KeyPair.from_bytes(bytes(range(64, 128)))
    county = I.County(
        "330522000000",
        "测试县",
        county_key.public.sign,
        county_key.public.enc,
        county_key.public.enc,
        "01900000-0000-7000-8000-0000000000cc",
        "http://10.0.0.5:8000",
    )
    with s.store.writing():
        s.store.set_meta(I.KEYPAIR, station_key.to_bytes().hex())
        I.set_json(s, I.KEYPAIR_PUB, station_key.public.to_dict())
        I.set_json(s, I.COUNTY, county.to_dict())
        I.set_json(
            s,
            I.ENROLLED,
            {
                "org": s.config.org,
                "level": "village",
                "at": "2026-03-02T08:30:00+08:00",
                "sign_pub": b64(station_key.public.sign),
            },
        )
        if not history:
            return
        s.store.set_meta(I.ONLINE, "0")
        s.store.set_meta(I.LAST_OK, "2026-03-02T08:45:12+08:00")
        s.store.set_meta(I.LAST_ATTEMPT, "2026-03-02T08:58:40+08:00")
        s.store.set_meta(I.OFFSET, str(7 * 60 * 1000))
        s.store.set_meta(
            I.LAST_ERROR, "无法连接县中心（http://10.0.0.5:8000），请检查网络后重试；数据已保存在本机"
        )
        for row in [
            ("2026-03-02T08:31:02+08:00", "2026-03-02T08:31:04+08:00", "ok", 12, 0, 35, 9830, ""),
            (
                "2026-03-02T08:45:10+08:00",
                "2026-03-02T08:45:12+08:00",
                "refused",
                4,
                0,
                2,
                2410,
                "县中心拒收：办件 330522101001-20260302-01-0002 不在本站的管辖范围内",
            ),
            (
                "2026-03-02T08:58:30+08:00",
                "2026-03-02T08:58:40+08:00",
                "offline",
                0,
                0,
                0,
                0,
                "无法连接县中心（http://10.0.0.5:8000），请检查网络后重试；数据已保存在本机",
            ),
        ]:
            s.db.execute_sql(
                "INSERT INTO sync_log (started_at, finished_at, outcome, pushed, relayed, pulled, bytes_sent, "
                "message) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )


@pytest.fixture
def synced_village(tmp_path, now, fixed_ids):
    root = tmp_path / "village"
    with make_station(root, org=VILLAGE, role=Role.ADMIN, login="admin1") as s:
        admin.add_user(s, login="agent2", role="agent", pin=NEW_PIN, pin2=NEW_PIN, name="王芳")
        admin.add_user(s, login="agent3", role="agent", pin=NEW_PIN, pin2=NEW_PIN, name="李建国")
        admin.disable_user(s, "agent3")
    with unlock_station(root, "agent2", NEW_PIN) as s:  # the agent receives the case and views the ID
        case = cases.register(
            s,
            item_code=PENSION,
            name="王秀英",
            id_number=id_number(seq="001"),
            received=material_names(PENSION),
        )
        enroll_as_if_synced(s)
        now("2026-03-02T09:20:00+08:00")
        cases.reveal_id_number(s, case.case_id)
        now("2026-03-02T09:00:00+08:00")
    return root


async def _open(pilot, key: str, *then: str, login: str = "admin1") -> None:
    await unlock(pilot, login)
    await pilot.press(key, *then)
    await settle(pilot)


@SIZES
def test_sync_screen(snap_compare, synced_village, make_app, size):
    async def run(pilot):
        await unlock(pilot, "admin1")
        pilot.app.open_sync(then="")  # idle: F9 would start a sync at once
        await settle(pilot)

    assert snap_compare(make_app(synced_village), terminal_size=size, run_before=run)


@SIZES
def test_sync_screen_of_a_station_not_enrolled(snap_compare, station_dir, make_app, size):
    async def run(pilot):
        await _open(pilot, "f9", login="agent1")

    assert snap_compare(make_app(station_dir), terminal_size=size, run_before=run)


@SIZES
def test_admin_users(snap_compare, synced_village, make_app, size):
    async def run(pilot):
        await _open(pilot, "f10")

    assert snap_compare(make_app(synced_village), terminal_size=size, run_before=run)


@SIZES
def test_admin_station(snap_compare, synced_village, make_app, size):
    async def run(pilot):
        await _open(pilot, "f10", "2")

    assert snap_compare(make_app(synced_village), terminal_size=size, run_before=run)


@SIZES
def test_admin_settings_read_only_for_an_agent(snap_compare, station_dir, make_app, size):
    async def run(pilot):
        await _open(pilot, "f10", "3", login="agent1")

    assert snap_compare(make_app(station_dir), terminal_size=size, run_before=run)


@SIZES
def test_admin_id_view_audit(snap_compare, synced_village, make_app, size):
    async def run(pilot):
        await _open(pilot, "f10", "4")

    assert snap_compare(make_app(synced_village), terminal_size=size, run_before=run)
