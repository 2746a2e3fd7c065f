"""F1: the keys of the current screen and the global ones."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Static

NAMES = {
    "enter": "Enter",
    "escape": "Esc",
    "tab": "Tab",
    "space": "空格",
    "shift+tab": "Shift+Tab",
    "up": "↑",
    "down": "↓",
    "left": "←",
    "right": "→",
    "pageup": "PgUp",
    "pagedown": "PgDn",
    "home": "Home",
    "end": "End",
    "delete": "Del",
    "backspace": "退格",
}
# Textual's own bindings describe themselves in English.
TRANSLATED = {"Focus Next": "下一项", "Focus Previous": "上一项", "Copy selected text": "复制选中的文字"}


def key_name(binding: Binding) -> str:
    if binding.key_display:
        return binding.key_display
    key = binding.key
    if key in NAMES:
        return NAMES[key]
    if key.startswith("ctrl+"):
        return "Ctrl+" + key[5:].upper()
    return key.upper() if key.startswith("f") and key[1:].isdigit() else key


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss", "关闭"),
        Binding("f1", "dismiss", "关闭"),
    ]

    def __init__(self, under: Screen) -> None:
        super().__init__()
        self._under = under

    def compose(self) -> ComposeResult:
        with Vertical(id="help-box"):
            yield Static("按键说明（Esc 关闭）", id="help-title")
            yield DataTable(id="help-keys", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("按键", "功能", "适用")
        for where, binding in self._bindings_below():
            table.add_row(key_name(binding), TRANSLATED.get(binding.description, binding.description), where)
        table.focus()

    def _bindings_below(self) -> list[tuple[str, Binding]]:
        """The keys of the screen below (focused widget first), then the app's global ones."""
        this_screen, everywhere = [], []
        for active in self._under.active_bindings.values():
            b = active.binding
            description = TRANSLATED.get(b.description, b.description)
            if not active.enabled or not description or b.system or b.key.startswith("super+"):
                continue
            if not any("\u4e00" <= c <= "\u9fff" for c in description):
                continue  # an untranslated Textual binding
            if active.node is self.app:
                everywhere.append(("全局", b))
            else:
                this_screen.append(("本页", b))
        return this_screen + everywhere
