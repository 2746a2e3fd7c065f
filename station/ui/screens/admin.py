"""Administration: users, this station, its settings, and who viewed a full ID number.

Four tabs (keys 1–4). What may be changed is decided by ``station.services.admin`` (which uses
``station.services.users.check_can_manage``): a role manages only the roles below it, so a
village agent sees everything read-only. Enrolling with the county is open to whoever holds a
one-time code from the county admin (the code is the permission).
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
from textual.widgets import Button, DataTable, Input, Static, TabbedContent, TabPane

from schema.errors import UserError
from station.ui.screens.dialogs import ConfirmDialog, Field, PinFormDialog
from station.ui.widgets.footer import StationFooter

STYLES = Path(__file__).resolve().parent.parent / "styles"
TABS = ["admin-users", "admin-station", "admin-settings", "admin-audit"]


# -- on the session thread -----------------------------------------------------------------------------


def load(session: Any) -> dict[str, Any]:
    from station.services import admin, backup

    return {
        "info": admin.station_info(session),
        "users": admin.user_rows(session),
        "roles": admin.manageable_roles(session),
        "can_settings": admin.can_change_settings(session),
        "audit": admin.id_views(session),
        "protection": admin.key_protection(session),
        "last_backup": backup.last_backup(session),
    }


def add_user(session: Any, values: dict[str, Any]) -> Any:
    from station.services import admin

    return admin.add_user(
        session,
        login=values["login"],
        name=values["name"],
        role=values["role"] or "",
        pin=values["pin"],
        pin2=values["pin2"],
    )


def reset_pin(session: Any, login: str, values: dict[str, Any]) -> None:
    from station.services import admin

    admin.reset_pin(session, login, pin=values["pin"], pin2=values["pin2"])


def change_own_pin(session: Any, values: dict[str, Any]) -> None:
    from station.services import admin

    admin.change_own_pin(session, old=values["old"], pin=values["pin"], pin2=values["pin2"])


def disable_user(session: Any, login: str) -> None:
    from station.services import admin

    admin.disable_user(session, login)


def make_backup(session: Any, folder: Path) -> Any:
    from station.services.backup import create_backup

    return create_backup(session, folder)


def enrolled_county(session: Any) -> str | None:
    from station.replication import identity

    county = identity.county(session)
    return county.code if county else None


def save_settings(session: Any, county_url: str, idle_lock_minutes: str) -> Any:
    from station.services import admin

    return admin.save_settings(session, county_url=county_url, idle_lock_minutes=idle_lock_minutes)


# -- dialogs -------------------------------------------------------------------------------------------


def when(iso: str) -> str:
    return iso[:16].replace("T", " ") if iso else "—"


def info_text(info: Any, protection: Any = None) -> Text:
    rows = [
        ("工作站名称", info.name),
        ("单位", f"{info.org}（{info.level}）"),
        ("工作站编号", f"{info.station_no:02d}（办件编号中的站号）"),
        ("工作站ID", info.station_id),
        ("建立时间", when(info.created_at)),
        ("登记状态", info.enrollment_text),
        ("县中心", f"{info.county_name}（{info.county_code}）" if info.county_name else info.county_code),
        ("县中心地址", info.county_url or "（未设置）"),
        ("本站密钥指纹", info.key_fingerprint or "（登记后生成）"),
        ("县中心密钥指纹", info.county_fingerprint or "—"),
        ("自动锁定", f"闲置 {info.idle_lock_minutes} 分钟"),
    ]
    if protection is not None:
        rows.append(("PIN保护", protection.text()))
    t = Text()
    for i, (label, value) in enumerate(rows):
        if i:
            t.append("\n")
        t.append(f"{label}：", style="dim")
        style = (
            "bold red"
            if (label == "登记状态" and info.revoked) or (label == "PIN保护" and protection.store is None)
            else ("yellow" if (label == "登记状态" and not info.enrolled) or label == "PIN保护"
                  and protection.file_only else "")
        )
        t.append(value, style=style)
    return t


class AdminScreen(Screen[None]):
    CSS_PATH = STYLES / "admin.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "返回"),
        Binding("1", "tab(0)", "用户", show=False),
        Binding("2", "tab(1)", "工作站", show=False),
        Binding("3", "tab(2)", "设置", show=False),
        Binding("4", "tab(3)", "查看记录", show=False),
        Binding("a", "add_user", "添加用户", key_display="A"),
        Binding("x", "disable_user", "停用", key_display="X"),
        Binding("p", "reset_pin", "重置PIN", key_display="P"),
        Binding("c", "change_pin", "修改我的PIN", key_display="C"),
        Binding("d", "enroll", "登记到县中心", key_display="D"),
        Binding("b", "backup", "备份到U盘", key_display="B"),
        Binding("r", "restore", "从备份恢复", key_display="R"),
        Binding("ctrl+s", "save_settings", "保存设置"),
    ]

    def __init__(self, tab: str = "admin-users") -> None:
        super().__init__()
        self.initial_tab = tab
        self.data: dict[str, Any] | None = None
        self._busy = False

    def compose(self) -> ComposeResult:
        yield Static("管理", id="admin-title", classes="screen-title")
        with TabbedContent(initial=self.initial_tab, id="admin-tabs"):
            with TabPane("1 用户", id="admin-users"):
                yield Static("", id="users-note", classes="admin-note", markup=False)
                yield DataTable(id="users-table", cursor_type="row", zebra_stripes=True)
                with Horizontal(classes="admin-buttons"):
                    with Horizontal(id="users-buttons"):
                        yield Button("添加用户 A", id="user-add", compact=True)
                        yield Button("停用 X", id="user-disable", compact=True)
                        yield Button("重置PIN P", id="user-reset", compact=True)
                    yield Button("修改我的PIN C", id="user-change-pin", compact=True)
            with TabPane("2 工作站", id="admin-station"), VerticalScroll():
                yield Static("正在读取……", id="station-info")
                yield Static("", id="station-backup", classes="admin-note", markup=False)
                with Horizontal(classes="admin-buttons"):
                    yield Button("登记到县中心 D", id="station-enroll", compact=True)
                    yield Button("备份到U盘 B", id="station-backup-now", compact=True)
                    yield Button("从备份恢复 R", id="station-restore", compact=True)
            with TabPane("3 设置", id="admin-settings"), VerticalScroll():
                yield Static("", id="settings-note", classes="admin-note", markup=False)
                with Horizontal(classes="admin-row"):
                    yield Static("县中心地址", classes="admin-label")
                    yield Input(
                        placeholder="如 http://10.0.0.5:8000（空着则用登记时的地址）",
                        id="county-url",
                        compact=True,
                        select_on_focus=False,
                    )
                yield Static("", id="msg-county_url", classes="admin-msg", markup=False)
                with Horizontal(classes="admin-row"):
                    yield Static("自动锁定", classes="admin-label")
                    yield Input(
                        id="idle-minutes",
                        max_length=3,
                        restrict=r"[0-9]*",
                        compact=True,
                        select_on_focus=False,
                    )
                    yield Static("分钟无操作后锁定（1–120）", classes="admin-unit")
                yield Static("", id="msg-idle_lock_minutes", classes="admin-msg", markup=False)
                with Horizontal(classes="admin-buttons"):
                    yield Button("保存 Ctrl+S", id="settings-save", variant="primary", compact=True)
            with TabPane("4 查看身份证号记录", id="admin-audit"):
                yield Static(
                    "查看完整身份证号的记录（本站和县中心同步来的），最新的在前；Enter 打开办件",
                    classes="admin-note",
                )
                yield DataTable(id="audit-table", cursor_type="row", zebra_stripes=True)
        yield StationFooter()

    def on_mount(self) -> None:
        if self.initial_tab == "admin-users":
            self.query_one("#users-table", DataTable).focus()
        self.reload()

    def on_screen_resume(self) -> None:
        if self.data is not None:
            self.reload()

    # -- loading ----------------------------------------------------------------------------------

    def reload(self) -> None:
        if self.app.session is None:  # type: ignore[attr-defined]
            return
        self.run_worker(self._load, exclusive=True, group="admin-load", exit_on_error=False)

    async def _load(self) -> None:
        app: Any = self.app
        session = app.session
        if session is None:  # locked (or being restored) since the reload was asked for
            return
        try:
            data = await app.db(load, session)
        except Exception as exc:  # noqa: BLE001 - shown by the app
            app.show_error(exc)
            return
        self.show(data)

    def show(self, data: dict[str, Any]) -> None:
        first = self.data is None
        self.data = data
        self._fill_users()
        info = data["info"]
        self.query_one("#station-info", Static).update(info_text(info, data["protection"]))
        last = data.get("last_backup")
        done = f"上次备份：{when(last)}。" if last else "本站还没有备份过。"
        self.query_one("#station-backup", Static).update(done + "备份文件已加密，建议每周备份到U盘一次，U盘另处保管。")
        self._fill_settings(data, first)
        self._fill_audit()
        self.refresh_bindings()

    def _fill_users(self) -> None:
        assert self.data is not None
        roles = self.data["roles"]
        note = self.query_one("#users-note", Static)
        if roles:
            note.update(
                "可添加：" + "、".join(r.label for r in roles) + "。停用和重置PIN只对比本人低的角色有效。"
            )
        else:
            me = self.app.session.user.role.label  # type: ignore[attr-defined]
            note.update(f"{me}只能查看用户。添加、停用用户和重置PIN请由上级人员操作。")
        self.query_one("#users-buttons").display = bool(roles)
        table = self.query_one("#users-table", DataTable)
        cursor = table.cursor_row
        table.clear(columns=True)
        table.add_column("登录名", width=14, key="login")
        table.add_column("姓名", width=10, key="name")
        table.add_column("角色", width=18, key="role")
        table.add_column("状态", key="state")
        for u in self.data["users"]:
            state = Text(
                u.state_label + ("（本人）" if u.is_self else ""),
                style="dim" if u.disabled else ("yellow" if u.locked or u.failures else ""),
            )
            table.add_row(u.login, u.name, u.role.label, state, key=u.login)
        if self.data["users"]:
            table.move_cursor(row=min(cursor, len(self.data["users"]) - 1))

    def _fill_settings(self, data: dict[str, Any], first: bool) -> None:
        info, can = data["info"], data["can_settings"]
        url, minutes = self.query_one("#county-url", Input), self.query_one("#idle-minutes", Input)
        if first or not can:
            url.value = self.app.session.config.county_url  # type: ignore[attr-defined]
            minutes.value = str(info.idle_lock_minutes)
        for w in (url, minutes):
            w.disabled = not can
        self.query_one("#settings-save", Button).display = can
        me = self.app.session.user.role.label  # type: ignore[attr-defined]
        enrolled_url = (
            f"登记时县中心给出的地址：{info.county_url}。" if info.enrolled and info.county_url else ""
        )
        self.query_one("#settings-note", Static).update(
            (enrolled_url + "县中心地址一般不用改；县中心搬迁时按县中心通知填写。")
            if can
            else f"{me}只能查看设置。如需修改，请由上级人员操作。"
        )

    def _fill_audit(self) -> None:
        assert self.data is not None
        table = self.query_one("#audit-table", DataTable)
        table.clear(columns=True)
        width = (self.size.width or 80) - 4
        narrow = width < 100
        fixed = (11 if narrow else 16) + 10 + 8 + 29 + 2 * 5
        table.add_column("时间", width=11 if narrow else 16, key="at")
        table.add_column("查看人", width=10, key="who")
        table.add_column("角色", width=8, key="role")
        table.add_column("办件编号", width=29, key="case_no")
        table.add_column("工作站", width=max(8, width - fixed), key="station")
        rows = self.data["audit"]
        if not rows:
            table.add_row("没有记录", "", "", "", "")
            return
        for i, v in enumerate(rows):
            at = when(v.at)[5:] if narrow else when(v.at)
            table.add_row(at, v.who, v.role, v.case_no, v.station, key=f"{i}:{v.case_id}")

    def on_resize(self) -> None:
        if self.data is not None:
            self._fill_audit()

    # -- tabs -------------------------------------------------------------------------------------

    def _tab(self) -> str:
        return self.query_one("#admin-tabs", TabbedContent).active

    def action_tab(self, index: int) -> None:
        self.query_one("#admin-tabs", TabbedContent).active = TABS[index]
        # Not the settings' first field: the digit keys must keep switching tabs (Tab goes into the form).
        focus = {0: "#users-table", 3: "#audit-table"}.get(index)
        if focus is not None:
            self.query_one(focus).focus()
        else:
            self.query_one("#admin-tabs Tabs").focus()

    @on(TabbedContent.TabActivated)
    def _tab_changed(self, event: TabbedContent.TabActivated) -> None:
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if self.data is None:
            return action in ("back", "tab") or None
        tab = self._tab()
        if action == "add_user":
            return tab == "admin-users" and bool(self.data["roles"])
        if action in ("disable_user", "reset_pin"):
            if tab != "admin-users" or not self.data["roles"]:
                return False
            user = self._current_user()
            return True if user is not None and user.manageable and not user.disabled else None
        if action == "change_pin":
            return tab == "admin-users"
        if action == "save_settings":
            return tab == "admin-settings" and self.data["can_settings"]
        if action in ("enroll", "backup", "restore"):
            return tab == "admin-station"
        return True

    def action_back(self) -> None:
        self.app.pop_screen()

    @on(DataTable.RowHighlighted, "#users-table")
    def _user_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.refresh_bindings()

    # -- users ------------------------------------------------------------------------------------

    def _current_user(self) -> Any:
        if self.data is None or not self.data["users"]:
            return None
        table = self.query_one("#users-table", DataTable)
        row = table.cursor_row
        users = self.data["users"]
        return users[row] if 0 <= row < len(users) else None

    @on(Button.Pressed, "#user-add")
    def _add_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_add_user()

    @on(Button.Pressed, "#user-disable")
    def _disable_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_disable_user()

    @on(Button.Pressed, "#user-reset")
    def _reset_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_reset_pin()

    def _run(self, fn, *args: Any) -> None:
        if self._busy:
            return
        self._busy = True
        self.run_worker(partial(self._guarded, fn, *args), group="admin-action", exit_on_error=False)

    async def _guarded(self, fn, *args: Any) -> None:
        try:
            await fn(*args)
        except Exception as exc:  # noqa: BLE001 - shown by the app
            self.app.show_error(exc)  # type: ignore[attr-defined]
        finally:
            self._busy = False

    @on(Button.Pressed, "#user-change-pin")
    def _change_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_change_pin()

    def action_change_pin(self) -> None:
        self._run(self._change_pin)

    async def _change_pin(self) -> None:
        app: Any = self.app
        session = app.session
        fields = [
            Field("old", "原PIN", required=True, max_length=64),
            Field("pin", "新PIN或口令（至少6位数字；口令至少8个字符，含两类字符）", required=True, max_length=64),
            Field("pin2", "再输一次新PIN", required=True, max_length=64),
        ]

        async def submit(values: dict[str, Any]) -> bool:
            await app.db(change_own_pin, session, values)
            return True

        done = await app.push_screen_wait(
            PinFormDialog(f"修改我的PIN：{session.user.login}", fields, on_submit=submit, ok_label="修改")
        )
        if done:
            app.notify("PIN已修改，下次登录请用新PIN", title="用户")
            self.reload()

    def action_add_user(self) -> None:
        if self.data is None or not self.data["roles"]:
            return
        self._run(self._add_user)

    async def _add_user(self) -> None:
        app: Any = self.app
        roles = self.data["roles"] if self.data else []
        fields = [
            Field("login", "登录名（英文字母或数字，如 zhangsan）", required=True, max_length=32),
            Field("name", "姓名", required=True, max_length=30),
            Field(
                "role",
                "角色",
                "choice",
                [(r.label, r.value) for r in roles],
                default=roles[0].value,
                required=True,
            ),
            Field("pin", "PIN（至少6位）或口令", required=True, max_length=64),
            Field("pin2", "再输一次PIN", required=True, max_length=64),
        ]
        session = app.session

        async def submit(values: dict[str, Any]) -> Any:
            return await app.db(add_user, session, values)

        user = await app.push_screen_wait(
            PinFormDialog("添加用户", fields, on_submit=submit, ok_label="添加")
        )
        if user is None:
            return
        app.notify(f"已添加用户 {user.login}（{user.role.label}）", title="用户")
        self.reload()

    def action_disable_user(self) -> None:
        user = self._current_user()
        if user is None or not user.manageable or user.disabled:
            return
        self._run(self._disable_user, user)

    async def _disable_user(self, user: Any) -> None:
        app: Any = self.app
        ok = await app.push_screen_wait(
            ConfirmDialog(
                f"停用用户 {user.login}（{user.name}，{user.role.label}）？\n停用后该用户不能再登录，"
                "已办理的记录保留。停用不能撤销，如需恢复请重新添加用户。",
                title="停用用户",
                yes="停用",
            )
        )
        if not ok:
            return
        try:
            await app.db(disable_user, app.session, user.login)
        except UserError as exc:
            app.show_error(exc)
            return
        app.notify(f"已停用用户 {user.login}", title="用户")
        self.reload()

    def action_reset_pin(self) -> None:
        user = self._current_user()
        if user is None or not user.manageable or user.disabled:
            return
        self._run(self._reset_pin, user)

    async def _reset_pin(self, user: Any) -> None:
        app: Any = self.app
        session = app.session
        fields = [
            Field("pin", "新PIN（至少6位）或口令", required=True, max_length=64),
            Field("pin2", "再输一次新PIN", required=True, max_length=64),
        ]

        async def submit(values: dict[str, Any]) -> bool:
            await app.db(reset_pin, session, user.login, values)
            return True

        done = await app.push_screen_wait(
            PinFormDialog(
                f"重置PIN：{user.login}（{user.name}）",
                fields,
                on_submit=submit,
                ok_label="重置",
                prompt="请当面把新PIN告诉该用户；原PIN立即失效。",
            )
        )
        if done:
            app.notify(f"已重置 {user.login} 的PIN", title="用户")
            self.reload()

    # -- station ----------------------------------------------------------------------------------

    @on(Button.Pressed, "#station-enroll")
    def _enroll_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_enroll()

    def action_enroll(self) -> None:
        self._run(self._enroll)

    async def _enroll(self) -> None:
        from station.ui.screens.enroll import EnrollScreen

        result = await self.app.push_screen_wait(EnrollScreen())
        if result is not None:
            self.reload()

    @on(Button.Pressed, "#station-backup-now")
    def _backup_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_backup()

    @on(Button.Pressed, "#station-restore")
    def _restore_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_restore()

    def action_backup(self) -> None:
        self._run(self._backup)

    async def _backup(self) -> None:
        from station.ui.screens.file_picker import FilePickerScreen

        app: Any = self.app
        folder = await app.push_screen_wait(FilePickerScreen(
            "备份到U盘：选择文件夹", mode="dir",
            prompt="选择U盘上的文件夹。备份文件已加密，只能用本站用户的PIN恢复。"))
        if folder is None:
            return
        result = await app.db(make_backup, app.session, folder)
        app.notify(result.text(), title="备份完成", timeout=10, markup=False)
        app.refresh_home()
        self.reload()

    def action_restore(self) -> None:
        self._run(self._restore)

    async def _restore(self) -> None:
        from station.ui.screens.restore import EXPLAIN, restore_flow

        app: Any = self.app
        if await app.push_screen_wait(ConfirmDialog(EXPLAIN, title="从备份恢复", yes="选择备份文件")):
            await restore_flow(app, login=app.session.user.login)

    # -- settings ---------------------------------------------------------------------------------

    @on(Button.Pressed, "#settings-save")
    def _save_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_save_settings()

    @on(Input.Submitted, "#county-url")
    def _url_entered(self, event: Input.Submitted) -> None:
        event.stop()
        self.query_one("#idle-minutes", Input).focus()

    @on(Input.Submitted, "#idle-minutes")
    def _minutes_entered(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_save_settings()

    def _say(self, key: str, text: str) -> None:
        msg = self.query_one(f"#msg-{key}", Static)
        msg.update(text)
        msg.set_class(bool(text), "-shown")

    def action_save_settings(self) -> None:
        if self.data is None or not self.data["can_settings"]:
            return
        self._run(self._save_settings)

    async def _save_settings(self) -> None:
        app: Any = self.app
        self._say("county_url", "")
        self._say("idle_lock_minutes", "")
        url = self.query_one("#county-url", Input).value
        minutes = self.query_one("#idle-minutes", Input).value
        try:
            if url.strip() and url.strip().rstrip("/") != app.session.config.county_url:
                if not await self._county_answers(url.strip()):
                    return
            cfg = await app.db(save_settings, app.session, url, minutes)
        except UserError as exc:
            if exc.field in ("county_url", "idle_lock_minutes"):
                self._say(exc.field, exc.message)
                self.query_one("#county-url" if exc.field == "county_url" else "#idle-minutes", Input).focus()
            app.show_error(exc)
            return
        self.query_one("#county-url", Input).value = cfg.county_url
        self.query_one("#idle-minutes", Input).value = str(cfg.idle_lock_minutes)
        app.touch()  # the new idle time counts from now
        app.notify("设置已保存", title="设置")
        self.reload()

    async def _county_answers(self, url: str) -> bool:
        """Probe a new county address before saving it; False when it must not (or need not) be saved."""
        import asyncio

        from station.services.admin import probe_county_url

        app: Any = self.app
        self._say("county_url", "正在连接县中心核对地址……")
        code = await app.db(enrolled_county, app.session)
        note = await asyncio.to_thread(probe_county_url, code, url)  # the network, off the session thread
        self._say("county_url", "")
        if not note:
            return True
        return bool(await app.push_screen_wait(ConfirmDialog(
            f"{note}\n可能只是现在没有网络。确认地址无误（按县中心的通知填写）时，仍可保存。",
            title="无法核对县中心地址", yes="仍然保存", no="不保存")))

    # -- audit ------------------------------------------------------------------------------------

    @on(DataTable.RowSelected, "#audit-table")
    def _audit_row(self, event: DataTable.RowSelected) -> None:
        event.stop()
        key = event.row_key.value or ""
        if ":" in key:
            self.app.open_case(key.split(":", 1)[1])  # type: ignore[attr-defined]
