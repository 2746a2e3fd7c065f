"""A progress bar by sync stage: "上传本站记录 120/300" next to a bar for that stage."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import ProgressBar, Static

DONE = "完成"


def stage_text(stage: str, done: int, total: int | None) -> str:
    if stage == DONE:
        return DONE
    if total is None:
        return f"{stage}……" if not done else f"{stage} {done}"
    return f"{stage} {done}/{total}"


class SyncProgress(Horizontal):
    """Idle: a hint and an empty bar. During a sync: the stage, its count and its share done."""

    def __init__(self, idle: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._idle = idle
        self.stage = ""  # the last stage shown ("" when idle)

    def compose(self) -> ComposeResult:
        yield Static(self._idle, classes="sync-stage", markup=False)
        # No ETA: a sync's stages have very different speeds, and a snapshot must not show a clock.
        yield ProgressBar(total=1, show_eta=False, classes="sync-bar")

    @property
    def label(self) -> str:
        return str(self.query_one(".sync-stage", Static).render())

    @property
    def bar(self) -> ProgressBar:
        return self.query_one(ProgressBar)

    def idle(self, text: str) -> None:
        self.stage = ""
        self.query_one(".sync-stage", Static).update(text)
        self.bar.update(total=1, progress=0)
        self.remove_class("running")

    def show(self, stage: str, done: int, total: int | None) -> None:
        self.stage = stage
        self.query_one(".sync-stage", Static).update(stage_text(stage, done, total))
        if stage == DONE:
            self.bar.update(total=1, progress=1)
            self.remove_class("running")
            return
        self.add_class("running")
        if total is None:
            self.bar.update(total=None, progress=done)  # indeterminate: Textual animates it
        else:
            self.bar.update(total=max(total, 1), progress=min(done, max(total, 1)))
