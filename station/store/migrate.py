"""Schema migrations: an old station database upgrades in place.

Migration scripts live in ``station/store/migrations`` as ``NNNN_name.py``
and run through peewee's migration runner, each in its own transaction.
A database that has migrations this program does not know came from a newer
version: we refuse to touch it rather than guess.
"""

from __future__ import annotations

from pathlib import Path

from playhouse.migrations import Runner

from station.store.db import DatabaseProblem, translate_errors

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def _runner(db) -> Runner:
    return Runner(db, directory=str(MIGRATIONS))


def known_migrations() -> list[str]:
    return sorted(p.stem for p in MIGRATIONS.glob("[0-9][0-9][0-9][0-9]_*.py"))


def migrate(db) -> list[str]:
    """Apply pending migrations; return the names applied."""
    with translate_errors():
        runner = _runner(db)
        applied = set(runner.applied())
        unknown = sorted(applied - set(known_migrations()))
        if unknown:
            raise DatabaseProblem(
                "数据库来自更新版本的工作站程序（包含本程序不认识的结构："
                + "、".join(unknown)
                + "）。请安装最新版本的程序后再打开，数据未被改动"
            )
        if all(m in applied for m in known_migrations()):
            return []
        return runner.up()
