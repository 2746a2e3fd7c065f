"""Unlock: choose the user, type the PIN. The key derivation runs on the session thread."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Center, Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Button, Input, Label, Select, Static

from schema.errors import UserError
from schema.org import OrgCode
from station.store.keyslots import FREE_FAILURES, MAX_FAILURES, KeySlots, LockedOut, UnlockDelayed, WrongPin
from station.ui.widgets.footer import StationFooter

STYLES = Path(__file__).resolve().parent.parent / "styles"


def open_session(root: Path, login: str, pin: str):
    """Unlock on the session thread (the database connection belongs to the thread that opens it)."""
    from station.session import unlock

    return unlock(root, login, pin)


def wrong_pin_text(exc: WrongPin) -> str:
    text = f"PIN不正确，还可尝试{exc.remaining}次"
    if exc.remaining <= MAX_FAILURES - FREE_FAILURES:
        text += "；再输错需要等待更长时间才能重试，输错满10次该用户将被锁定"
    return text


class PinInput(Input):
    """The PIN field; its Enter is shown in the footer as 解锁."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("enter", "submit", "解锁")]


class UnlockScreen(Screen[None]):
    CSS_PATH = STYLES / "unlock.tcss"
    AUTO_FOCUS = "#unlock-pin"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "unlock", "解锁"),
        Binding("escape", "clear_pin", "清除PIN"),
        Binding("f6", "recover", "忘记PIN"),
        Binding("ctrl+q", "app.quit", "退出", priority=True),
    ]

    def __init__(self, login: str | None = None) -> None:
        super().__init__()
        self._preferred = login
        self._busy = False
        self._wait_left = 0
        self._problem: str | None = None

    def compose(self) -> ComposeResult:
        data = self.app.data  # type: ignore[attr-defined]
        name, org_label, options = "工作站", "", []
        try:
            cfg = data.load_config()
            name = cfg.name
            org = OrgCode(cfg.org)
            org_label = f"{org.level.label}单位　区划代码 {org.code}"
            users = [u for u in KeySlots.load(data.slots).users() if not u.disabled]
            for u in users:
                label = (
                    f"{u.name}（{u.login}）· {u.role.label}"
                    if u.name != u.login
                    else f"{u.login} · {u.role.label}"
                )
                options.append((label + ("　已锁定" if u.locked else ""), u.login))
            if not options:
                self._problem = "本工作站没有可用的用户，请联系上级人员"
        except UserError as exc:
            self._problem = exc.message
        logins = [v for _, v in options]
        value = self._preferred if self._preferred in logins else (logins[0] if logins else Select.NULL)
        with Vertical(id="unlock-header"):
            yield Static(name, id="unlock-station")
            yield Static(org_label, id="unlock-org")
        with Center(), Vertical(id="unlock-box"):
            yield Static("解锁工作站", id="unlock-title")
            with Horizontal(classes="unlock-row"):
                yield Label("用户", classes="unlock-label")
                yield Select(
                    options,
                    value=value,
                    allow_blank=False if options else True,
                    prompt="选择用户",
                    id="unlock-user",
                )
            with Horizontal(classes="unlock-row"):
                yield Label("PIN", classes="unlock-label")
                yield PinInput(password=True, placeholder="输入PIN后按回车", max_length=64, id="unlock-pin")
            yield Static(self._problem or "", id="unlock-message", classes="error" if self._problem else "")
            with Horizontal(id="unlock-buttons"):
                yield Button("解锁", id="unlock-go", variant="primary")
        yield StationFooter()

    def on_mount(self) -> None:
        if self._problem:
            self.query_one("#unlock-pin", Input).disabled = True
            self.query_one("#unlock-go", Button).disabled = True
        else:
            # Import the database layer while the PIN is typed: the first unlock is then quick.
            self.call_after_refresh(self.app.warm_up, "station.session")  # type: ignore[attr-defined]

    # -- messages ------------------------------------------------------------------------

    def _say(self, text: str, *, error: bool = False) -> None:
        msg = self.query_one("#unlock-message", Static)
        msg.update(text)
        msg.set_class(error, "error")

    def action_clear_pin(self) -> None:
        pin = self.query_one("#unlock-pin", Input)
        pin.value = ""
        pin.focus()

    @on(Input.Submitted, "#unlock-pin")
    @on(Button.Pressed, "#unlock-go")
    def _submit(self, event) -> None:
        event.stop()
        self.action_unlock()

    def action_unlock(self) -> None:
        if self._busy or self._problem or self._wait_left > 0:
            return
        login = self.query_one("#unlock-user", Select).value
        pin_input = self.query_one("#unlock-pin", Input)
        pin = pin_input.value
        if login is Select.NULL:
            self._say("请选择用户", error=True)
            return
        if not pin:
            self._say("请输入PIN", error=True)
            pin_input.focus()
            return
        self._busy = True
        self._say("正在解锁……")
        self.query_one("#unlock-go", Button).disabled = True
        self.run_worker(self._unlock(str(login), pin), exclusive=True, group="unlock", exit_on_error=False)

    async def _unlock(self, login: str, pin: str) -> None:
        app = self.app
        try:
            session = await app.db(open_session, app.data.root, login, pin)  # type: ignore[attr-defined]
        except WrongPin as exc:
            self._failed(wrong_pin_text(exc))
        except UnlockDelayed as exc:
            self._failed(exc.message)
            self._count_down(exc.seconds)
        except LockedOut as exc:
            self._failed(exc.message + "（按 F6）")
        except UserError as exc:
            self._failed(exc.message)
        except Exception as exc:  # noqa: BLE001 - logged without personal data
            self._failed("解锁失败")
            app.show_error(exc)  # type: ignore[attr-defined]
        else:
            self._busy = False
            app.signed_in(session)  # type: ignore[attr-defined]
            for notice in session.slots.notices:  # e.g. a full disk
                app.notify(notice, title="注意", severity="warning", timeout=20, markup=False)

    def action_recover(self) -> None:
        """The county recovery of a forgotten or locked PIN (for the user chosen above)."""
        if self._busy or self._problem:
            return
        login = self.query_one("#unlock-user", Select).value
        if login is Select.NULL:
            self._say("请先选择用户", error=True)
            return
        from station.ui.screens.recovery import RecoveryScreen

        self.app.push_screen(RecoveryScreen(str(login)))

    def _failed(self, text: str) -> None:
        self._busy = False
        self._say(text, error=True)
        self.query_one("#unlock-go", Button).disabled = False
        self.action_clear_pin()

    def _count_down(self, seconds: int) -> None:
        self._wait_left = seconds
        button = self.query_one("#unlock-go", Button)
        button.disabled = True

        def tick() -> None:
            self._wait_left -= 1
            if self._wait_left > 0:
                self._say(f"PIN错误次数过多，请等待{self._wait_left}秒后再试", error=True)
            else:
                timer.stop()
                button.disabled = False
                self._say("可以再试一次")

        timer = self.set_interval(1.0, tick)
