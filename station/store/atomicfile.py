"""Atomic, durable replacement of small files (key slots, settings).

A reader sees either the old file or the new one, never a half-written mix,
even if the power fails mid-write: the new content goes to a temporary file in
the same directory (same volume, so the rename is atomic), is flushed and
fsynced, then renamed over the target, and finally the directory entry is
fsynced so the rename itself survives a crash.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from pathlib import Path

_IS_WINDOWS = os.name == "nt"


def atomic_write(
    path: str | os.PathLike[str], data: bytes, *, backup: str | os.PathLike[str] | None = None
) -> None:
    """Replace ``path`` with ``data``; if ``backup`` is given, the old file is kept there.

    With a backup, the old file is renamed (not copied) to ``backup``, so the
    previous generation keeps its already-synced data blocks. A crash between the
    two renames leaves ``path`` missing and ``backup`` intact; readers that fall
    back to the backup see the last completed state.
    """
    path = Path(path)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if backup is not None and path.exists():
            _replace(path, Path(backup))
        _replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(path.parent)


def fsync_dir(directory: str | os.PathLike[str]) -> None:
    """Make renames in ``directory`` durable (POSIX only).

    Windows cannot open a directory for fsync; NTFS journals the rename's
    metadata, which is the best available there without MoveFileEx write-through.
    """
    if _IS_WINDOWS:
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _replace(src: Path, dst: Path, *, attempts: int = 10) -> None:
    # On Windows, antivirus and the search indexer briefly open freshly written
    # files, and os.replace then fails with PermissionError: retry for ~0.5 s.
    for attempt in range(attempts):
        try:
            os.replace(src, dst)
            return
        except PermissionError:
            if not _IS_WINDOWS or attempt == attempts - 1:
                raise
            time.sleep(0.05)
