"""The footer of every screen: Textual's Footer, redrawn only when the keys it shows change.

Narrower than ``COMPACT_BELOW`` columns it uses Textual's compact style, so the global keys and
the screen's own still fit in 80 columns.

Textual's Footer rebuilds all its key widgets whenever a screen calls ``refresh_bindings()``
(after every list load, every focus change); on the case list that was ~40% of the event
loop's time while typing a search. Same keys, same footer: nothing to rebuild.
"""

from __future__ import annotations

from typing import Any

from textual import events
from textual.screen import Screen
from textual.widgets import Footer


def shown_bindings(screen: Screen) -> tuple[Any, ...]:
    return tuple(
        (b.key, b.description, b.key_display, b.action, enabled, tooltip)
        for (_, b, enabled, tooltip) in screen.active_bindings.values()
        if b.show
    )


COMPACT_BELOW = 110


class StationFooter(Footer):
    _shown: tuple[Any, ...] | None = None

    def on_resize(self, event: events.Resize) -> None:
        self.compact = event.size.width < COMPACT_BELOW

    def bindings_changed(self, screen: Screen) -> None:
        live = self.is_attached and screen is self.screen and screen.app.app_focus
        if live and self._bindings_ready and self._shown == shown_bindings(screen):
            return
        super().bindings_changed(screen)
        self._shown = shown_bindings(screen) if live else None
