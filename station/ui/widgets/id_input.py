"""An Input for a 居民身份证号 that shows the number masked whenever it does not have focus.

The value itself is never changed (nothing typed is lost): only what is drawn is masked, with
the same number of characters, so the cursor and selection stay where they were.
"""

from __future__ import annotations

from rich.text import Text
from textual import events
from textual.widgets import Input

from schema.validation import mask_id_number


class IdNumberInput(Input):
    def __init__(self, value: str | None = None, **kwargs) -> None:
        kwargs.setdefault("max_length", 20)  # 18 characters plus a stray space or two
        kwargs.setdefault("placeholder", "18位身份证号")
        super().__init__(value, **kwargs)

    @property
    def _value(self) -> Text:
        # Input draws its value through this property (textual 8.2.8, pinned): masked off-focus.
        if not self.has_focus and self.value:
            masked = mask_id_number(self.value)
            if len(masked) != len(self.value):  # spaces typed in the middle: keep positions
                masked = "*" * len(self.value)
            return Text(masked, no_wrap=True, overflow="ignore", end="")
        return super()._value

    def _on_blur(self, event: events.Blur) -> None:
        super()._on_blur(event)
        self.refresh()

    def _on_focus(self, event: events.Focus) -> None:
        super()._on_focus(event)
        self.refresh()
