"""The sync status line: 在线/离线, last sync, events waiting to be uploaded."""

from __future__ import annotations

from typing import Any

from textual.widgets import Static


def sync_text(summary: Any) -> str:
    """One line from a ``station.services.dashboard.SyncSummary``."""
    state = "● 在线" if summary.online else "○ 离线"  # None: never reached the county, so offline
    last = summary.last_sync.replace("T", " ")[:16] if summary.last_sync else "从未同步"
    parts = [state, f"上次同步：{last}", f"待上传 {summary.pending} 条"]
    if summary.message:
        parts.append(summary.message)
    return " │ ".join(parts)  # narrow separators: the whole line fits in 80 columns


class SyncStatus(Static):
    """Always visible at the bottom of the home screen (above the footer)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("同步状态：读取中……", **kwargs)

    def show(self, summary: Any) -> None:
        self.update(sync_text(summary))
        self.set_class(summary.online is True, "online")
        self.set_class(summary.pending > 0, "pending")
