"""A count on the home screen that opens the list it counts (Enter or click)."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widget import Widget

# Labels too wide for a narrow tile get their short form.
SHORT = {"两个工作日内到期": "两日内到期"}


class CountTile(Widget, can_focus=True):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("enter", "open", "打开")]

    class Opened(Message):
        def __init__(self, tile: CountTile) -> None:
            super().__init__()
            self.tile = tile

        @property
        def control(self) -> CountTile:
            return self.tile

    def __init__(self, key: str, label: str, **kwargs: Any) -> None:
        super().__init__(id=f"tile-{key}", classes="tile", **kwargs)
        self.key = key
        self.label = label
        self.count: int | None = None
        self.open_args: dict[str, Any] = {}

    def set(self, label: str, count: int, open_args: dict[str, Any]) -> None:
        self.label, self.count, self.open_args = label, count, open_args
        self.set_class(count > 0, "nonzero")
        self.refresh()

    def render(self) -> Text:
        label = self.label
        width = self.content_size.width
        if width and Text(label).cell_len > width:
            label = SHORT.get(label, label)
        count = "…" if self.count is None else str(self.count)
        return Text.assemble((count, "bold"), "\n", label, justify="center")

    def action_open(self) -> None:
        if self.count is not None:
            self.post_message(self.Opened(self))

    def on_click(self) -> None:
        self.focus()
        self.action_open()
