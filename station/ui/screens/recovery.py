"""Asking the county to recover a locked-out (or forgotten) PIN, from the unlock screen (F6).

For the one agent of a village PC with nobody above them on that PC. The steps follow
:mod:`station.recovery`: ask (online, or a file on a USB stick) while choosing a new PIN, read the
check code to the county admin on the phone, then finish with the county's answer (fetched, or
read from the stick) and the new PIN — which signs the user in. The work runs on the session
thread (a locked station has no session there, so nothing waits behind it).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Static

from station.ui.screens.dialogs import Field, PinFormDialog
from station.ui.widgets.footer import StationFooter

STYLES = Path(__file__).resolve().parent.parent / "styles"


# -- on the session thread ------------------------------------------------------------------------


def state(root: Path, login: str) -> dict[str, Any]:
    from station.recovery import pending
    from station.store.keyslots import KeySlots

    slots = KeySlots.load(Path(root) / "keyslots.json")
    user = slots.find(login)
    return {"name": user.name, "locked": user.locked, "pending": pending(root, login),
            "ready": bool((slots.recovery or {}).get("requester"))}


def ask(root: Path, login: str, values: dict[str, Any], *, online: bool) -> Any:
    from station import recovery
    from station.services.admin import check_pins

    check_pins(values["pin"], values["pin2"])
    if online:
        return recovery.request_online(root, login, values["pin"])
    return recovery.request_file(root, login, values["pin"], values["path"])


def finish(root: Path, login: str, values: dict[str, Any], *, online: bool) -> Any:
    """The open Session, or None while the county has not approved yet."""
    from station import recovery

    if online:
        answer = recovery.fetch(root, login)
        return None if answer is None else recovery.apply(root, login, values["pin"], answer)
    return recovery.apply_file(root, login, values["pin"], values["path"])


# -- the screen -----------------------------------------------------------------------------------


class RecoveryScreen(Screen[None]):
    CSS_PATH = STYLES / "unlock.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "返回"),
        Binding("o", "ask(True)", "联网申请", key_display="O"),
        Binding("u", "ask(False)", "U盘申请", key_display="U"),
        Binding("f", "finish(True)", "获取答复", key_display="F"),
        Binding("i", "finish(False)", "导入答复", key_display="I"),
    ]

    def __init__(self, login: str) -> None:
        super().__init__()
        self.login = login
        self.info: dict[str, Any] | None = None
        self._busy = False

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="recovery-box"):
            yield Static("向县中心申请恢复PIN", id="unlock-title")
            yield Static("", id="recovery-state", markup=False)
            yield Static(
                "1. 申请：设置新PIN，联网发送（O）或写到U盘（U）\n"
                "2. 打电话给县中心管理员，报出工作站、用户和核对码\n"
                "3. 批准后：联网获取答复（F）或导入U盘带回的答复（I）",
                id="recovery-steps",
            )
            yield Static("", id="recovery-result")
            with Horizontal(id="unlock-buttons"):
                yield Button("联网申请 O", id="ask-online", compact=True)
                yield Button("U盘申请 U", id="ask-file", compact=True)
                yield Button("获取答复 F", id="finish-online", compact=True)
                yield Button("导入答复 I", id="finish-file", compact=True)
        yield StationFooter()

    def on_mount(self) -> None:
        self.reload()

    def reload(self) -> None:
        self.run_worker(self._load, exclusive=True, group="recovery-load", exit_on_error=False)

    async def _load(self) -> None:
        app: Any = self.app
        try:
            self.info = await app.db(state, app.data.root, self.login)
        except Exception as exc:  # noqa: BLE001 - shown by the app
            app.show_error(exc)
            return
        info = self.info
        lines = [f"用户：{info['name']}（{self.login}）" + ("　已锁定" if info["locked"] else "")]
        if not info["ready"]:
            lines.append("本工作站尚未登记到县中心或从未同步，不能申请恢复；请联系县中心或上级人员")
        elif info["pending"]:
            from station.recovery import when

            code = info["pending"].get("check", "")
            lines.append(f"已于 {when(info['pending']['at'])} 申请恢复" + (f"，核对码 {code}" if code else "")
                         + "，等待县中心答复")
        self.query_one("#recovery-state", Static).update("\n".join(lines))

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        event.stop()
        actions = {"ask-online": partial(self.action_ask, True), "ask-file": partial(self.action_ask, False),
                   "finish-online": partial(self.action_finish, True),
                   "finish-file": partial(self.action_finish, False)}
        if event.button.id in actions:
            actions[event.button.id]()

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_ask(self, online: bool) -> None:
        self._run(self._ask, online)

    def action_finish(self, online: bool) -> None:
        self._run(self._finish, online)

    def _run(self, fn, *args: Any) -> None:
        if self._busy:
            return
        self._busy = True
        self.run_worker(self._guarded(fn, *args), group="recovery", exit_on_error=False)

    async def _guarded(self, fn, *args: Any) -> None:
        try:
            await fn(*args)
        except Exception as exc:  # noqa: BLE001 - shown by the app
            self.app.show_error(exc)  # type: ignore[attr-defined]
        finally:
            self._busy = False

    async def _ask(self, online: bool) -> None:
        app: Any = self.app
        fields = [] if online else [Field("path", "U盘上的文件夹（如 E:\\）", required=True)]
        fields += [Field("pin", "新PIN或口令（至少6位）", required=True, max_length=64),
                   Field("pin2", "再输一次新PIN", required=True, max_length=64)]
        root, login = app.data.root, self.login

        async def submit(values: dict[str, Any]) -> Any:
            return await app.db(ask, root, login, values, online=online)

        started = await app.push_screen_wait(PinFormDialog(
            "联网申请恢复" if online else "U盘申请恢复", fields, on_submit=submit, ok_label="申请",
            prompt="请记住新PIN：县中心批准后要用它完成恢复。"))
        if started is None:
            return
        result = Text(started.text())
        result.highlight_words([started.check_code], style="bold reverse")
        self.query_one("#recovery-result", Static).update(result)
        self.reload()

    async def _finish(self, online: bool) -> None:
        app: Any = self.app
        fields = [] if online else [Field("path", "U盘上的答复文件", required=True)]
        fields.append(Field("pin", "申请时设置的新PIN", required=True, max_length=64))
        root, login = app.data.root, self.login

        async def submit(values: dict[str, Any]) -> Any:
            session = await app.db(finish, root, login, values, online=online)
            return session if session is not None else False

        session = await app.push_screen_wait(PinFormDialog(
            "获取县中心答复" if online else "导入县中心答复", fields, on_submit=submit, ok_label="完成恢复"))
        if session is None:
            return
        if session is False:
            self.query_one("#recovery-result", Static).update(
                "县中心还没有批准。请确认已打电话报出核对码，稍后再按 F 获取答复")
            return
        app.notify("已恢复，请记住新PIN", title="恢复")
        app.signed_in(session)
