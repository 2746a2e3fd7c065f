"""Enrolling with a real county center: from the first-run wizard, from administration, by USB files."""

from __future__ import annotations

import json

import pytest
from textual.widgets import Input, Static, TabbedContent

from station.replication import identity
from station.session import unlock as open_station
from station.ui.screens.enroll import EnrollScreen
from station.ui.screens.file_picker import FilePickerScreen
from station.ui.screens.first_run import FirstRunScreen
from station.ui.screens.home import HomeScreen
from tests.helpers import PIN, VILLAGE, VILLAGE2
from tests.station.sync_kit import CountyServer
from tests.ui.conftest import settle, unlock


@pytest.fixture
def county(tmp_path):
    server = CountyServer(tmp_path)
    yield server
    server.stop()


def text_of(widget) -> str:
    return str(widget.render())


async def until(pilot, condition, tries: int = 300) -> None:
    for _ in range(tries):
        if condition():
            return
        await pilot.pause()
    raise AssertionError("the screen did not get there")


async def fill_wizard(pilot, screen: FirstRunScreen, mode: str) -> None:
    await pilot.click(f"#mode-{mode}")
    assert screen.page == "page-station"
    screen.query_one("#org", Input).value = VILLAGE
    screen.query_one("#station-name", Input).value = "东村便民服务室"
    await pilot.click("#wizard-next")
    await settle(pilot)
    screen.query_one("#login", Input).value = "zhang"
    screen.query_one("#user-name", Input).value = "张三"
    screen.query_one("#pin", Input).value = screen.query_one("#pin2", Input).value = PIN
    await pilot.click("#wizard-next")
    await until(pilot, lambda: isinstance(pilot.app.screen, EnrollScreen))


async def enroll_online(pilot, url: str, code: str) -> EnrollScreen:
    screen = pilot.app.screen
    assert isinstance(screen, EnrollScreen)
    screen.query_one("#url", Input).value = url
    code_input = screen.query_one("#code", Input)
    code_input.value = code
    code_input.focus()
    await pilot.press("enter")
    await until(pilot, lambda: not screen._busy)
    await pilot.pause()
    return screen


def message(screen, key: str) -> str:
    return text_of(screen.query_one(f"#msg-{key}", Static))


async def finish(pilot, screen: EnrollScreen, county) -> None:
    """The dialog shows the county's fingerprint until 完成 (Enter)."""
    await until(pilot, lambda: screen.result is not None)
    assert text_of(screen.query_one("#enroll-title")) == "登记成功"
    assert text_of(screen.query_one("#enroll-fingerprint")) == f"县中心密钥指纹：{county.county.fingerprint}"
    assert pilot.app.screen is screen  # it stays until the person has compared
    await pilot.press("enter")


async def test_first_run_creates_the_station_then_enrolls_online(tmp_path, county, now, make_app):
    root = tmp_path / "new"
    app = make_app(root)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await fill_wizard(pilot, app.screen, "online")
        enroll = app.screen
        assert "工作站已建立" in text_of(enroll.query_one("#enroll-station"))
        tabs = enroll.query_one("#enroll-tabs", TabbedContent)
        await until(pilot, lambda: tabs.active == "enroll-online")  # set once the tabs have mounted
        with open_station(root, "zhang", PIN) as s:
            code = county.code(s.config.org, "village")
            station = s.config.station_id
        screen = await enroll_online(pilot, county.url, code.lower().replace("-", " "))  # typed loosely
        await finish(pilot, screen, county)
        await until(pilot, lambda: isinstance(app.screen, HomeScreen))
        assert app.session.config.county_url == county.url  # the open session knows it too
    with open_station(root, "zhang", PIN) as s:
        assert identity.enrolled(s)
        assert s.config.county_url == county.url
        assert s.slots.has_recovery  # the county's recovery key went into the key slots
    row = county.station_row(station)
    assert row is not None and row.org == VILLAGE and row.name == "东村便民服务室"


