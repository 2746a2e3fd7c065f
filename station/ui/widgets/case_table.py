"""A table of cases (``queries.CaseRow``): the case list, the inbox and search results.

ID numbers arrive masked (``CaseRow.id_masked``); the 到期 column marks 预计 dates and
highlights overdue cases. Rows are keyed by case id. One click or Enter opens a case
(``CaseTable.Open``); reaching the last row, or PageDown on it, asks for the next page
(``CaseTable.More``) when the screen says there is one.

Each row is laid out as ONE cell of fixed-width columns: DataTable renders every cell
through Rich on every change, and eight cells a row made a search keystroke on a full
screen cost ~8× as much to draw (the list must redraw within 100 ms of a keypress).
"""

from __future__ import annotations

from collections.abc import Iterable

from rich.cells import cell_len
from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable

from station.services.case_detail import due_info
from station.services.queries import CaseRow

# (title, width in terminal cells); 事项 takes what is left (ITEM_MIN..ITEM_MAX).
# Who, in which state and due when come first: at 80 columns they are what fits.
COLUMNS = (
    ("办件编号", 29),
    ("申请人", 8),
    ("状态", 12),
    ("到期", 15),
    ("事项", 0),
    ("身份证", 18),
    ("受理日期", 10),
    ("冲突", 4),
)
GAP = 1  # the columns are padded to fixed widths: one space between them reads clearly
ITEM_MIN, ITEM_MAX = 10, 40
FIXED_WIDTH = sum(w for _, w in COLUMNS) + GAP * (len(COLUMNS) - 1) + 2 + 2  # cell padding, scrollbar


def clip(text: str, width: int) -> str:
    """``text`` cut to ``width`` terminal cells, with … when cut (CJK characters take two cells)."""
    if cell_len(text) <= width:
        return text
    out, used = [], 0
    for c in text:
        w = cell_len(c)
        if used + w > width - 1:
            break
        out.append(c)
        used += w
    return "".join(out) + "…"


def _pad(text: Text, width: int) -> Text:
    """``text`` clipped or padded to exactly ``width`` cells."""
    n = cell_len(text.plain)
    if n > width:
        clipped = Text(clip(text.plain, width), style=text.style)
        if text.spans:  # keep the first span's style (cells are styled as a whole)
            clipped.stylize(text.spans[0].style)
        text, n = clipped, cell_len(clipped.plain)  # a wide character may leave one cell over
    if n < width:
        text = text.copy()
        text.append(" " * (width - n))
    return text


def due_cell(row: CaseRow) -> Text:
    if row.due_date is None:
        return Text("")
    info = due_info(row.state, row.due_date, row.due_estimated)
    text = Text(row.due_date, style="" if row.state.is_open else "dim")  # closed: for the record only
    if row.due_estimated:
        text.append(" 预计", style="italic")
    if info.overdue:
        text.stylize("bold red")
        text.append(" 超期", style="bold red")
    return text


def header_text(item_width: int) -> Text:
    t = Text(style="bold")
    for i, (title, width) in enumerate(COLUMNS):
        if i:
            t.append(" " * GAP)
        t.append_text(_pad(Text(title), width or item_width))
    return t


def row_text(r: CaseRow, item_width: int) -> Text:
    state = Text(r.state.label, style="bold" if r.state.is_open else "dim")
    if r.conflicts:
        state.append(" ⚠", style="bold red")
    conflicts = Text(f"⚠{r.conflicts}", style="bold red") if r.conflicts else Text("")
    cells = [
        Text(r.case_no),
        Text(r.applicant_name),
        state,
        due_cell(r),
        Text(r.item_name),
        Text(r.id_masked),
        Text((r.accepted_at or "—")[:10], style="" if r.accepted_at else "dim"),
        conflicts,
    ]
    t = Text()
    for i, (cell, (_, width)) in enumerate(zip(cells, COLUMNS, strict=True)):
        if i:
            t.append(" " * GAP)
        t.append_text(_pad(cell, width or item_width))
    return t


class CaseTable(DataTable):
    BINDINGS = [Binding("end", "last_row", "最后一行", show=False)]

    class Open(Message):
        def __init__(self, case_id: str) -> None:
            super().__init__()
            self.case_id = case_id

    class More(Message):
        """The user reached the end of the loaded rows."""

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("cursor_type", "row")
        kwargs.setdefault("zebra_stripes", True)
        super().__init__(**kwargs)
        self.has_more = False
        self.item_width = ITEM_MIN
        self.case_rows: dict[str, CaseRow] = {}

    def on_mount(self) -> None:
        self._add_columns()

    def _item_width(self) -> int:
        width = self.size.width or self.app.size.width
        return max(ITEM_MIN, min(ITEM_MAX, width - FIXED_WIDTH))

    def _add_columns(self) -> None:
        self.item_width = self._item_width()
        self.add_column(header_text(self.item_width), key="row")

    def on_resize(self) -> None:
        # A wider terminal gives the 事项 column the room (rows are laid out again).
        if self._item_width() == self.item_width:
            return
        cursor, rows = self.cursor_row, list(self.case_rows.values())
        self.clear(columns=True)
        self.case_rows = {}
        self._add_columns()
        for r in rows:
            self._add(r)
        if rows:
            self.move_cursor(row=min(max(cursor, 0), len(rows) - 1), animate=False)

    def show(self, rows: Iterable[CaseRow], *, append: bool = False, has_more: bool = False) -> int:
        """Replace (or extend) the rows; keeps the cursor on the same case when it is still there."""
        current = self.current_case_id()
        if not append:
            self.clear()
            self.case_rows = {}
        added = 0
        for r in rows:
            if r.case_id in self.case_rows:
                continue
            self._add(r)
            added += 1
        self.has_more = has_more
        if current is not None and current in self.case_rows and not append:
            self.move_cursor(row=self.get_row_index(current), animate=False)
        return added

    def _add(self, r: CaseRow) -> None:
        self.case_rows[r.case_id] = r
        self.add_row(row_text(r, self.item_width), key=r.case_id)

    def case_ids(self) -> list[str]:
        """The case ids in the order shown."""
        return [self.coordinate_to_cell_key((i, 0))[0].value for i in range(self.row_count)]  # type: ignore[misc]

    def current_case_id(self) -> str | None:
        if self.row_count == 0 or self.cursor_row < 0:
            return None
        row_key, _ = self.coordinate_to_cell_key(self.cursor_coordinate)
        return row_key.value

    # -- opening and paging -------------------------------------------------------------------------

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if event.row_key.value is not None:
            self.post_message(self.Open(event.row_key.value))

    async def _on_click(self, event) -> None:
        # One click opens a case (DataTable alone needs a second click on a highlighted row).
        before = self.cursor_coordinate
        await super()._on_click(event)
        row = event.style.meta.get("row", -1)
        if isinstance(row, int) and row >= 0 and self.cursor_coordinate != before:
            self.action_select_cursor()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if self.has_more and event.cursor_row >= self.row_count - 1:
            self.has_more = False  # until the screen has loaded the next page
            self.post_message(self.More())

    def action_last_row(self) -> None:
        if self.row_count:
            self.move_cursor(row=self.row_count - 1)

    def action_page_down(self) -> None:
        if self.has_more and self.cursor_row >= self.row_count - 1:
            self.has_more = False
            self.post_message(self.More())
            return
        super().action_page_down()
