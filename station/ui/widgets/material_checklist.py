"""The materials of an item, each ticked as 已收 / 缺 / 容缺 (容缺 only where the catalog allows it).

Space, Enter or a click cycles the highlighted material; 1/2/3 set 已收/缺/容缺; A marks all
received. The widget only records what the agent ticked; whether that allows 受理 is decided
by the services (``station.services.intake.preview``).
"""

from __future__ import annotations

from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable

from schema.case import MaterialStatus
from schema.catalog import Item

STYLES = {
    MaterialStatus.RECEIVED: "bold green",
    MaterialStatus.MISSING: "bold red",
    MaterialStatus.RONGQUE: "bold yellow",
}


def status_cell(status: MaterialStatus) -> Text:
    return Text(f"[{status.label}]", style=STYLES[status])


class MaterialChecklist(DataTable):
    BINDINGS = [
        Binding("space", "cycle", "切换"),
        Binding("1", "set('received')", "已收", show=False),
        Binding("2", "set('missing')", "缺", show=False),
        Binding("3", "set('rongque')", "容缺", show=False),
        Binding("a", "all_received", "全部已收"),
    ]

    class Changed(Message):
        def __init__(self, checklist: MaterialChecklist) -> None:
            super().__init__()
            self.checklist = checklist

        @property
        def control(self) -> MaterialChecklist:
            return self.checklist

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("cursor_type", "row")
        kwargs.setdefault("zebra_stripes", False)
        super().__init__(**kwargs)
        self.statuses: dict[str, MaterialStatus] = {}
        self.rongque_ok: set[str] = set()

    def on_mount(self) -> None:
        self.add_column("状态", key="status", width=6)
        self.add_column("材料", key="name")
        self.add_column("要求", key="flags")

    def load(self, item: Item | None) -> None:
        """Show ``item``'s materials, all 缺 (nothing is received until ticked)."""
        self.clear()
        self.statuses = {}
        self.rongque_ok = set()
        if item is None:
            self.post_message(self.Changed(self))
            return
        for m in item.materials:
            self.statuses[m.name] = MaterialStatus.MISSING
            if m.rongque:
                self.rongque_ok.add(m.name)
            flags = ("必需" if m.required else "可选") + ("，可容缺" if m.rongque else "")
            flags += f"，{m.form.label}{m.count}份"
            self.add_row(
                status_cell(MaterialStatus.MISSING), Text(m.name), Text(flags, style="dim"), key=m.name
            )
        self.post_message(self.Changed(self))

    def values(self) -> dict[str, str]:
        return {name: status.value for name, status in self.statuses.items()}

    # -- changing ----------------------------------------------------------------------------------

    def set_status(self, name: str, status: MaterialStatus) -> None:
        if status is MaterialStatus.RONGQUE and name not in self.rongque_ok:
            self.app.notify(f"“{name}”不允许容缺受理", severity="warning", markup=False)
            return
        if self.statuses.get(name) is status:
            return
        self.statuses[name] = status
        self.update_cell(name, "status", status_cell(status))
        self.post_message(self.Changed(self))

    def _current(self) -> str | None:
        if not self.statuses or self.cursor_row < 0:
            return None
        row_key, _ = self.coordinate_to_cell_key(self.cursor_coordinate)
        return row_key.value

    def action_cycle(self) -> None:
        name = self._current()
        if name is None:
            return
        order = [MaterialStatus.RECEIVED, MaterialStatus.MISSING]
        if name in self.rongque_ok:
            order.append(MaterialStatus.RONGQUE)
        now = self.statuses[name]
        self.set_status(name, order[(order.index(now) + 1) % len(order)] if now in order else order[0])

    def action_set(self, status: str) -> None:
        name = self._current()
        if name is not None:
            self.set_status(name, MaterialStatus(status))

    def action_all_received(self) -> None:
        for name in self.statuses:
            self.set_status(name, MaterialStatus.RECEIVED)

    async def _on_click(self, event) -> None:
        # One click on any material cycles it (DataTable alone needs a second click to select).
        before = self.cursor_coordinate
        await super()._on_click(event)
        row = event.style.meta.get("row", -1)
        if isinstance(row, int) and row >= 0 and self.cursor_coordinate != before:
            self.action_select_cursor()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        # Enter or a click on a material cycles it, like Space.
        event.stop()
        self.action_cycle()
