"""First run: set up this PC as a station and create its first user.

The wizard is a list of pages shown one at a time. The first page offers the ways to set up a
station, one button each (``SETUP_MODES``); each way is a list of page ids (``FLOWS``). The
offline set-up creates the station and stops there; the enrolling modes (online code, or
request/response files on USB) create it the same way, then open the enrollment screen over home.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Button, ContentSwitcher, Input, Label, Select, Static

from schema.authority import roles_at
from schema.errors import UserError, ValidationError
from schema.org import Level, OrgCode, Role
from station.ui.widgets.footer import StationFooter

STYLES = Path(__file__).resolve().parent.parent / "styles"

# (mode id, button text, explanation). Enrollment with the county is added by the sync work.
SETUP_MODES = [
    ("offline", "离线初始化", "不连接县中心，直接在本机建立工作站并创建第一个用户。以后可以再向县中心登记。"),
    (
        "online",
        "在线登记",
        "建立工作站和第一个用户后，填写县中心地址和县中心管理员给的登记码，在线登记到县中心。",
    ),
    (
        "usb",
        "U盘登记",
        "建立工作站和第一个用户后，把登记申请文件写到U盘交给县中心管理员，再读入带回的答复文件。",
    ),
    ("restore", "从备份恢复", "换了新电脑或数据损坏时：用U盘上的备份文件恢复工作站（需要备份中某个用户的PIN）。"),
]
FLOWS = {
    "offline": ["page-station", "page-user"],
    "online": ["page-station", "page-user"],
    "usb": ["page-station", "page-user"],
}
# Set-up modes that go on to enroll with the county (station/ui/screens/enroll.py) once the
# station and its first user exist: mode → the enrollment screen's tab.
ENROLL_MODES = {"online": "online", "usb": "offline"}

# Which page and input show the error of a field named by a ValidationError.
FIELDS = {
    "org": ("page-station", "#org"),
    "station_name": ("page-station", "#station-name"),
    "station_no": ("page-station", "#station-no"),
    "login": ("page-user", "#login"),
    "user_name": ("page-user", "#user-name"),
    "role": ("page-user", "#role"),
    "pin": ("page-user", "#pin"),
    "pin2": ("page-user", "#pin2"),
}
DEFAULT_ROLE = {Level.VILLAGE: Role.AGENT, Level.TOWNSHIP: Role.CLERK, Level.COUNTY: Role.ADMIN}


def roles_for(org: str) -> list[Role]:
    """Roles that may work at a station of ``org`` (schema.authority)."""
    return list(roles_at(OrgCode(org).level))


def set_up_offline(root: Path, **kwargs: Any):
    """On the session thread: create the station and its first user; returns the open session."""
    from station.session import init_station

    return init_station(root, **kwargs)


def check_station(org: str, name: str, station_no: str) -> int:
    """Validate the station page; returns the station number. Raises ValidationError naming the field."""
    from station.config import StationConfig

    try:
        OrgCode(org)
    except ValidationError as exc:
        raise ValidationError(exc.message, field="org") from None
    if not station_no.strip().isdigit():
        raise ValidationError("工作站编号应为1到99的数字", field="station_no")
    no = int(station_no)
    try:
        StationConfig(station_id="-", org=org, name=name.strip(), station_no=no)
    except ValidationError as exc:
        field = {"name": "station_name"}.get(exc.field or "", exc.field)
        raise ValidationError(exc.message, field=field) from None
    return no


class Field(Vertical):
    """A label, an input and the line under it where its error appears."""

    def __init__(self, label: str, widget: Widget, hint: str = "") -> None:
        super().__init__(classes="field")
        self._label, self._widget, self._hint = label, widget, hint

    def compose(self) -> ComposeResult:
        with Horizontal(classes="field-row"):
            yield Label(self._label, classes="field-label")
            yield self._widget
        yield Static(self._hint, classes="field-message")

    def say(self, text: str, *, error: bool) -> None:
        msg = self.query_one(".field-message", Static)
        msg.update(text)
        msg.set_class(error, "error")


class FirstRunScreen(Screen[None]):
    CSS_PATH = STYLES / "first_run.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "上一步"),
        Binding("ctrl+q", "app.quit", "退出", priority=True),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.mode: str | None = None
        self.page = "page-mode"
        self._busy = False

    def compose(self) -> ComposeResult:
        yield Static("首次使用：设置本工作站", id="wizard-title")
        yield Static("", id="wizard-step")
        with ContentSwitcher(initial="page-mode", id="wizard"):
            with VerticalScroll(id="page-mode", classes="page"):
                yield Static("本电脑还没有工作站数据。请选择设置方式：", classes="page-intro")
                for mode, text, explain in SETUP_MODES:
                    with Horizontal(classes="mode-row"):
                        yield Button(text, id=f"mode-{mode}", variant="primary", classes="mode-button")
                        yield Static(explain, classes="mode-explain")
            with VerticalScroll(id="page-station", classes="page"):
                yield Static("填写本工作站所在单位", classes="page-intro")
                yield Field(
                    "区划代码",
                    Input(
                        placeholder="12位统计用区划代码",
                        max_length=12,
                        select_on_focus=False,
                        restrict=r"[0-9]*",
                        id="org",
                    ),
                    "如 330522101001（村）、330522101000（乡镇）",
                )
                yield Field(
                    "工作站名称",
                    Input(
                        placeholder="如：城关镇东村便民服务室",
                        max_length=60,
                        select_on_focus=False,
                        id="station-name",
                    ),
                )
                yield Field(
                    "工作站编号",
                    Input(
                        value="1", max_length=2, select_on_focus=False, restrict=r"[0-9]*", id="station-no"
                    ),
                    "同一单位有多台电脑时用1–99区分",
                )
            with VerticalScroll(id="page-user", classes="page"):
                yield Static("创建第一个用户（以后可在管理中添加其他用户）", classes="page-intro")
                yield Field(
                    "登录名",
                    Input(
                        placeholder="英文字母或数字，如 zhangsan",
                        max_length=32,
                        select_on_focus=False,
                        id="login",
                    ),
                )
                yield Field(
                    "姓名",
                    Input(placeholder="如：张三", max_length=30, select_on_focus=False, id="user-name"),
                )
                yield Field("角色", Select([], allow_blank=True, prompt="先填写区划代码", id="role"))
                yield Field("PIN", Input(password=True, placeholder="至少6位", max_length=32, id="pin"))
                yield Field(
                    "再输一次", Input(password=True, placeholder="再输入一次PIN", max_length=32, id="pin2")
                )
        with Horizontal(id="wizard-buttons"):
            yield Button("上一步", id="wizard-back")
            yield Button("下一步", id="wizard-next", variant="primary")
        yield StationFooter()

    def on_mount(self) -> None:
        self._show("page-mode")
        first = self.query(".mode-button").first(Button)
        first.focus()

    # -- navigation --------------------------------------------------------------------

    def _pages(self) -> list[str]:
        return ["page-mode", *FLOWS.get(self.mode or "", [])]

    def _show(self, page: str) -> None:
        self.page = page
        self.query_one("#wizard", ContentSwitcher).current = page
        pages = self._pages()
        on_mode = page == "page-mode"
        self.query_one("#wizard-buttons").display = not on_mode
        step = pages.index(page) + 1 if page in pages else 1
        total = len(pages) if self.mode else 1 + max(len(f) for f in FLOWS.values())
        names = {"page-mode": "设置方式", "page-station": "工作站信息", "page-user": "第一个用户"}
        self.query_one("#wizard-step", Static).update(f"第{step}步（共{total}步）：{names.get(page, '')}")
        last = not on_mode and page == pages[-1]
        self.query_one("#wizard-next", Button).label = "完成" if last else "下一步"
        if page == "page-station":
            self.query_one("#org", Input).focus()
        elif page == "page-user":
            self._offer_roles()
            self.query_one("#login", Input).focus()
        self.refresh_bindings()

    @on(Button.Pressed, ".mode-button")
    def _choose_mode(self, event: Button.Pressed) -> None:
        event.stop()
        mode = (event.button.id or "").removeprefix("mode-")
        if mode == "restore":
            from station.ui.screens.restore import restore_flow

            self.run_worker(restore_flow(self.app), group="first-run", exclusive=True, exit_on_error=False)
            return
        self.mode = mode
        self._show(FLOWS[self.mode][0])

    @on(Button.Pressed, "#wizard-back")
    def _back_button(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_back()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "back" and self.page == "page-mode":
            return False
        return True

    def action_back(self) -> None:
        if self._busy or self.page == "page-mode":
            return
        pages = self._pages()
        self._show(pages[pages.index(self.page) - 1])

    @on(Button.Pressed, "#wizard-next")
    def _next_button(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_next()

    @on(Input.Submitted)
    def _enter(self, event: Input.Submitted) -> None:
        # Enter moves to the next field of the page, and on the last one goes on.
        event.stop()
        inputs = [w for w in self.query_one(f"#{self.page}").query("Input, Select") if w.focusable]
        if event.input in inputs and event.input is not inputs[-1]:
            inputs[inputs.index(event.input) + 1].focus()
        else:
            self.action_next()

    def action_next(self) -> None:
        if self._busy or self.page == "page-mode":
            return
        self._clear_messages()
        try:
            if self.page == "page-station":
                self._station_values()
                self._show("page-user")
            elif self.page == "page-user":
                self._finish()
        except ValidationError as exc:
            self._field_error(exc)

    # -- fields ------------------------------------------------------------------------

    def _value(self, selector: str) -> str:
        return self.query_one(selector, Input).value

    def _station_values(self) -> dict[str, Any]:
        org, name = self._value("#org").strip(), self._value("#station-name").strip()
        no = check_station(org, name, self._value("#station-no"))
        return {"org": org, "name": name, "station_no": no}

    @on(Input.Changed, "#org")
    def _org_changed(self, event: Input.Changed) -> None:
        field = self._field("#org")
        code = event.value
        if len(code) < 12:
            field.say("如 330522101001（村）、330522101000（乡镇）", error=False)
            return
        try:
            level = OrgCode(code).level
        except ValidationError as exc:
            field.say(exc.message, error=True)
            return
        field.say(f"{level.label}单位", error=False)

    def _offer_roles(self) -> None:
        select = self.query_one("#role", Select)
        try:
            org = self._value("#org").strip()
            roles = roles_for(org)
            level = OrgCode(org).level
        except ValidationError:
            return
        current = select.value
        select.set_options([(r.label, r.value) for r in roles])
        values = [r.value for r in roles]
        select.value = current if current in values else DEFAULT_ROLE[level].value

    def _field(self, selector: str) -> Field:
        widget = self.query_one(selector)
        parent = widget.parent
        while parent is not None and not isinstance(parent, Field):
            parent = parent.parent
        assert isinstance(parent, Field)
        return parent

    def _clear_messages(self) -> None:
        for field in self.query(Field):
            if field.query_one(".field-message", Static).has_class("error"):
                field.say("", error=False)

    def _field_error(self, exc: UserError) -> None:
        where = FIELDS.get(exc.field or "")
        if where is None:
            self.app.show_error(exc)  # type: ignore[attr-defined]
            return
        page, selector = where
        if page != self.page:
            self._show(page)
        self._field(selector).say(exc.message, error=True)
        self.query_one(selector).focus()

    # -- finishing ------------------------------------------------------------------------

    def _user_values(self) -> dict[str, Any]:
        from schema.validation import check_person_name
        from station.store.keyslots import validate_pin

        login = self._value("#login").strip()
        if not login:
            raise ValidationError("请填写登录名", field="login")
        user_name = check_person_name(self._value("#user-name"), label="姓名", field="user_name")
        role = self.query_one("#role", Select).value
        if role is Select.NULL:
            raise ValidationError("请选择角色", field="role")
        pin = self._value("#pin")
        validate_pin(pin)
        if self._value("#pin2") != pin:
            raise ValidationError("两次输入的PIN不一致", field="pin2")
        return {"login": login, "user_name": user_name, "role": Role(role), "pin": pin}

    def _finish(self) -> None:
        station = self._station_values()
        user = self._user_values()
        self._busy = True
        self.query_one("#wizard-next", Button).disabled = True
        self.query_one("#wizard-step", Static).update("正在建立工作站……")
        self.run_worker(
            self._create({**station, **user}), exclusive=True, group="first-run", exit_on_error=False
        )

    async def _create(self, values: dict[str, Any]) -> None:
        app = self.app
        try:
            session = await app.db(set_up_offline, app.data.root, **values)  # type: ignore[attr-defined]
        except UserError as exc:
            self._busy = False
            self.query_one("#wizard-next", Button).disabled = False
            self._show(self.page)
            self._field_error(exc)
        except Exception as exc:  # noqa: BLE001 - logged without personal data
            self._busy = False
            self.query_one("#wizard-next", Button).disabled = False
            self._show(self.page)
            app.show_error(exc)  # type: ignore[attr-defined]
        else:
            app.notify(f"工作站“{session.config.name}”已建立", title="完成")
            app.signed_in(session)  # type: ignore[attr-defined]
            if self.mode in ENROLL_MODES:
                from station.ui.screens.enroll import EnrollScreen

                app.push_screen(
                    EnrollScreen(ENROLL_MODES[self.mode], intro="工作站已建立，现在登记到县中心。")
                )
