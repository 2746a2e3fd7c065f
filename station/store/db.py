"""Opening the encrypted station database (SQLCipher 4 via peewee).

The database is keyed with a random 256-bit raw key (``x'…'``), so SQLCipher's
own PBKDF2 never runs: the slow, per-user KDF happens once, in the key slots.
SQLite errors are translated into :class:`DatabaseProblem`, whose message
tells a village agent what happened in plain Chinese.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import sqlcipher3
from peewee import DatabaseError, OperationalError
from playhouse.sqlcipher_ext import SqlCipherDatabase

from schema.errors import UserError

PRAGMAS = {
    "journal_mode": "wal",
    # FULL: each commit is fsynced, so a power cut never loses an acknowledged case.
    "synchronous": "full",
    "foreign_keys": 1,
    "cache_size": -32000,  # 32 MB page cache
    "temp_store": "memory",  # no plaintext temporary files on disk
    "busy_timeout": 5000,
    "cipher_memory_security": "off",
    # SQLCipher would print its own English log lines on stderr (e.g. on a failed page HMAC);
    # errors reach the user as one Chinese message instead (translate_errors).
    "cipher_log_level": "NONE",
}


class DatabaseProblem(UserError):
    code = "database"


def key_pragma(key: bytes | bytearray) -> str:
    if len(key) != 32:
        raise ValueError("the database key must be 32 bytes")
    return "x'" + bytes(key).hex() + "'"


def open_database(path: Path, key: bytes | bytearray, *, create: bool = False) -> SqlCipherDatabase:
    """Open (or create) the database and prove the key works."""
    path = Path(path)
    if not create and not path.exists():
        raise DatabaseProblem(f"找不到数据库文件 {path}，请确认数据目录是否正确")
    db = SqlCipherDatabase(str(path), passphrase=key_pragma(key), pragmas=PRAGMAS, autoconnect=False)
    with translate_errors():
        db.connect()
        try:
            # The first read is where a wrong key or a damaged header shows up.
            db.execute_sql("SELECT count(*) FROM sqlite_master").fetchone()
        except BaseException:
            db.close()
            raise
    return db


def describe(exc: BaseException) -> str:
    text = str(exc).lower()
    if "full" in text or "no space" in text:
        return "磁盘空间不足，本次操作未保存，已保存的数据不受影响。请清理磁盘后重试"
    if "not a database" in text or "malformed" in text or "hmac" in text or "corrupt" in text:
        return "数据库文件已损坏或被篡改（完整性校验失败）。请不要继续使用，联系县中心从备份或上级数据恢复"
    if "locked" in text or "busy" in text:
        return "数据库正被另一个程序使用，请关闭其他工作站窗口后重试"
    if "readonly" in text or "read-only" in text or "permission" in text:
        return "没有写入数据目录的权限，请检查文件夹权限"
    if "disk i/o" in text or "ioerr" in text:
        return "读写磁盘出错，可能是硬盘或U盘故障。已保存的数据不受影响，请检查设备后重试"
    return "数据库出错：" + str(exc)


@contextlib.contextmanager
def translate_errors() -> Iterator[None]:
    try:
        yield
    except (DatabaseError, OperationalError, sqlcipher3.DatabaseError, sqlite3.DatabaseError) as e:
        # After SQLITE_FULL (and some I/O errors) SQLite has already rolled the transaction back,
        # so the rollback on the way out fails and hides the real cause: report that cause.
        cause: BaseException = e
        while "no transaction is active" in str(cause) and cause.__context__ is not None:
            cause = cause.__context__
        raise DatabaseProblem(describe(cause)) from e
    except OSError as e:
        if e.errno == 28:  # ENOSPC
            raise DatabaseProblem(describe(Exception("disk full"))) from e
        raise


def integrity_problems(db: SqlCipherDatabase) -> list[str]:
    """Every page's HMAC (SQLCipher) and SQLite's own structural check."""
    problems: list[str] = []
    with translate_errors():
        for (row,) in db.execute_sql("PRAGMA cipher_integrity_check").fetchall():
            problems.append(str(row))
        if problems:  # pages that fail their HMAC cannot be read: quick_check would only raise on them
            return problems
        rows = [r[0] for r in db.execute_sql("PRAGMA quick_check").fetchall()]
    if rows != ["ok"]:
        problems.extend(rows)
    return problems
