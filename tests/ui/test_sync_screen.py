"""The sync screen against a real county center (uvicorn on 127.0.0.1, port 0) and real stations."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from textual.widgets import DataTable, Input, Static

from schema.events import seal
from station.replication.status import sync_status
from station.services import cases
from station.session import unlock as open_station
from station.ui.background import THREAD_NAME
from station.ui.screens import sync as sync_screen
from station.ui.screens.file_picker import FilePickerScreen
from station.ui.screens.sync import SyncScreen
from station.ui.widgets.sync_progress import SyncProgress
from tests.helpers import PENSION, PIN, VILLAGE, id_number, material_names
from tests.station.sync_kit import CountyServer, enrolled_station
from tests.ui.conftest import settle, unlock


@pytest.fixture
def county(tmp_path):
    server = CountyServer(tmp_path)
    yield server
    server.stop()


@pytest.fixture
def village(tmp_path, county, now) -> Path:
    """A village station enrolled with the county, with one case registered (not synced yet)."""
    root = tmp_path / "village"
    s = enrolled_station(root, county, org=VILLAGE)
    cases.register(
        s, item_code=PENSION, name="王秀英", id_number=id_number(), received=material_names(PENSION)
    )
    s.close()
    return root


def text_of(widget) -> str:
    return str(widget.render())


def screen_text(app) -> str:
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


def table_rows(table: DataTable) -> list[list[str]]:
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


async def open_sync(pilot) -> SyncScreen:
    """The sync screen, idle (F9 elsewhere would also start a sync: see test_f9_syncs_from_every_screen)."""
    pilot.app.open_sync(then="")
    await settle(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, SyncScreen)
    return screen


async def until(pilot, condition, tries: int = 200) -> None:
    """Pause until ``condition()`` (a dialog waits in a worker, so settle() cannot be used)."""
    for _ in range(tries):
        if condition():
            return
        await pilot.pause()
    raise AssertionError("the screen did not get there")


async def test_sync_now_runs_on_a_fork_with_progress_by_stage_and_a_history_row(
    village, county, make_app, monkeypatch
):
    threads, sessions = [], []
    original = sync_screen.sync

    def spy(session, progress, retry_blocked=False):
        threads.append(threading.current_thread().name)
        sessions.append(session)
        return original(session, progress, retry_blocked)

    monkeypatch.setattr(sync_screen, "sync", spy)
    seen = []
    app = make_app(village)
    async with app.run_test(size=(80, 24), message_hook=seen.append) as pilot:
        await unlock(pilot)
        screen = await open_sync(pilot)
        assert "待上传：3 条" in text_of(screen.query_one("#sync-status"))
        assert table_rows(screen.query_one("#sync-history", DataTable))[0][-1] == "还没有同步记录"
        await pilot.press("f9")  # on the sync screen F9 means 立即同步
        await settle(pilot)
        progress = screen.query_one(SyncProgress)
        assert progress.label == "完成" and progress.bar.percentage == 1
        stages = [m.stage for m in seen if isinstance(m, SyncScreen.Progress)]
        assert stages[0] == "连接县中心" and stages[-1] == "完成"
        assert stages.index("上传本站记录") < stages.index("下载县中心数据")
        assert "待上传：0 条" in text_of(screen.query_one("#sync-status"))
        assert "● 在线" in text_of(screen.query_one("#sync-status"))
        assert "同步成功：上传3条" in text_of(screen.query_one("#sync-result"))
        rows = table_rows(screen.query_one("#sync-history", DataTable))
        assert len(rows) == 1 and rows[0][1] == "成功" and rows[0][2] == "3"
        # The sync ran on a worker thread with its own session, never on the session thread.
        assert threads and THREAD_NAME not in threads
        assert sessions[0] is not app.session and sessions[0].store.db.is_closed()
        # Enter (the 立即同步 button has the focus) syncs again: nothing new, one more row.
        assert app.focused.id == "sync-now"
        await pilot.press("enter")
        await settle(pilot)
        assert len(table_rows(screen.query_one("#sync-history", DataTable))) == 2
        await pilot.press("escape")
        await settle(pilot)
        assert type(app.screen).__name__ == "HomeScreen"
        assert "待上传 0 条" in text_of(app.screen.query_one("#home-sync"))
    with open_station(village, "agent1", PIN) as s:
        assert sync_status(s).pending == 0
        assert len(county.events_of(s.config.station_id)) == 3


async def test_a_revoked_station_is_told_why_in_chinese(village, county, make_app):
    with open_station(village, "agent1", PIN) as s:
        station = s.config.station_id
    county.revoke(station, "电脑丢失，已停用")
    app = make_app(village)
    async with app.run_test(size=(100, 30)) as pilot:
        await unlock(pilot)
        screen = await open_sync(pilot)
        await pilot.press("f9")
        await settle(pilot)
        shown = screen_text(app)
        assert "已被县中心注销" in text_of(screen.query_one("#sync-status"))
        assert "电脑丢失，已停用" in shown
        assert "本机数据仍完整保存" in shown
        rows = table_rows(screen.query_one("#sync-history", DataTable))
        assert rows[0][1] == "已注销"
        for code in ("revoked", "refused", "403"):
            assert code not in shown
        # Nothing was lost: the events still wait on the station.
        assert "待上传：3 条" in text_of(screen.query_one("#sync-status"))
        # It may enroll again with a new code (D), and no longer sync or export.
        assert screen.query_one("#sync-enroll").display
        assert not screen.check_action("export", ())


async def test_an_unreachable_county_is_reported_and_nothing_is_lost(village, county, make_app):
    county.stop()
    app = make_app(village)
    async with app.run_test(size=(80, 24)) as pilot:
        await unlock(pilot)
        screen = await open_sync(pilot)
        await pilot.press("f9")
        await settle(pilot)
        assert "○ 离线" in text_of(screen.query_one("#sync-status"))
        assert "待上传：3 条" in text_of(screen.query_one("#sync-status"))
        assert "无法连接县中心" in text_of(screen.query_one("#sync-result"))
        assert table_rows(screen.query_one("#sync-history", DataTable))[0][1] == "无法连接"


async def test_a_station_not_enrolled_offers_enrollment_instead_of_sync(station_dir, make_app):
    app = make_app(station_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await unlock(pilot)
        screen = await open_sync(pilot)
        assert "尚未登记到县中心" in text_of(screen.query_one("#sync-status"))
        assert not screen.check_action("sync", ()) and screen.check_action("enroll", ())
        await pilot.press("f9")  # nothing happens
        await settle(pilot)
        assert screen.query_one("#sync-history", DataTable).row_count == 1
        await pilot.press("d")
        await until(pilot, lambda: type(app.screen).__name__ == "EnrollScreen")
        await pilot.press("escape")
        await settle(pilot)
        assert app.screen is screen


async def pick(pilot, path: Path) -> None:
    """In the file picker: type the path and press Ctrl+S."""
    app = pilot.app
    await until(pilot, lambda: isinstance(app.screen, FilePickerScreen))
    app.screen.query_one("#picker-path", Input).value = str(path)
    await pilot.press("ctrl+s")


async def test_export_to_usb_then_import_the_countys_answer(village, county, make_app, tmp_path):
    from sync.server import bundles as county_bundles

    usb = tmp_path / "usb"
    usb.mkdir()
    app = make_app(village)
    async with app.run_test(size=(80, 24)) as pilot:
        await unlock(pilot)
        screen = await open_sync(pilot)
        await pilot.press("e")
        await pick(pilot, usb)
        await until(pilot, lambda: not screen.busy)
        await settle(pilot)
        files = sorted(usb.glob("*.cvs"))
        assert len(files) == 1
        result = text_of(screen.query_one("#sync-result"))
        assert "已导出1个文件" in result and str(files[0]) in result

        # At the county: import the stick, write the answer back onto it.
        (done,) = county_bundles.import_path(county.cdb, county.county, files[0])
        assert done.status == "imported"
        back = tmp_path / "usb-back"
        back.mkdir()
        county_bundles.export(county.cdb, county.county, done.sender, back)

        await pilot.press("i")
        await pick(pilot, back)
        await until(pilot, lambda: not screen.busy)
        await settle(pilot)
        assert "回执1个" in text_of(screen.query_one("#sync-result"))
        assert "待上传：0 条" in text_of(screen.query_one("#sync-status"))


async def test_file_picker_refuses_a_missing_folder_and_esc_cancels(village, make_app, tmp_path):
    app = make_app(village)
    async with app.run_test(size=(80, 24)) as pilot:
        await unlock(pilot)
        screen = await open_sync(pilot)
        await pilot.press("e")
        await pick(pilot, tmp_path / "no-such-stick")
        await pilot.pause()
        picker = app.screen
        assert isinstance(picker, FilePickerScreen)
        assert "找不到文件夹" in text_of(picker.query_one("#picker-error", Static))
        await pilot.press("escape")
        await until(pilot, lambda: not screen.busy)
        assert app.screen is screen
        assert not list(tmp_path.glob("**/*.cvs"))


def test_usb_sticks_are_found_where_linux_mounts_them(tmp_path):
    from station.ui.screens.file_picker import removable_roots, start_folder

    media, run_media = tmp_path / "media", tmp_path / "run-media"
    (media / "zhang" / "KINGSTON").mkdir(parents=True)
    (media / "OLDSTICK").mkdir(parents=True)
    (run_media / "zhang" / "U盘").mkdir(parents=True)
    (media / ".hidden").mkdir()
    roots = removable_roots(media=media, run_media=run_media, user="zhang", windows=False)
    assert roots == [media / "zhang" / "KINGSTON", run_media / "zhang" / "U盘", media / "OLDSTICK"]
    assert start_folder(roots) == media / "zhang" / "KINGSTON"
    assert start_folder([]) == Path.home()
    assert (
        removable_roots(media=tmp_path / "none", run_media=tmp_path / "none", user="zhang", windows=False)
        == []
    )


def test_the_picker_checks_what_is_chosen(tmp_path):
    from schema.errors import ValidationError
    from station.ui.screens.file_picker import check_choice

    f = tmp_path / "a.cvs"
    f.write_bytes(b"x")
    assert check_choice(f' "{tmp_path}" ', "dir") == tmp_path
    assert check_choice(str(f), "file") == f
    assert check_choice(str(f), "any") == f and check_choice(str(tmp_path), "any") == tmp_path
    for text, mode, words in [
        ("", "dir", "请选择或输入路径"),
        (str(f), "dir", "找不到文件夹"),
        (str(tmp_path), "file", "找不到文件"),
        (str(tmp_path / "x"), "any", "找不到"),
    ]:
        with pytest.raises(ValidationError, match=words):
            check_choice(text, mode)


async def test_choosing_a_file_in_the_tree_with_enter(tmp_path):
    """Keyboard only: move down the tree to the bundle file, Enter chooses it (files that do not fit are hidden)."""
    from textual.app import App

    from station.ui.screens.file_picker import PickerTree

    (tmp_path / "notes.txt").write_text("x")
    bundle = tmp_path / "0a1b.cvs"
    bundle.write_bytes(b"x")
    chosen = []

    class Host(App):
        def on_mount(self) -> None:
            self.push_screen(
                FilePickerScreen("选择", mode="file", suffixes=(".cvs",), start=tmp_path), chosen.append
            )

    app = Host()
    async with app.run_test(size=(80, 24)) as pilot:
        tree = app.screen.query_one(PickerTree)
        await until(pilot, lambda: tree.root.children)
        assert [str(n.label) for n in tree.root.children] == ["0a1b.cvs"]
        await pilot.press("down", "enter")
        await until(pilot, lambda: chosen)
    assert chosen == [bundle]


async def test_while_a_sync_waits_on_the_county_the_session_thread_stays_free(village, make_app, monkeypatch):
    """A sync held up (here: by a gate) leaves the session thread free and keeps the user on the screen."""
    gate = threading.Event()
    original = sync_screen.sync

    def held_up(session, progress, retry_blocked=False):
        progress("上传本站记录", 1, 3)
        assert gate.wait(30)
        return original(session, progress, retry_blocked)

    monkeypatch.setattr(sync_screen, "sync", held_up)
    app = make_app(village)
    async with app.run_test(size=(80, 24)) as pilot:
        await unlock(pilot)
        screen = await open_sync(pilot)
        await pilot.press("f9")
        progress = screen.query_one(SyncProgress)
        await until(pilot, lambda: progress.label == "上传本站记录 1/3")
        assert progress.bar.percentage == pytest.approx(1 / 3)
        # The session thread answers while the sync is held up.
        assert await app.db(lambda: threading.current_thread().name) == THREAD_NAME
        home_sync = await app.db(sync_status, app.session)
        assert home_sync.pending == 3
        assert not screen.check_action("sync", ()) and not screen.check_action("export", ())
        await pilot.press("escape")  # not while syncing
        await pilot.pause()
        assert app.screen is screen
        gate.set()
        await settle(pilot)
        assert progress.label == "完成"
        await pilot.press("escape")
        await settle(pilot)
        assert app.screen is not screen


async def test_a_paused_upload_is_explained_and_retried_with_r(village, make_app):
    from station.replication import push

    with open_station(village, "agent1", PIN) as s:
        push.block(s, "conflict", "县中心暂时不能接收本站第1–3条记录，请联系县中心", 1, 3)
    app = make_app(village)
    async with app.run_test(size=(80, 24)) as pilot:
        await unlock(pilot)
        screen = await open_sync(pilot)
        status = text_of(screen.query_one("#sync-status"))
        assert "上传已暂停：县中心暂时不能接收本站第1–3条记录" in status and "按R重试" in status
        assert screen.check_action("retry", ())
        await pilot.press("r")
        await settle(pilot)
        status = text_of(screen.query_one("#sync-status"))
        assert "上传已暂停" not in status and "待上传：0 条" in status
        assert not screen.check_action("retry", ())


async def test_events_set_aside_are_shown_with_their_reason(village, make_app):
    """What a pull did not take in (authority, clock) is named on the sync screen, not hidden."""
    with open_station(village, "agent1", PIN) as s:
        ev = next(iter(s.store.events()))
        forged = seal(**{**ev.unsigned(), "id": "forged-1", "station": "01900000-0000-7000-8000-00000000beef",
                         "seq": 7})
        with s.store.writing():
            s.store.set_aside([(forged, "以单位 330522000000 的名义办理，但该工作站登记的单位是 330522101002")], "pull")
    app = make_app(village)
    async with app.run_test(size=(100, 30)) as pilot:
        await unlock(pilot)
        screen = await open_sync(pilot)
        status = text_of(screen.query_one("#sync-status"))
        assert "收到的记录中有1条未采用" in status and "第7条" in status
        assert "以单位330522000000的名义办理" in status  # tight(): no spaces between Chinese and digits
