"""Enrolling this station with the county center: online with a one-time code, or by USB files.

Used right after the first-run wizard has created the station (the ways to set up that enroll),
from the administration screen, and from the sync screen of a station not yet enrolled.

* 在线登记: the county's address and the one-time code from the county admin; the request goes
  out on a thread worker with its own session (:mod:`station.ui.widgets.sync_fork`), so a slow
  or unreachable county never holds up the session thread.
* 离线登记（U盘）: 1) the code, then a folder on the USB stick: the signed request file is
  written there; 2) later, the county admin's answer file is read from the stick.

After enrolling the dialog shows the county's key fingerprint (and, once, the plain-http notice)
until the person presses 完成: they compare it with the one the county admin read out with the code.

Returns :class:`station.replication.enroll.EnrollResult` on success, None if left for later.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static, TabbedContent, TabPane

from schema.errors import UserError
from station.ui.screens.file_picker import FilePickerScreen
from station.ui.widgets.footer import StationFooter
from station.ui.widgets.sync_fork import after_fork, run_on_fork

STYLES = Path(__file__).resolve().parent.parent / "styles"
MODES = ("online", "offline")


# -- on the worker / session thread ------------------------------------------------------------------


def enroll_online(session: Any, url: str, code: str, ca_file: str):
    from station.replication import enroll

    return enroll.enroll_online(session, url, code, ca_file=ca_file or None)


def write_request(session: Any, folder: Path, code: str) -> Path:
    from station.replication import enroll

    return enroll.write_request(session, folder, code)


def apply_response_file(session: Any, path: Path):
    from station.replication import enroll

    return enroll.apply_response_file(session, path)


def load_info(session: Any):
    from station.services.admin import station_info

    return station_info(session)


def where_error_goes(exc: UserError) -> str:
    """Which field of the online form an error belongs to: ``url``, ``code``, ``ca`` or ``form``."""
    from sync.client import CertificateError, Offline, ServerFault
    from sync.errors import ProtocolError

    if isinstance(exc, CertificateError):
        return "ca"
    if isinstance(exc, (Offline, ServerFault)):
        return "url"
    if isinstance(exc, ProtocolError):
        return "code" if exc.code == "code" else "form"
    return exc.field if exc.field in ("url", "code", "ca") else "form"


class EnrollScreen(ModalScreen[Any]):
    CSS_PATH = STYLES / "enroll.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "later", "稍后登记"),
        Binding("ctrl+s", "submit", "登记"),
        Binding("ctrl+r", "read_response", "读取答复文件"),
        Binding("ctrl+t", "switch_tab", "在线/U盘"),
    ]

    def __init__(self, mode: str = "online", *, intro: str = "") -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        super().__init__(classes="enroll-screen")
        self.mode = mode
        self.intro = intro
        self.info: Any = None
        self.request_file: Path | None = None
        self.result: Any = None  # the EnrollResult once enrolled: shown until 完成
        self._busy = False

    def compose(self) -> ComposeResult:
        with Vertical(id="enroll"):
            yield Static("登记到县中心", id="enroll-title")
            yield Static(self.intro or "正在读取本站信息……", id="enroll-station", markup=False)
            with TabbedContent(initial=f"enroll-{self.mode}", id="enroll-tabs"):
                with TabPane("在线登记", id="enroll-online"), VerticalScroll(classes="enroll-page"):
                    yield Static(
                        "填写县中心地址和县中心管理员给的登记码（12位，如 K7QX-M2PD-9TRW）。",
                        classes="enroll-text",
                    )
                    yield from self._field(
                        "县中心地址",
                        Input(
                            placeholder="如 http://10.0.0.5:8000",
                            id="url",
                            compact=True,
                            select_on_focus=False,
                        ),
                        "url",
                    )
                    yield from self._field(
                        "登记码",
                        Input(
                            placeholder="K7QX-M2PD-9TRW",
                            id="code",
                            max_length=20,
                            compact=True,
                            select_on_focus=False,
                        ),
                        "code",
                    )
                    yield from self._field(
                        "县中心证书",
                        Input(
                            placeholder="可选：县中心给的证书文件（.pem）路径",
                            id="ca",
                            compact=True,
                            select_on_focus=False,
                        ),
                        "ca",
                    )
                    yield Static("", id="msg-form", classes="enroll-msg", markup=False)
                    with Horizontal(classes="enroll-buttons"):
                        yield Button("登记 Ctrl+S", id="enroll-go", variant="primary", compact=True)
                with TabPane("离线登记（U盘）", id="enroll-offline"), VerticalScroll(classes="enroll-page"):
                    yield Static(
                        "第一步：填写登记码，选择U盘上的文件夹，写出登记申请文件，交给县中心管理员。",
                        classes="enroll-text",
                    )
                    yield from self._field(
                        "登记码",
                        Input(
                            placeholder="K7QX-M2PD-9TRW",
                            id="offline-code",
                            max_length=20,
                            compact=True,
                            select_on_focus=False,
                        ),
                        "offline-code",
                    )
                    with Horizontal(classes="enroll-buttons"):
                        yield Button(
                            "写出申请文件… Ctrl+S", id="write-request", variant="primary", compact=True
                        )
                    yield Static(
                        "第二步：县中心管理员生成答复文件后，插好U盘，读取答复文件。", classes="enroll-text"
                    )
                    yield Static("", id="offline-state", classes="enroll-state", markup=False)
                    with Horizontal(classes="enroll-buttons"):
                        yield Button("读取答复文件… Ctrl+R", id="read-response", compact=True)
                    yield Static("", id="msg-offline", classes="enroll-msg", markup=False)
            with Vertical(id="enroll-done"):
                yield Static("", id="enroll-done-text", markup=False)
                yield Static("", id="enroll-fingerprint", markup=False)
                yield Static(
                    "请与县中心管理员给出登记码时读出的指纹逐位核对。不一致说明有人冒充县中心：请不要同步，立即联系县中心。",
                    classes="enroll-text",
                )
                yield Static("", id="enroll-notice", classes="enroll-state", markup=False)
                with Horizontal(classes="enroll-buttons"):
                    yield Button("完成 Enter", id="enroll-finish", variant="primary", compact=True)
            with Horizontal(id="enroll-bottom"):
                yield Button("稍后登记 Esc", id="enroll-later", compact=True)
        yield StationFooter()  # this dialog's keys, not those of the screen below

    @staticmethod
    def _field(label: str, widget: Input, key: str):
        with Horizontal(classes="enroll-row"):
            yield Static(label, classes="enroll-label")
            yield widget
        yield Static("", id=f"msg-{key}", classes="enroll-msg", markup=False)

    def on_mount(self) -> None:
        self.query_one("#url" if self.mode == "online" else "#offline-code", Input).focus()
        self.run_worker(self._load, group="enroll-load", exit_on_error=False)

    async def _load(self) -> None:
        app: Any = self.app
        try:
            info = await app.db(load_info, app.session)
        except Exception as exc:  # noqa: BLE001 - shown by the app
            app.show_error(exc)
            return
        self.show_info(info)

    def show_info(self, info: Any) -> None:
        self.info = info
        url = self.query_one("#url", Input)
        if not url.value and info.county_url:
            url.value = info.county_url
        text = f"本工作站：{info.name}（{info.level} {info.org}）　{info.enrollment_text}"
        if info.enrolled:
            text += "。重新登记会换用新的密钥，旧密钥作废"
        self.query_one("#enroll-station", Static).update(self.intro + "\n" + text if self.intro else text)
        state = self.query_one("#offline-state", Static)
        if info.request_pending:
            state.update(f"已于 {info.request_at[:16].replace('T', ' ')} 写出申请文件，等待县中心的答复文件")
        else:
            state.update("尚未写出申请文件")

    # -- messages next to the fields ------------------------------------------------------------

    def say(self, key: str, text: str, *, error: bool = True) -> None:
        msg = self.query_one(f"#msg-{key}", Static)
        msg.update(text)
        msg.set_class(bool(text), "-shown")
        msg.set_class(error, "error")

    def clear(self) -> None:
        for key in ("url", "code", "ca", "form", "offline-code", "offline"):
            self.say(key, "")

    def _tab(self) -> str:
        return (self.query_one("#enroll-tabs", TabbedContent).active or "").removeprefix("enroll-")

    # -- actions --------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if self.result is not None:
            return action in ("later", "submit")
        if action == "read_response":
            return self._tab() == "offline"
        return True

    @on(TabbedContent.TabActivated)
    def _tab_changed(self, event: TabbedContent.TabActivated) -> None:
        self.refresh_bindings()

    def action_switch_tab(self) -> None:
        if self._busy:
            return
        offline = self._tab() != "offline"
        self.query_one("#enroll-tabs", TabbedContent).active = (
            "enroll-offline" if offline else "enroll-online"
        )
        self.query_one("#offline-code" if offline else "#url", Input).focus()

    def action_later(self) -> None:
        if not self._busy:
            self.dismiss(self.result)

    @on(Button.Pressed, "#enroll-later")
    def _later(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_later()

    def action_submit(self) -> None:
        if self.result is not None:
            self.dismiss(self.result)
        elif self._tab() == "offline":
            self.action_write_request()
        else:
            self.action_enroll_online()

    @on(Input.Submitted)
    def _enter(self, event: Input.Submitted) -> None:
        event.stop()
        if event.input.id == "url":
            self.query_one("#code", Input).focus()
        elif event.input.id in ("code", "ca"):
            self.action_enroll_online()
        elif event.input.id == "offline-code":
            self.action_write_request()

    @on(Button.Pressed, "#enroll-go")
    def _go(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_enroll_online()

    @on(Button.Pressed, "#enroll-finish")
    def _finish(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(self.result)

    @on(Button.Pressed, "#write-request")
    def _write(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_write_request()

    @on(Button.Pressed, "#read-response")
    def _read(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_read_response()

    def _start(self, fn, *args: Any) -> None:
        if self._busy:
            return
        self._busy = True
        self.clear()
        self.run_worker(partial(self._guarded, fn, *args), group="enroll", exit_on_error=False)

    async def _guarded(self, fn, *args: Any) -> None:
        try:
            await fn(*args)
        finally:
            self._busy = False

    # online

    def action_enroll_online(self) -> None:
        from station.replication.enroll import normalize_code
        from sync.client import check_url

        url, code = self.query_one("#url", Input).value, self.query_one("#code", Input).value
        ca_file = self.query_one("#ca", Input).value.strip()
        self.clear()
        # The form's own checks, before anything is sent (both are pure functions).
        try:
            url = check_url(url)
        except UserError as exc:
            self.say("url", exc.message)
            self.query_one("#url", Input).focus()
            return
        try:
            code = normalize_code(code)
        except UserError as exc:
            self.say("code", exc.message)
            self.query_one("#code", Input).focus()
            return
        self._start(self._enroll_online, url, code, ca_file)

    async def _enroll_online(self, url: str, code: str, ca_file: str) -> None:
        app: Any = self.app
        session = app.session
        self.say("form", "正在连接县中心……", error=False)
        self.query_one("#enroll-go", Button).disabled = True
        try:
            result = await run_on_fork(self, session, enroll_online, url, code, ca_file)
        except UserError as exc:
            where = where_error_goes(exc)
            self.say("form", "")
            self.say(where, exc.message)
            if where in ("url", "code", "ca"):
                self.query_one(f"#{where}", Input).focus()
            return
        except Exception as exc:  # noqa: BLE001 - logged without personal data by the app
            self.say("form", "")
            app.show_error(exc)
            return
        finally:
            self.query_one("#enroll-go", Button).disabled = False
        await app.db(after_fork, session)
        self.done(result)

    def done(self, result: Any) -> None:
        """Enrolled: the forms give way to the result and the county's fingerprint, to compare."""
        self.result = result
        self.query_one("#enroll-title", Static).update("登记成功")
        self.query_one("#enroll-tabs").display = False
        self.query_one("#enroll-bottom").display = False
        first_line = result.text().split("\n", 1)[0]
        self.query_one("#enroll-done-text", Static).update(first_line)
        self.query_one("#enroll-fingerprint", Static).update(f"县中心密钥指纹：{result.fingerprint}")
        self.query_one("#enroll-station").display = False  # it said "not enrolled"
        notice = self.query_one("#enroll-notice", Static)
        notice.update(result.notice)
        notice.display = bool(result.notice)
        self.query_one("#enroll-done").display = True
        self.query_one("#enroll-finish", Button).focus()
        self.refresh_bindings()

    # offline

    def action_write_request(self) -> None:
        from station.replication.enroll import normalize_code

        self.clear()
        try:
            code = normalize_code(self.query_one("#offline-code", Input).value)
        except UserError as exc:
            self.say("offline-code", exc.message)
            self.query_one("#offline-code", Input).focus()
            return
        self._start(self._write_request, code)

    async def _write_request(self, code: str) -> None:
        app: Any = self.app
        folder = await app.push_screen_wait(
            FilePickerScreen(
                "选择写出登记申请文件的文件夹（U盘）",
                mode="dir",
                start=self.request_file.parent if self.request_file else None,
            )
        )
        if folder is None:
            return
        try:
            path = await app.db(write_request, app.session, folder, code)
        except Exception as exc:  # noqa: BLE001 - a UserError is shown next to the buttons, the rest logged
            self._offline_error(exc)
            return
        self.request_file = path
        self.say(
            "offline",
            f"已写出登记申请文件：{path}\n请把U盘交给县中心管理员；拿回答复文件后，按“读取答复文件”。",
            error=False,
        )
        self.run_worker(self._load, group="enroll-load", exit_on_error=False)

    def action_read_response(self) -> None:
        self._start(self._read_response)

    async def _read_response(self) -> None:
        app: Any = self.app
        start = self.request_file.parent if self.request_file else None
        path = await app.push_screen_wait(
            FilePickerScreen("选择县中心的登记答复文件", mode="file", suffixes=(".json",), start=start)
        )
        if path is None:
            return
        try:
            result = await app.db(apply_response_file, app.session, path)
        except Exception as exc:  # noqa: BLE001
            self._offline_error(exc)
            return
        self.done(result)

    def _offline_error(self, exc: Exception) -> None:
        if isinstance(exc, UserError):
            self.say("offline", exc.message)
        else:
            self.app.show_error(exc)  # type: ignore[attr-defined]