async def test_first_run_by_usb_opens_the_offline_tab(tmp_path, now, make_app):
    app = make_app(tmp_path / "new")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await fill_wizard(pilot, app.screen, "usb")
        tabs = app.screen.query_one("#enroll-tabs", TabbedContent)
        await until(pilot, lambda: tabs.active == "enroll-offline")  # set once the tabs have mounted
        await pilot.press("escape")  # 稍后登记: the station exists, home shows
        await settle(pilot)
        assert isinstance(app.screen, HomeScreen)


async def test_enrollment_errors_are_plain_chinese_next_to_their_field(station_dir, county, make_app, tmp_path):
    app = make_app(station_dir)
    async with app.run_test(size=(100, 30)) as pilot:
        await unlock(pilot)
        await pilot.press("f10", "2")  # administration, station tab
        await settle(pilot)
        assert "未登记到县中心" in text_of(app.screen.query_one("#station-info"))
        admin = app.screen
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, EnrollScreen))

        screen = await enroll_online(pilot, county.url, "ABC")
        assert "登记码应为12位" in message(screen, "code")

        screen = await enroll_online(pilot, "county.example.cn", "K7QX-M2PD-9TRW")
        assert "县中心地址" in message(screen, "url")

        screen = await enroll_online(pilot, county.url, "K7QX-M2PD-9TRW")  # never issued
        assert "登记码不正确" in message(screen, "code")

        other = county.code(VILLAGE2, "village")  # issued for the neighbouring village
        screen = await enroll_online(pilot, county.url, other)
        assert f"此登记码是为单位 {VILLAGE2} 生成的" in message(screen, "code")
        assert VILLAGE in message(screen, "code")

        screen = await enroll_online(pilot, "http://127.0.0.1:9", county.code(VILLAGE, "village"))
        assert "县中心" in message(screen, "url") and message(screen, "code") == ""
        for shown in (message(screen, "url"), message(screen, "code"), message(screen, "form")):
            assert "Error" not in shown and "Traceback" not in shown
        assert app.session is not None
        with_session = await app.db(identity.enrolled, app.session)
        assert not with_session

        screen.query_one("#ca", Input).value = str(tmp_path / "missing-ca.pem")
        screen = await enroll_online(pilot, county.url, county.code(VILLAGE, "village"))
        assert "找不到县中心证书文件" in message(screen, "ca") and app.focused is screen.query_one("#ca")
        screen.query_one("#ca", Input).value = ""

        screen = await enroll_online(pilot, county.url, county.code(VILLAGE, "village"))
        await finish(pilot, screen, county)
        await until(pilot, lambda: app.screen is admin)
        await settle(pilot)
        info = text_of(admin.query_one("#station-info"))
        assert "已登记" in info and "测试县" in info and county.url in info
        assert admin.data["info"].key_fingerprint in info and admin.data["info"].key_fingerprint
        assert county.county.fingerprint in info  # the county's keys, as the admin printed them


async def test_offline_enrollment_with_request_and_answer_files_on_usb(
    station_dir, county, make_app, tmp_path
):
    from sync.server import registry

    usb = tmp_path / "usb"
    usb.mkdir()
    app = make_app(station_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await unlock(pilot)
        await pilot.press("f9")  # the sync screen of a station not enrolled offers enrollment
        await settle(pilot)
        sync = app.screen
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, EnrollScreen))
        screen = app.screen
        await pilot.press("ctrl+t")  # to the USB tab
        await pilot.pause()
        assert screen.query_one("#enroll-tabs", TabbedContent).active == "enroll-offline"
        assert app.focused is screen.query_one("#offline-code", Input)
        await pilot.press(*county.code(VILLAGE, "village"))
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, FilePickerScreen))
        app.screen.query_one("#picker-path", Input).value = str(usb)
        await pilot.press("ctrl+s")
        await until(pilot, lambda: app.screen is screen and not screen._busy)
        (request,) = usb.glob("enroll-*.json")
        assert str(request) in message(screen, "offline")
        await until(pilot, lambda: "等待县中心的答复文件" in text_of(screen.query_one("#offline-state")))

        # The county admin answers it (county-center enroll --request-file … --response-file …).
        answer = registry.enroll(
            county.cdb, county.county, json.loads(request.read_text("utf-8")), url=county.url
        )
        (usb / "answer.json").write_text(json.dumps(answer), "utf-8")

        await pilot.press("ctrl+r")
        await until(pilot, lambda: isinstance(app.screen, FilePickerScreen))
        app.screen.query_one("#picker-path", Input).value = str(usb / "answer.json")
        await pilot.press("ctrl+s")
        await finish(pilot, screen, county)
        await until(pilot, lambda: app.screen is sync)
        await settle(pilot)
        assert "县中心：测试县" in text_of(sync.query_one("#sync-status"))
        await pilot.press("f9")
        await settle(pilot)
        assert "同步成功" in text_of(sync.query_one("#sync-result"))


