"""The session thread: the one thread that owns the database connection.

peewee keeps connection state per thread and the station opens SQLCipher with
``autoconnect=False``, so the thread that unlocks (opens the database) must be the
thread that runs every later query and the lock (``Session.close``). A
single-worker executor gives exactly that, and runs calls in the order they were
submitted: a lock queued after a write runs after the write.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")

THREAD_NAME = "station-session"


def _name_thread() -> None:
    # ThreadPoolExecutor appends "_0" to its prefix; the log and py-spy should say exactly this.
    threading.current_thread().name = THREAD_NAME


class SessionThread:
    def __init__(self) -> None:
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def _get(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    max_workers=1, thread_name_prefix=THREAD_NAME, initializer=_name_thread
                )
            return self._executor

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        return self._get().submit(fn, *args, **kwargs)

    async def run(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Run ``fn`` on the session thread and await its result (or its exception).

        Cancelling the awaiting task drops the call if it has not started yet; a call that
        has started runs to its end (a database transaction is never cut in half).
        """
        return await asyncio.wrap_future(self.submit(fn, *args, **kwargs))

    def call(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Run ``fn`` on the session thread and wait for it (for shutdown and tests, not for handlers)."""
        if threading.current_thread().name == THREAD_NAME:
            return fn(*args, **kwargs)
        return self.submit(fn, *args, **kwargs).result()

    def shutdown(self) -> None:
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
