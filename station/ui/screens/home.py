"""Home: who is signed in, the counts that matter for this role, recent cases, the sync state."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Static

from station.ui.widgets.footer import StationFooter
from station.ui.widgets.status import SyncStatus
from station.ui.widgets.tile import CountTile

STYLES = Path(__file__).resolve().parent.parent / "styles"
WEEKDAYS = "一二三四五六日"
# Placeholders until the first load (keys and labels of station.services.dashboard.tile_filters).
TILE_KEYS = [
    ("today", "今日收件"),
    ("supplement", "待补正"),
    ("pending", "待办理"),
    ("due_soon", "两个工作日内到期"),
    ("overdue", "已超期"),
]
CASE_NO_WIDTH = 29  # 330522101001-20260302-01-0001
NAME_WIDTH, STATE_WIDTH = 6, 10
NARROW = 100  # below this many columns dates drop the year
TALL = 30  # from this many rows the role's hints fill the space under the table
HINTS = {
    "agent": [
        "F2 收件登记：查找事项、核对材料，然后受理、一次性告知、不予受理或即办",
        "F3 办件查询：按姓名、身份证号、办件编号、电话或姓名拼音首字母查找",
        "已受理的办件请及时转报乡镇；办结后通知群众领取，并登记好差评",
    ],
    "clerk": [
        "F4 待办：各村转报上来的办件，审核后转报县级、办结或退回",
        "F2 收件：在乡镇窗口直接收件；F3 办件查询",
    ],
    "reviewer": [
        "F4 待办：乡镇转报上来的办件，作出决定（准予或不予批准）、退回，或启动特别程序",
        "F3 办件查询：按姓名、身份证号、办件编号、电话查找",
    ],
    "admin": [
        "F4 待办：转报到县级的办件；F3 办件查询",
        "F10 管理：用户、工作站信息、设置，以及查看完整身份证号的审计记录",
        "F9 同步：与县中心交换数据，查看同步记录",
    ],
}


class RecentTable(DataTable):
    """The recent cases; one click opens a case (a plain DataTable needs a second click)."""

    async def _on_click(self, event) -> None:
        before = self.cursor_coordinate
        await super()._on_click(event)
        row = event.style.meta.get("row", -1)
        if isinstance(row, int) and row >= 0 and self.cursor_coordinate != before:
            self.action_select_cursor()


def load_home(session):
    """On the session thread."""
    from station.services import dashboard

    return dashboard.home(session)


def day_text(d: date) -> str:
    return f"{d.year}年{d.month}月{d.day}日 星期{WEEKDAYS[d.weekday()]}"


class HomeScreen(Screen[None]):
    CSS_PATH = STYLES / "home.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("1", "tile(0)", "今日收件", show=False),
        Binding("2", "tile(1)", "待补正", show=False),
        Binding("3", "tile(2)", "待办理", show=False),
        Binding("4", "tile(3)", "到期提醒", show=False),
        Binding("5", "tile(4)", "已超期", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.home: Any = None  # the last dashboard.Home loaded

    def compose(self) -> ComposeResult:
        app = self.app
        session = app.session  # type: ignore[attr-defined]
        from station import clock

        with Horizontal(id="home-header"):
            yield Static(session.config.name, id="home-station")
            yield Static(f"{session.user.name} · {session.user.role.label}", id="home-user")
            yield Static(day_text(clock.today()), id="home-date")
        with Vertical(id="home-body"):  # takes the free height: the sync line stays at the bottom
            with Horizontal(id="home-tiles"):
                for key, label in TILE_KEYS:
                    yield CountTile(key, label)
            yield Static("最近办件（Enter 打开）", id="home-recent-title")
            yield RecentTable(id="recent", cursor_type="row", zebra_stripes=True)
            yield Static("\n".join("· " + h for h in HINTS.get(session.user.role.value, [])), id="home-hints")
        yield SyncStatus(id="home-sync")
        yield StationFooter()

    def on_mount(self) -> None:
        self.reload()

    def on_screen_resume(self) -> None:
        if self.home is not None:  # back from a case page or a list: something may have changed
            self.reload()

    def reload(self) -> None:
        if self.app.session is None:  # type: ignore[attr-defined]
            return
        self.run_worker(self._load, exclusive=True, group="home", exit_on_error=False)

    async def _load(self) -> None:
        app = self.app
        session = app.session  # type: ignore[attr-defined]
        if session is None:
            return
        try:
            home = await app.db(load_home, session)  # type: ignore[attr-defined]
        except Exception as exc:  # noqa: BLE001 - UserError shown as such, the rest logged
            app.show_error(exc)  # type: ignore[attr-defined]
            return
        self.home = home
        self._show(home)

    def _show(self, home: Any) -> None:
        for tile in home.tiles:
            self.query_one(f"#tile-{tile.key}", CountTile).set(tile.label, tile.count, tile.open_args())
        self.query_one("#home-date", Static).update(day_text(home.today))
        self.query_one(SyncStatus).show(home.sync)
        self._fill_table()

    def _fill_table(self) -> None:
        table = self.query_one("#recent", DataTable)
        home = self.home
        if home is None:
            return
        cursor = table.cursor_row
        table.clear(columns=True)
        width = (self.size.width or 80) - 2  # the table's margin
        narrow = width < NARROW
        due_width = 9 if narrow else 15  # "06-15预计" / "2026-06-15 预计"
        item_width = max(8, width - (CASE_NO_WIDTH + NAME_WIDTH + STATE_WIDTH + due_width) - 2 * 5 - 2)
        table.add_column("办件编号", width=CASE_NO_WIDTH, key="case_no")
        table.add_column("事项", width=item_width, key="item")
        table.add_column("申请人", width=NAME_WIDTH, key="name")
        table.add_column("状态", width=STATE_WIDTH, key="state")
        table.add_column("到期", width=due_width, key="due")
        today = home.today.isoformat()
        for row in home.recent:
            if row.due_date:
                late = row.due_date < today and row.state.is_open
                text = (row.due_date[5:] if narrow else row.due_date) + (
                    ("预计" if narrow else " 预计") if row.due_estimated else ""
                )
                due = Text(text, style="bold red" if late else "")
            else:
                due = Text("—", style="dim")
            table.add_row(
                row.case_no, row.item_name, row.applicant_name, row.state.label, due, key=row.case_id
            )
        if home.recent:
            table.move_cursor(row=min(cursor, len(home.recent) - 1))
        else:
            table.add_row("暂无办件", "", "", "", "")

    def on_resize(self) -> None:
        self.query_one("#home-hints").display = self.size.height >= TALL
        self._fill_table()

    # -- opening -------------------------------------------------------------------------------

    @on(CountTile.Opened)
    def _tile_opened(self, event: CountTile.Opened) -> None:
        event.stop()
        self.app.open_cases(**event.tile.open_args)  # type: ignore[attr-defined]

    def action_tile(self, index: int) -> None:
        tiles = list(self.query(CountTile))
        if 0 <= index < len(tiles):
            tiles[index].focus()
            tiles[index].action_open()

    @on(DataTable.RowSelected, "#recent")
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        key = event.row_key.value
        if self.home is not None and key in {r.case_id for r in self.home.recent}:
            self.app.open_case(key)  # type: ignore[attr-defined]