async def test_a_damaged_answer_file_is_refused_with_a_reason(station_dir, county, make_app, tmp_path):
    from station.replication import enroll

    usb = tmp_path / "usb"
    usb.mkdir()
    with open_station(station_dir, "agent1", PIN) as s:
        enroll.write_request(s, usb, county.code(VILLAGE, "village"))
    bad = usb / "answer.json"
    bad.write_text('{"h": "{}", "s": "AAAA"}', "utf-8")
    app = make_app(station_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await unlock(pilot)
        app.push_screen(EnrollScreen("offline"))
        await settle(pilot)
        screen = app.screen
        assert "等待县中心的答复文件" in text_of(screen.query_one("#offline-state"))
        await pilot.press("ctrl+r")
        await until(pilot, lambda: isinstance(app.screen, FilePickerScreen))
        app.screen.query_one("#picker-path", Input).value = str(bad)
        await pilot.press("ctrl+s")
        await until(pilot, lambda: app.screen is screen and not screen._busy)
        assert "登记答复无效" in message(screen, "offline")
    with open_station(station_dir, "agent1", PIN) as s:
        assert not identity.enrolled(s)


def test_where_errors_go():
    from schema.errors import UserError, ValidationError
    from station.ui.screens.enroll import where_error_goes
    from sync.client import CertificateError, Offline
    from sync.errors import ProtocolError

    assert where_error_goes(Offline("无法连接")) == "url"
    assert where_error_goes(ProtocolError("code", "登记码不正确")) == "code"
    assert where_error_goes(ProtocolError("enroll", "登记答复无效")) == "form"
    assert where_error_goes(ValidationError("x", field="code")) == "code"
    assert where_error_goes(CertificateError("https://county")) == "ca"
    assert where_error_goes(UserError("找不到县中心证书文件", field="ca")) == "ca"
    assert where_error_goes(UserError("x")) == "form"


async def test_plain_http_to_another_machine_is_mentioned_once_after_enrolling(station_dir, make_app):
    """The county reached by this PC's host name (not loopback): the result says so, once."""
    import socket

    from sync.server.app import BackgroundServer
    from tests.station.sync_kit import CountyServer

    county = CountyServer(station_dir.parent / "county")
    county.server.stop()
    server = BackgroundServer(county.app, host="0.0.0.0").start()
    try:
        url = f"http://{socket.gethostname()}:{server.port}"
        app = make_app(station_dir)
        async with app.run_test(size=(100, 30)) as pilot:
            await unlock(pilot)
            app.push_screen(EnrollScreen())
            await settle(pilot)
            screen = await enroll_online(pilot, url, county.code(VILLAGE, "village"))
            await until(pilot, lambda: screen.result is not None)
            notice = screen.query_one("#enroll-notice", Static)
            assert notice.display and "未加密的http" in text_of(notice) and url in text_of(notice)
            await pilot.press("enter")
            await settle(pilot)
            app.push_screen(EnrollScreen())  # enrolling again, same address: nothing more to say
            await settle(pilot)
            screen = await enroll_online(pilot, url, county.code(VILLAGE, "village"))
            await until(pilot, lambda: screen.result is not None)
            assert not screen.query_one("#enroll-notice", Static).display
    finally:
        server.stop()
        county.cdb.close()
