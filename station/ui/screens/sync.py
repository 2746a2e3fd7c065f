"""Sync with the county center: status, sync now with progress by stage, history, USB bundles.

立即同步 (F9 or Enter) runs ``station.replication.runner.sync_now`` on a thread worker with its
own session (``session.fork()``), so the session thread — and every other screen — stays free
however slow the link; the stages and counts come back as :class:`SyncScreen.Progress` messages.
When it ends, the app's session forgets its caches (the fork wrote cases) and the home screen
reloads. Export and import of USB bundles run on the session thread (local disk only).

Everything the county refuses is shown with its Chinese reason, never with a code.
"""

from __future__ import annotations

import re
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Button, DataTable, Static

from schema.errors import UserError
from station.ui.screens.file_picker import FilePickerScreen
from station.ui.widgets.footer import StationFooter
from station.ui.widgets.sync_fork import after_fork, run_on_fork
from station.ui.widgets.sync_progress import SyncProgress

STYLES = Path(__file__).resolve().parent.parent / "styles"
HISTORY = 50
NARROW = 100  # below this many columns the history drops the year
# Short outcome labels for the history table (the report's own labels are sentences).
OUTCOMES = {
    "ok": "成功",
    "refused": "部分被拒",
    "offline": "无法连接",
    "revoked": "已注销",
    "error": "应答异常",
    "running": "进行中",
    "interrupted": "中断",
}
OUTCOME_STYLES = {
    "ok": "green",
    "refused": "yellow",
    "offline": "yellow",
    "revoked": "bold red",
    "error": "red",
    "interrupted": "yellow",
}
IDLE_HINT = "按 F9 或 Enter 立即同步"


# -- on the session / worker thread ------------------------------------------------------------------


def load(session: Any) -> tuple[Any, list[dict]]:
    from station.replication.runner import history
    from station.replication.status import sync_status

    return sync_status(session), history(session, HISTORY)


def sync(session: Any, progress: Any, retry_blocked: bool = False) -> Any:
    from station.replication.runner import sync_now

    return sync_now(session, progress=progress, retry_blocked=retry_blocked)


def export_bundle(session: Any, folder: Path) -> Any:
    from station.replication.bundles import export_bundle as export

    return export(session, folder)


def import_bundle(session: Any, path: Path) -> Any:
    from station.replication.bundles import import_path

    return import_path(session, path)


# -- what the screen says ------------------------------------------------------------------------------


_LOOSE = re.compile(
    r"(?<=[\u3000-\u9fff\uff00-\uffef]) (?=[0-9])|(?<=[0-9%]) (?=[\u3000-\u9fff\uff00-\uffef])"
)


def tight(text: str) -> str:
    """Drop the spaces between Chinese and digits ("相差 5 分钟" → "相差5分钟").

    A terminal wraps lines at spaces; in Chinese text those spaces are optional, and a line
    broken between a number and its unit reads badly.
    """
    return _LOOSE.sub("", text)


def when(iso: str | None) -> str:
    return iso[:16].replace("T", " ") if iso else "—"


def status_text(st: Any) -> Text:
    """The status block: 在线/离线, last sync, waiting, county; then every warning in plain Chinese."""
    t = Text()
    if not st.enrolled:
        t.append("本工作站尚未登记到县中心，还不能同步。", style="bold yellow")
        t.append("\n按D键登记：在线填写县中心给的登记码，或用U盘交换登记文件。")
        return t
    if st.revoked:
        t.append("本工作站已被县中心注销，不能再同步：", style="bold red")
        t.append(tight(st.revoked_reason) or "（县中心未说明原因）", style="bold red")
        t.append("\n本机数据仍完整保存；如需恢复，请联系县中心重新登记。\n")
    state = {True: ("● 在线", "green"), False: ("○ 离线", "yellow"), None: ("○ 尚未同步", "")}[st.online]
    t.append(state[0], style=state[1])
    if st.online is not None:
        t.append("（上次连接时）", style="dim")
    t.append("　县中心：", style="dim")
    t.append(f"{st.county}　{st.url}")
    t.append("\n上次同步：", style="dim")
    t.append(when(st.last_success) if st.last_success else "从未同步成功")
    t.append("　待上传：", style="dim")
    t.append(f"{st.pending} 条", style="bold" if st.pending else "")
    if st.pending_relay:
        t.append(f"（其中转交下级站 {st.pending_relay} 条）")
    if st.clock_warning:
        t.append("\n⚠" + tight(st.clock_warning), style="yellow")
    if st.blocked:
        t.append("\n上传已暂停：" + tight(st.blocked) + "（处理后按R重试）", style="yellow")
    for r in st.relay_refused:
        t.append(
            f"\n下级站{r['station'][:8]}第{r['first']}–{r['last']}条被县中心拒收：{tight(r['reason'])}",
            style="yellow",
        )
    if st.set_aside:
        t.append(tight(f"\n收到的记录中有 {st.set_aside} 条未采用（已搁置，不影响其他记录）"), style="yellow")
        for r in st.set_aside_recent[:3]:
            t.append(f"\n　工作站{r['station'][:8]}第{r['seq']}条：{tight(r['reason'])}", style="yellow")
    if st.last_error and not st.revoked:
        t.append("\n上次同步的问题：", style="dim")
        t.append(tight(st.last_error), style="yellow")
    return t


