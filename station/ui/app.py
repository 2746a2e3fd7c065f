"""The station's Textual application: screens, global keys, the session, errors, idle lock.

Only light modules are imported here: the unlock screen's first frame must appear within a
second of starting ``station``. Services, peewee and SQLCipher are imported by the session
thread when the user unlocks (and warmed up while the PIN is being typed).
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from textual import events
from textual.app import App
from textual.binding import Binding, BindingType
from textual.screen import ModalScreen, Screen
from textual.widget import Widget
from textual.worker import Worker, WorkerFailed, WorkerState

from station.config import DataDir
from station.ui.background import SessionThread
from station.ui.messages import CaseChanged, Locked, SignedIn

if TYPE_CHECKING:
    from station.session import Session

log = logging.getLogger("station.ui")

STYLES = Path(__file__).resolve().parent / "styles"
INTERNAL_ERROR = "程序内部错误，已记录日志，请重试或联系县中心"
IDLE_CHECK_SECONDS = 5.0
# Actions that need an unlocked session (hidden from the footer while locked).
SESSION_ACTIONS = frozenset(
    {"lock", "open_intake", "open_cases", "open_inbox", "refresh", "open_sync", "open_admin"}
)


def records_waiting(session: Session) -> int:
    """On the session thread: what leaving with Ctrl+Q asks about."""
    from station.replication.status import sync_status

    return sync_status(session).sendable


def describe_exception(exc: BaseException) -> str:
    """Type names and stack frames (file, line, function) of ``exc`` and its causes; nothing else.

    An exception's message, a frame's local variables, even a source line (a literal in a test)
    may quote a villager's name, ID number or phone; the types and code positions do not.
    """
    parts, seen = [], set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        frames = "".join(
            f'  File "{f.filename}", line {f.lineno}, in {f.name}\n'
            for f in traceback.extract_tb(e.__traceback__)
        )
        parts.append(f"{type(e).__module__}.{type(e).__qualname__}\n{frames}")
        e = e.__cause__ or e.__context__
    return "caused by ".join(parts)


class StationApp(App[None]):
    TITLE = "政务便民服务工作站"
    CSS_PATH: ClassVar[list[str | Path]] = [STYLES / "app.tcss"]
    ENABLE_COMMAND_PALETTE = False  # its commands and texts are English; every action has a key instead
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f1", "help", "帮助"),
        Binding("f2", "open_intake", "收件"),
        Binding("f3", "open_cases", "办件查询"),
        Binding("f4", "open_inbox", "待办"),
        Binding("f5", "refresh", "刷新", show=False),  # known to everyone; listed under F1 (80 columns)
        Binding("f9", "open_sync", "同步"),
        Binding("f10", "open_admin", "管理"),
        Binding("ctrl+l", "lock", "锁定", priority=True),
        Binding("ctrl+q", "quit", "退出", show=False, priority=True),
    ]

    def __init__(
        self,
        data_dir: str | Path,
        *,
        idle_lock_minutes: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.data = DataDir(data_dir)
        self.session: Session | None = None
        self._idle_override = idle_lock_minutes
        self._clock = clock
        self.last_activity = clock()
        self._session_thread = SessionThread()
        self._log_handler: logging.Handler | None = None
        # Unexpected exceptions shown to the user (tests assert there were none).
        self.internal_errors: list[BaseException] = []

    # -- the session thread ----------------------------------------------------------

    async def db(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """Run ``fn(*args, **kwargs)`` on the session thread; return its result or raise its exception."""
        return await self._session_thread.run(fn, *args, **kwargs)

    def warm_up(self, *modules: str) -> None:
        """Import ``modules`` on the session thread while the user types (makes the first call quick)."""
        import importlib

        for name in modules:
            self._session_thread.submit(importlib.import_module, name)

    def shutdown_session(self) -> None:
        """Close any open session on its thread and stop the thread (on exit; idempotent)."""
        session, self.session = self.session, None
        if session is not None:
            try:
                self._session_thread.call(session.close)
            except Exception as exc:  # noqa: BLE001 - exiting anyway; keep the log
                log.error("closing the session failed: %s", describe_exception(exc))
        self._session_thread.shutdown()

    # -- screens -----------------------------------------------------------------------

    # The bottom of the stack is Textual's blank default screen (it cannot be switched away);
    # the unlock, first-run and home screens are pushed on it and the stack is cut back to it.

    def on_mount(self) -> None:
        self._setup_logging()
        self.set_interval(IDLE_CHECK_SECONDS, self.check_idle_lock, name="idle-lock")
        if self.data.exists():
            from station.ui.screens.unlock import UnlockScreen

            self.push_screen(UnlockScreen())
        else:
            from station.ui.screens.first_run import FirstRunScreen

            self.push_screen(FirstRunScreen())

    def _reset_to(self, screen: Screen) -> None:
        """Replace the whole screen stack (above the blank base) by ``screen``."""
        while len(self.screen_stack) > 1:
            self.pop_screen()
        self.push_screen(screen)

    async def on_unmount(self) -> None:
        self.shutdown_session()
        if self._log_handler is not None:
            logging.getLogger().removeHandler(self._log_handler)
            self._log_handler.close()
            self._log_handler = None

    def signed_in(self, session: Session) -> None:
        """Called by the unlock and first-run screens with a session opened on the session thread."""
        from station.ui.screens.home import HomeScreen

        self.session = session
        self.touch()
        self._setup_logging()  # the data dir exists now (first run)
        self._reset_to(HomeScreen())
        self.refresh_bindings()
        self.post_message(SignedIn())

    def _push(self, module: str, cls: str, *args: Any, **kwargs: Any) -> None:
        if self.session is None:
            return
        import importlib

        try:
            screen_cls = getattr(importlib.import_module(f"station.ui.screens.{module}"), cls)
        except ModuleNotFoundError as exc:
            if exc.name != f"station.ui.screens.{module}":
                raise
            self.notify("此功能尚未提供", severity="warning")
            return
        self.push_screen(screen_cls(*args, **kwargs))

    def open_intake(self) -> None:
        self._push("intake", "IntakeScreen")

    def open_cases(self, **filters: Any) -> None:
        """Push the case list; ``filters`` are ``queries.list_cases`` keywords plus ``title`` and ``search``."""
        self._push("cases", "CasesScreen", **filters)

    def open_case(self, case_id: str) -> None:
        self._push("case_page", "CaseScreen", case_id)

    def open_inbox(self) -> None:
        self._push("inbox", "InboxScreen")

    def open_sync(self, then: str = "sync", *, quit_after: bool = False) -> None:
        """F9 from any screen: open the sync screen and start a sync there at once.

        ``then``: what the sync screen does once its status is read — ``"sync"``, ``"export"``
        (USB) or ``""`` (nothing); with ``quit_after`` the app ends when that went through. On the
        sync screen itself F9 is its own 立即同步.
        """
        screen = self.screen
        if type(screen).__name__ == "SyncScreen":
            screen.start(then, quit_after=quit_after)  # type: ignore[attr-defined]
        else:
            self._push("sync", "SyncScreen", then=then, quit_after=quit_after)

    def open_admin(self) -> None:
        if type(self.screen).__name__ != "AdminScreen":
            self._push("admin", "AdminScreen")

    def refresh_home(self) -> None:
        """Reload the home screen's figures (after any write); cheap when home is not on the stack."""
        from station.ui.screens.home import HomeScreen

        for screen in self.screen_stack:
            if isinstance(screen, HomeScreen):
                screen.reload()

    def on_case_changed(self, message: CaseChanged) -> None:
        self.refresh_home()

    # -- locking --------------------------------------------------------------------------

    @property
    def idle_lock_minutes(self) -> int:
        if self._idle_override is not None:
            return self._idle_override
        return self.session.config.idle_lock_minutes if self.session is not None else 0

    def touch(self) -> None:
        self.last_activity = self._clock()

    def check_idle_lock(self, now: float | None = None) -> bool:
        """Lock if the user has been idle for ``idle_lock_minutes`` (0: never). True if it locked."""
        minutes = self.idle_lock_minutes
        if self.session is None or minutes <= 0:
            return False
        now = self._clock() if now is None else now
        # ``now < last + limit``, not ``now - last < limit``: the subtraction rounds, so a check
        # exactly at the limit could miss it (a flaky test caught this).
        if now < self.last_activity + minutes * 60:
            return False
        self.lock()
        self.notify(f"已闲置{minutes}分钟，工作站已自动锁定", title="已锁定")
        return True

    def lock(self, login: str | None = None) -> None:
        """Close the database and forget the key (on the session thread), then show the unlock screen."""
        from station.ui.screens.unlock import UnlockScreen

        session, self.session = self.session, None
        if session is not None:
            # Queued after whatever the session thread is doing: a write in progress finishes first.
            self.run_worker(self.db(session.close), group="lock", exit_on_error=True)
        login = session.user.login if session is not None else login
        self._reset_to(UnlockScreen(login=login))
        self.refresh_bindings()
        self.post_message(Locked())

    async def close_session(self) -> None:
        """Close the session and wait until it is closed (before the data folder is replaced)."""
        session, self.session = self.session, None
        if session is not None:
            await self.db(session.close)
        if self._log_handler is not None:  # the folder may be renamed: let go of its log file
            logging.getLogger().removeHandler(self._log_handler)
            self._log_handler.close()
            self._log_handler = None
        self.refresh_bindings()

    # -- actions ---------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in SESSION_ACTIONS and self.session is None:
            return False
        return True

    def action_lock(self) -> None:
        self.lock()

    def action_open_intake(self) -> None:
        self.open_intake()

    def action_open_cases(self) -> None:
        self.open_cases()

    def action_open_inbox(self) -> None:
        self.open_inbox()

    def action_open_sync(self) -> None:
        self.open_sync()

    def action_open_admin(self) -> None:
        self.open_admin()

    def action_refresh(self) -> None:
        reload = getattr(self.screen, "reload", None)
        if callable(reload):
            reload()

    def action_help(self) -> None:
        from station.ui.widgets.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.screen))

    def get_key_display(self, binding: Binding) -> str:
        from station.ui.widgets.help import key_name

        return key_name(binding)

    async def action_quit(self) -> None:
        """Ctrl+Q. With records the county has not received yet, offer to sync or export them first."""
        session = self.session
        if session is None or isinstance(self.screen, ModalScreen):
            self.exit()
            return
        self.run_worker(self._quit(session), group="quit", exclusive=True, exit_on_error=False)

    async def _quit(self, session: Session) -> None:
        from station.ui.screens.dialogs import ChoiceDialog

        try:
            waiting = await self.db(records_waiting, session)
        except Exception as exc:  # noqa: BLE001 - leaving must always work; the problem is logged
            log.error("quit check failed: %s", describe_exception(exc))
            waiting = 0
        if not waiting:
            self.exit()
            return
        choice = await self.push_screen_wait(ChoiceDialog(
            f"还有 {waiting} 条记录没有交给县中心。它们保存在本机，不会丢失；"
            "但电脑损坏或丢失时，没交出去的记录就找不回来了。\n退出前先同步（有网络时），或导出到U盘？",
            [("sync", "同步后退出"), ("export", "导出到U盘后退出"), ("quit", "直接退出")],
            title="退出",
        ))
        if choice == "quit":
            self.exit()
        elif choice in ("sync", "export"):
            self.open_sync(then=choice, quit_after=True)

    def action_help_quit(self) -> None:
        self.notify("按 Ctrl+Q 退出程序；按 Ctrl+L 锁定工作站", title="提示")

    # -- activity ----------------------------------------------------------------------------

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, (events.Key, events.MouseEvent)):
            self.last_activity = self._clock()
        await super().on_event(event)

    # -- errors ------------------------------------------------------------------------------

    def show_error(self, exc: BaseException) -> None:
        """A UserError's Chinese message as a notification; anything else logged (no personal data)."""
        from schema.errors import UserError

        if isinstance(exc, WorkerFailed):
            exc = exc.error
        if isinstance(exc, UserError):
            self.notify(exc.message, title="提示", severity="warning", markup=False)
            return
        self.internal_errors.append(exc)
        log.error("unexpected %s", describe_exception(exc))
        try:
            self.notify(INTERNAL_ERROR, title="错误", severity="error", timeout=10)
        except Exception:  # noqa: BLE001 - no screen yet (failure during start-up): logged above
            pass

    def _handle_exception(self, error: Exception) -> None:
        # Textual's default ends the app with a traceback on screen. Once the app is up, an
        # unexpected exception in a handler, timer or worker is logged and shown instead.
        if not self.is_running or self._exit_renderables or not self.screen_stack:
            super()._handle_exception(error)
            return
        self.show_error(error)

    def _register(self, parent, *widgets: Widget, **kwargs: Any) -> list[Widget]:
        for widget in widgets:
            self._guard(widget)
        return super()._register(parent, *widgets, **kwargs)

    def _guard(self, node: Widget) -> None:
        """Catch what a node's handlers raise, so the node's message loop keeps running.

        Textual ends a node's message loop after an exception in one of its handlers (the
        screen would stop repainting and passing keys on), so the exception is caught where the
        node dispatches the message, shown, and the next message is processed as usual.
        """
        if "_dispatch_message" in vars(node):
            return
        dispatch = node._dispatch_message

        async def guarded(message) -> None:
            try:
                await dispatch(message)
            except Exception as exc:  # noqa: BLE001 - shown and logged by show_error
                self.show_error(exc)
            self._report_failed_worker(message)

        node._dispatch_message = guarded  # type: ignore[method-assign]

    async def _dispatch_message(self, message) -> None:
        try:
            await super()._dispatch_message(message)
        except Exception as exc:  # noqa: BLE001 - see _guard
            if not self.is_running or not self.screen_stack:
                raise
            self.show_error(exc)
        self._report_failed_worker(message)

    def _report_failed_worker(self, message) -> None:
        # A worker started with exit_on_error=False that ends in an exception it did not handle
        # would otherwise fail silently (with exit_on_error=True, _handle_exception reports it).
        if (
            isinstance(message, Worker.StateChanged)
            and message.state is WorkerState.ERROR
            and not message.worker.exit_on_error
            and message.worker.error is not None
        ):
            self.show_error(message.worker.error)

    def _setup_logging(self) -> None:
        """Log to the data dir's station.log like the CLI does (no personal data is ever logged)."""
        if self._log_handler is not None or not self.data.root.is_dir():
            return
        from station.cli.main import _setup_logging

        root = logging.getLogger()
        before = set(root.handlers)
        _setup_logging(self.data.root)
        added = [h for h in root.handlers if h not in before]
        self._log_handler = added[0] if added else None
