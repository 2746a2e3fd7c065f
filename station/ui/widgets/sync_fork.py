"""Run network work (a sync, an online enrollment) on a thread worker with its own session.

The session thread owns the app's database connection and must stay free while the county is
slow to answer, so the work runs on a Textual *thread* worker on ``session.fork()`` — a second
connection, opened and closed on that worker's thread (peewee connections belong to the thread
that opened them). Afterwards the caller tells the app's session, on the session thread, to
forget its caches and re-read ``station.json`` (:func:`after_fork`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual.dom import DOMNode


async def run_on_fork(
    node: DOMNode, session: Any, fn: Callable[..., Any], /, *args: Any, **kwargs: Any
) -> Any:
    """``fn(fork, *args, **kwargs)`` on a thread worker of ``node``; returns its result or raises its error."""

    def work() -> tuple[bool, Any]:
        fork = None
        try:
            fork = session.fork()
            return True, fn(fork, *args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - handed to the awaiting coroutine, which shows it
            return False, exc
        finally:
            if fork is not None:
                fork.close()

    # Errors come back as values: a failed worker would also be reported by the app.
    worker = node.run_worker(work, thread=True, group="session-fork", exit_on_error=False)
    ok, value = await worker.wait()
    if not ok:
        raise value
    return value


def after_fork(session: Any) -> None:
    """On the session thread: the fork wrote to the database and maybe to ``station.json``."""
    from station.services.admin import reload_config

    session.store.cases.forget_cache()
    reload_config(session)