def kib(n: int) -> str:
    return f"{n / 1024:.1f}KB"


class SyncScreen(Screen[None]):
    CSS_PATH = STYLES / "sync.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "返回"),
        Binding("f9", "sync", "立即同步"),
        Binding("enter", "sync", "立即同步", show=False),
        Binding("e", "export", "导出到U盘", key_display="E"),
        Binding("i", "import_bundle", "从U盘导入", key_display="I"),
        Binding("r", "retry", "重试上传", key_display="R"),
        Binding("d", "enroll", "登记到县中心", key_display="D"),
    ]

    class Progress(Message):
        """A stage of the running sync (posted from the worker thread)."""

        def __init__(self, stage: str, done: int, total: int | None) -> None:
            super().__init__()
            self.stage, self.done, self.total = stage, done, total

    def __init__(self, then: str = "", *, quit_after: bool = False) -> None:
        super().__init__()
        self.status: Any = None
        self.history: list[dict] = []
        self.busy = False
        self.then = then  # "sync" / "export": start it as soon as the status is known (F9 elsewhere)
        self.quit_after = quit_after  # leave the app once that went through (the app's Ctrl+Q offer)

    def compose(self) -> ComposeResult:
        yield Static("数据同步", id="sync-title", classes="screen-title")
        with Horizontal(id="sync-top"):
            yield Static("正在读取同步状态……", id="sync-status")
            with Vertical(id="sync-buttons"):
                yield Button("立即同步 F9", id="sync-now", variant="primary", compact=True)
                yield Button("导出到U盘 E", id="sync-export", compact=True)
                yield Button("从U盘导入 I", id="sync-import", compact=True)
                yield Button("登记 D", id="sync-enroll", compact=True)
        yield SyncProgress(IDLE_HINT, id="sync-progress")
        yield Static("", id="sync-result", markup=False)
        yield Static("同步记录", id="sync-history-title", classes="section-title")
        yield DataTable(id="sync-history", cursor_type="row", zebra_stripes=True)
        yield StationFooter()

    def on_mount(self) -> None:
        self.query_one("#sync-now", Button).focus()
        self.query_one("#sync-result").display = False
        self.reload()

    def on_screen_resume(self) -> None:
        if self.status is not None and not self.busy:
            self.reload()

    # -- loading ----------------------------------------------------------------------------------

    def reload(self) -> None:
        if self.app.session is None:  # type: ignore[attr-defined]
            return
        self.run_worker(self._load, exclusive=True, group="sync-load", exit_on_error=False)

    async def _load(self) -> None:
        app: Any = self.app
        try:
            status, history = await app.db(load, app.session)
        except Exception as exc:  # noqa: BLE001 - shown by the app
            app.show_error(exc)
            return
        self.show(status, history)

    def show(self, status: Any, history: list[dict]) -> None:
        self.status, self.history = status, history
        self.query_one("#sync-status", Static).update(status_text(status))
        can = self._can_sync()
        for selector in ("#sync-now", "#sync-export", "#sync-import"):
            button = self.query_one(selector, Button)
            button.disabled = not can or self.busy
            button.display = can
        enroll = self.query_one("#sync-enroll", Button)
        enroll.display = not can
        progress = self.query_one(SyncProgress)
        progress.display = can or self.busy
        if not self.busy and not progress.stage:
            progress.idle(IDLE_HINT)
        self._fill_history()
        if not can and (self.focused is None or self.focused.id == "sync-now"):
            enroll.focus()
        self.refresh_bindings()
        then, self.then = self.then, ""
        if then:
            self.start(then, quit_after=self.quit_after)

    def start(self, then: str, *, quit_after: bool = False) -> None:
        """Start a sync (``"sync"``) or a USB export (``"export"``) as if its key had been pressed."""
        self.quit_after = quit_after
        if then == "sync":
            self.action_sync()
        elif then == "export":
            self.action_export()

    def _fill_history(self) -> None:
        table = self.query_one("#sync-history", DataTable)
        table.clear(columns=True)
        width = max(40, (self.size.width or 80) - 2)
        narrow = width < NARROW
        time_width = 11 if narrow else 16  # "03-02 08:58" / "2026-03-02 08:58"
        columns = [
            ("时间", time_width, "at"),
            ("结果", 8, "outcome"),
            ("上传", 5, "pushed"),
            ("下载", 5, "pulled"),
            ("流量", 8, "bytes"),
        ]
        fixed = sum(w for _, w, _ in columns) + 2 * (len(columns) + 1) + 1
        for label, w, key in columns:
            table.add_column(label, width=w, key=key)
        table.add_column("说明（Enter 看全文）", width=max(12, width - fixed), key="message")
        if not self.history:
            table.add_row("", "", "", "", "", "还没有同步记录")
            return
        for row in self.history:
            outcome = row["outcome"]
            pushed = str(row["pushed"]) + (f"+{row['relayed']}" if row["relayed"] else "")
            at = when(row["started_at"])
            table.add_row(
                at[5:] if narrow else at,
                Text(OUTCOMES.get(outcome, outcome), style=OUTCOME_STYLES.get(outcome, "")),
                pushed,
                str(row["pulled"]),
                kib(row["bytes_sent"] + row["bytes_received"]),
                row["message"] or "",
                key=str(row["id"]),
            )

    def on_resize(self) -> None:
        if self.status is not None:
            self._fill_history()

    @on(DataTable.RowSelected, "#sync-history")
    def _row(self, event: DataTable.RowSelected) -> None:
        """Enter on a history row shows that attempt in full (its message may be long)."""
        event.stop()
        row = next((r for r in self.history if str(r["id"]) == event.row_key.value), None)
        if row is None:
            return
        outcome = OUTCOMES.get(row["outcome"], row["outcome"])
        text = (
            f"{when(row['started_at'])} 至 {when(row['finished_at'])}　{outcome}：上传 {row['pushed']} 条，"
            f"下载 {row['pulled']} 条"
            + (f"，转交下级 {row['relayed']} 条" if row["relayed"] else "")
            + f"，流量 {kib(row['bytes_sent'] + row['bytes_received'])}"
        )
        if row["message"]:
            text += "\n" + row["message"]
        self.say(text)

    def say(self, text: str, *, style: str = "") -> None:
        result = self.query_one("#sync-result", Static)
        result.update(Text(tight(text), style=style))
        result.display = bool(text)

    # -- actions ----------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        st = self.status
        if action in ("sync", "export", "import_bundle"):
            return self._can_sync() and not self.busy
        if action == "retry":
            return self._can_sync() and not self.busy and bool(st.blocked or st.relay_refused)
        if action == "enroll":
            return st is not None and (not st.enrolled or st.revoked) and not self.busy
        return True

    def action_back(self) -> None:
        if self.busy:
            # The sync's ending (the app's session forgets its caches, home reloads) belongs to
            # this screen's worker: leaving now would skip it.
            self.app.notify("正在同步，请等同步结束后再返回", title="同步", severity="warning")
            return
        self.app.pop_screen()

    @on(Button.Pressed, "#sync-now")
    def _sync_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_sync()

    @on(Button.Pressed, "#sync-export")
    def _export_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_export()

    @on(Button.Pressed, "#sync-import")
    def _import_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_import_bundle()

    @on(Button.Pressed, "#sync-enroll")
    def _enroll_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_enroll()

    def _can_sync(self) -> bool:
        """Enrolled and not revoked (a revoked station keeps its data but may only enroll again)."""
        return self.status is not None and self.status.enrolled and not self.status.revoked

    def _set_busy(self, busy: bool) -> None:
        self.busy = busy
        can = self._can_sync()
        for selector in ("#sync-now", "#sync-export", "#sync-import"):
            self.query_one(selector, Button).disabled = busy or not can
        if not busy and self.focused is None and can:
            self.query_one("#sync-now", Button).focus()  # disabling it while busy took the focus away
        self.refresh_bindings()

    # sync

    def action_sync(self) -> None:
        self._start_sync(retry_blocked=False)

    def action_retry(self) -> None:
        self._start_sync(retry_blocked=True)

    def _start_sync(self, *, retry_blocked: bool) -> None:
        if self.busy or not self._can_sync():
            return
        self._set_busy(True)
        self.say("")
        self.query_one(SyncProgress).show("连接县中心", 0, None)
        self.run_worker(partial(self._sync, retry_blocked), group="sync", exit_on_error=False)

    def _progress(self, stage: str, done: int, total: int | None) -> None:
        # Runs on the worker thread: post_message is the thread-safe way back to the screen.
        self.post_message(self.Progress(stage, done, total))

    @on(Progress)
    def _on_progress(self, message: Progress) -> None:
        self.query_one(SyncProgress).show(message.stage, message.done, message.total)

    async def _sync(self, retry_blocked: bool) -> None:
        app: Any = self.app
        session = app.session
        try:
            report = await run_on_fork(self, session, sync, self._progress, retry_blocked)
        except Exception as exc:  # noqa: BLE001 - a UserError (not enrolled …) as a note, the rest logged
            self.query_one(SyncProgress).idle(IDLE_HINT)
            app.show_error(exc)
            if isinstance(exc, UserError):
                self.say(exc.message, style="yellow")
            self._set_busy(False)
            self.reload()
            self._maybe_quit(False)
            return
        try:
            if app.session is session:
                await app.db(after_fork, session)
        finally:
            self._set_busy(False)
        self.query_one(SyncProgress).show("完成", 1, 1)
        self.say(self.report_text(report), style="" if report.ok else "yellow")
        for notice in report.notices:  # said once per station (station.replication.transport)
            app.notify(notice, title="提示", timeout=15, markup=False)
        if report.ok:
            app.notify(report.summary, title="同步完成")
        else:
            app.notify(
                "；".join(report.messages) or report.summary,
                title=report.summary.split("：")[0],
                severity="warning",
                timeout=10,
                markup=False,
            )
        app.refresh_home()
        self.reload()
        self._maybe_quit(report.ok)

    def _maybe_quit(self, ok: bool) -> None:
        if self.quit_after:
            self.quit_after = False
            if ok:
                self.app.exit()
            else:
                self.app.notify("没有全部完成，程序没有退出；处理后可再按 Ctrl+Q", title="退出", severity="warning")

    @staticmethod
    def report_text(report: Any) -> str:
        lines = [report.summary]
        lines += report.messages
        lines += report.notices
        return "\n".join(lines)

    # USB bundles

    def action_export(self) -> None:
        if self.busy:
            return
        self._set_busy(True)
        self.run_worker(self._export, group="sync", exit_on_error=False)

    async def _export(self) -> None:
        app: Any = self.app
        try:
            folder = await app.push_screen_wait(
                FilePickerScreen(
                    "导出到U盘：选择文件夹",
                    mode="dir",
                    prompt="选择U盘上的文件夹。导出的文件已加密，只有县中心（和上级乡镇站）能读取。",
                )
            )
            if folder is None:
                self.quit_after = False
                return
            result = await app.db(export_bundle, app.session, folder)
        except Exception as exc:  # noqa: BLE001
            self._show_failure(exc)
            return
        finally:
            self._set_busy(False)
        self.say(result.text())
        app.notify(f"已导出 {len(result.files)} 个文件（{result.events} 条记录）", title="导出完成")
        self.reload()
        self._maybe_quit(True)

    def action_import_bundle(self) -> None:
        if self.busy:
            return
        self._set_busy(True)
        self.run_worker(self._import, group="sync", exit_on_error=False)

    async def _import(self) -> None:
        app: Any = self.app
        try:
            path = await app.push_screen_wait(
                FilePickerScreen(
                    "从U盘导入：选择文件或文件夹",
                    mode="any",
                    suffixes=(".cvs",),
                    prompt="选择一个同步数据文件（*.cvs），或选择文件夹导入其中全部文件",
                )
            )
            if path is None:
                return
            result = await app.db(import_bundle, app.session, path)
        except Exception as exc:  # noqa: BLE001
            self._show_failure(exc)
            return
        finally:
            self._set_busy(False)
        self.say(result.text(), style="" if result.ok else "yellow")
        if result.ok:
            app.notify(f"已导入，新增记录 {result.events} 条", title="导入完成")
        else:
            app.notify(
                "；".join(result.problems),
                title="部分文件未导入",
                severity="warning",
                timeout=10,
                markup=False,
            )
        app.refresh_home()
        self.reload()

    def _show_failure(self, exc: Exception) -> None:
        self._maybe_quit(False)
        self.app.show_error(exc)  # type: ignore[attr-defined]
        if isinstance(exc, UserError):
            self.say(exc.message, style="yellow")

    # enrollment

    def action_enroll(self) -> None:
        if self.busy:
            return
        self.run_worker(self._enroll, group="sync-enroll", exit_on_error=False)

    async def _enroll(self) -> None:
        from station.ui.screens.enroll import EnrollScreen

        result = await self.app.push_screen_wait(EnrollScreen())
        if result is not None:
            self.say(result.text())
        self.reload()
