"""The station's log file: rotating, never personal data, never a traceback on the user's screen.

What is logged (so a county technician can diagnose a station from its log alone): every sync
— its outcome, counts, bytes and clock offset —, each refusal by the county with its code and
the seq range, relay decisions per village station, USB export/import counts, backups and
restores, and unexpected errors as exception types and code positions. What is never logged:
names, ID numbers, phone numbers, case contents, PINs, keys — only counts, codes, station ids
and case numbers' shapes. ``tests/station/test_privacy.py`` checks the file after real work.

The file rotates at 1 MiB and keeps 5 old files. The UI and a CLI command may write at the same
time; on Windows a rename of a file another process holds open fails, so a failed rotation is
skipped (the file grows a little longer) instead of printing a traceback.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
from pathlib import Path

from station.config import DataDir

MAX_BYTES = 1024 * 1024
BACKUPS = 5
FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


class _Handler(logging.handlers.RotatingFileHandler):
    def doRollover(self) -> None:  # noqa: N802 - logging's name
        try:
            super().doRollover()
        except OSError:
            if self.stream is None:
                self.stream = self._open()

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802
        pass  # a full disk or a lost USB drive must not put a traceback on the screen


def release(root: Path) -> bool:
    """Close this process's log files inside ``root`` (Windows cannot rename a folder holding an open file)."""
    inside = str(root.resolve())
    released = False
    logger = logging.getLogger()
    for h in list(logger.handlers):
        name = getattr(h, "baseFilename", None)
        if name and (name == inside or name.startswith(inside + os.sep)):
            logger.removeHandler(h)
            h.close()
            released = True
    return released


def setup(data: DataDir) -> Path | None:
    """Send this process's log records (INFO and up) to the station's log file; idempotent.

    Returns the file, or None when it cannot be written (no data folder yet, read-only disk).
    """
    path = data.log
    if not data.root.is_dir():
        return None
    root = logging.getLogger()
    target = str(path.resolve())
    if any(getattr(h, "baseFilename", None) == target for h in root.handlers):
        return path
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = _Handler(path, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8", delay=True)
    except OSError:
        return None
    handler.setFormatter(logging.Formatter(FORMAT))
    root.addHandler(handler)
    if root.level == logging.NOTSET or root.level > logging.INFO:
        root.setLevel(logging.INFO)
    return path
