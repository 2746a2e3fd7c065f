"""The key slot file on disk: its format, its lock, safe writes, and a little disk space set aside.

``keyslots.json`` (format 2; format 1 is read and upgraded in memory) is replaced atomically,
the previous generation kept as ``.bak`` (read when the main file is damaged). Every
read-modify-write holds ``keyslots.json.lock`` across processes and threads (``file_lock``).
``keyslots.json.reserve`` keeps 256 KiB aside: on a full disk it is given up so that PIN failures
can still be recorded and the database can still be opened for reading. What the slots mean is
:mod:`station.store.keyslots`.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from schema.errors import UserError
from schema.org import Role
from station.store.atomicfile import atomic_write

log = logging.getLogger("station.store.keyslots")

FORMAT = "station-keyslots"
VERSION = 2  # 2: device-bound slots, recovery requests, growing lockout (1 is read and upgraded)
LOCK_TIMEOUT_S = 15.0
RESERVE_BYTES = 256 * 1024  # room for the counter and for opening the database (WAL index)
_CORRUPT = "密钥文件损坏或缺失：{}，请联系县中心使用恢复密钥"


@dataclass(frozen=True, kw_only=True)
class KdfParams:
    alg: str = "argon2id"
    iterations: int
    memory_kib: int
    lanes: int

    def __post_init__(self) -> None:
        # Bounds also stop a tampered file from asking for terabytes of memory.
        ok = (
            self.alg == "argon2id"
            and all(type(v) is int for v in (self.iterations, self.memory_kib, self.lanes))
            and 1 <= self.iterations <= 64
            and 1 <= self.lanes <= 16
            and 8 * self.lanes <= self.memory_kib <= 4 * 1024 * 1024
        )
        if not ok:
            raise ValueError(f"unsupported KDF parameters: {self!r}")


class SlotFileError(UserError):
    """keyslots.json missing, corrupt, unwritable or from a newer program."""


class SlotFileTooNew(SlotFileError):
    pass


def save(path: Path, doc: dict[str, Any], *, revoke: bool, restored_from_backup: bool) -> bool:
    """Write ``doc`` (the caller holds the lock). True if the reserve had to be given up (disk full)."""
    data = json.dumps(doc, ensure_ascii=False, indent=1).encode("utf-8")
    released = False
    try:
        try:
            _write(path, data, revoke, restored_from_backup)
        except OSError as e:
            if e.errno not in (errno.ENOSPC, errno.EDQUOT) or not release_reserve(path):
                raise
            _write(path, data, revoke, restored_from_backup)
            released = True
    except OSError as e:
        raise SlotFileError(write_problem(path, e)) from e
    keep_reserve(path)
    return released


def _write(path: Path, data: bytes, revoke: bool, restored_from_backup: bool) -> None:
    bak = backup_of(path)
    if revoke:
        # A revoked PIN, user or county key must not come back through the backup.
        atomic_write(path, data)
        atomic_write(bak, data)
    elif restored_from_backup:
        atomic_write(path, data)  # don't rotate the broken main file over the good backup
    else:
        atomic_write(path, data, backup=bak)


@contextlib.contextmanager
def file_lock(path: Path, *, reading: bool = False) -> Iterator[None]:
    """Exclusive lock on ``<file>.lock`` across processes and threads.

    Readers take it too: a writer renames the file to ``.bak`` and the new one into place, and a
    reader in between would otherwise see no file and fall back to the backup. Where the lock file
    cannot be created (a read-only directory) nothing can be written either, so readers go on
    without it; a writer goes on too and meets the real cause when it writes.
    """
    from filelock import FileLock, Timeout

    lock = FileLock(str(path) + ".lock", timeout=LOCK_TIMEOUT_S)
    try:
        lock.acquire()
    except Timeout:
        raise SlotFileError(
            f"密钥文件 {path} 正被另一个程序长时间占用，请稍后再试；若一直如此，请重启电脑"
        ) from None
    except OSError as e:
        if not path.parent.is_dir():
            raise SlotFileError(_CORRUPT.format(f"找不到 {path}")) from None
        log.warning("no lock on %s (%s); %s unlocked", path, e.strerror, "reading" if reading else "going on")
        yield
        return
    try:
        yield
    finally:
        lock.release()


def write_problem(path: Path, e: OSError) -> str:
    causes = {
        errno.ENOSPC: "磁盘空间已满，请删除不需要的文件腾出空间",
        errno.EDQUOT: "磁盘配额已用完，请删除不需要的文件腾出空间",
        errno.EROFS: "磁盘为只读，请检查磁盘或U盘的写保护",
        errno.EACCES: "没有写入权限，请检查文件夹权限（是否用平时的账户运行）",
        errno.EPERM: "没有写入权限，请检查文件夹权限（是否用平时的账户运行）",
    }
    cause = causes.get(e.errno or 0) or f"{e.strerror or type(e).__name__}，请检查磁盘和文件权限"
    return f"无法保存密钥文件 {path}：{cause}"


def reserve_of(path: Path) -> Path:
    return path.with_name(path.name + ".reserve")


def keep_reserve(path: Path) -> None:
    """Keep a little disk space set aside, so a full disk can still record PIN failures."""
    reserve = reserve_of(path)
    if reserve.exists():
        return
    try:
        with open(reserve, "wb") as f:
            f.write(bytes(RESERVE_BYTES))
            f.flush()
            os.fsync(f.fileno())
    except OSError:
        with contextlib.suppress(OSError):
            reserve.unlink()


def release_reserve(path: Path) -> bool:
    """Give up the disk space set aside beside ``path`` (the slot file); False if there was none."""
    try:
        reserve_of(path).unlink()
    except OSError:
        return False
    log.warning("disk full: released the key slot reserve to save %s", path.name)
    return True


# -- file format -------------------------------------------------------------------------------


def new_doc(station_id: str) -> dict[str, Any]:
    return dict(format=FORMAT, version=VERSION, station_id=station_id, key_check=None, device=None,
                recovery=None, users=[])


def b64(b: bytes) -> str:
    return base64.b64encode(b).decode("ascii")


def unb64(s: str, size: int | None = None) -> bytes:
    b = base64.b64decode(s, validate=True)
    if size is not None and len(b) != size:
        raise ValueError("wrong length")
    return b


def backup_of(path: Path) -> Path:
    return path.with_name(path.name + ".bak")


def read(path: Path) -> tuple[dict[str, Any], bool]:
    """Parse the file, falling back to the .bak if the main file is unreadable.

    Falling back is safe: every slot is authenticated by AES-GCM, so a stale or
    tampered backup can at worst fail to open, never yield a wrong key; and
    revocations are written to both files. The alternative, refusing to start,
    would stall the service room for days waiting for county recovery.
    """
    try:
        return parse(path), False
    except SlotFileTooNew:
        raise  # never fall back to an older generation behind a newer program's back
    except SlotFileError as main_error:
        try:
            doc = parse(backup_of(path))
        except SlotFileError:
            raise main_error from None
        log.warning("key slot file %s unreadable (%s); using its .bak", path, main_error.message)
        return doc, True


def parse(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise SlotFileError(_CORRUPT.format(f"找不到 {path}")) from None
    except OSError as e:
        raise SlotFileError(f"密钥文件无法读取：{path}（{e.strerror}），请检查文件权限") from None
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):
        raise SlotFileError(_CORRUPT.format(f"{path} 内容不完整或格式错误")) from None
    return validated(doc, str(path))


def validated(doc: Any, where: str) -> dict[str, Any]:
    """Check every field's type up front so later code can trust the structure; upgrade version 1."""
    if isinstance(doc, dict) and doc.get("format") == FORMAT and type(doc.get("version")) is int:
        if doc["version"] > VERSION:
            raise SlotFileTooNew(
                f"密钥文件 {where} 来自更新版本的程序（格式版本{doc['version']}），请升级本程序后再试"
            )
    try:
        upgrade(doc)
        check_doc(doc)
    except (ValueError, TypeError, KeyError, AttributeError):
        raise SlotFileError(_CORRUPT.format(f"{where} 内容不完整或格式错误")) from None
    return doc


def upgrade(doc: Any) -> None:
    """Version 1 → 2 in memory (written as 2 at the next change): new fields with their defaults."""
    if doc["version"] != 1:
        return
    doc["version"] = VERSION
    doc.setdefault("device", None)
    if doc.get("recovery") is not None:
        doc["recovery"].setdefault("county_sign_pub", None)
        doc["recovery"].setdefault("requester", None)
    for u in doc["users"]:
        u.setdefault("recovery_pending", None)
        if u.get("slot") is not None:
            u["slot"].setdefault("device", False)


def check_doc(doc: Any) -> None:
    def field(d: dict[str, Any], key: str, *types: type) -> Any:
        if type(d[key]) not in types:
            raise ValueError(f"bad field {key!r}")
        return d[key]

    def check_slot(slot: dict[str, Any], ct_size: int) -> None:
        KdfParams(**field(slot, "kdf", dict))
        unb64(field(slot, "salt", str), 16)
        unb64(field(slot, "nonce", str), 12)
        unb64(field(slot, "ct", str), ct_size + 16)
        field(slot, "device", bool)

    if field(doc, "format", str) != FORMAT or field(doc, "version", int) != VERSION:
        raise ValueError("not a key slot file")
    if not field(doc, "station_id", str):
        raise ValueError("empty station id")
    if field(doc, "key_check", str, type(None)) is not None:
        unb64(doc["key_check"], 16)
    if (device := field(doc, "device", dict, type(None))) is not None:
        field(device, "name", str)
        unb64(field(device, "check", str), 16)
    if (rec := field(doc, "recovery", dict, type(None))) is not None:
        unb64(field(rec, "public_key", str), 32)
        unb64(field(rec, "enc", str), 32 + 32 + 16)  # X25519 enc || AES-GCM(K)
        if field(rec, "county_sign_pub", str, type(None)) is not None:
            unb64(rec["county_sign_pub"], 32)
        if (req := field(rec, "requester", dict, type(None))) is not None:
            unb64(field(req, "public", str), 32)
            unb64(field(req, "secret", str), 32)
            cert = field(req, "cert", dict)
            field(cert, "h", str)
            field(cert, "s", str)
    for u in field(doc, "users", list):
        for key in ("user_id", "login", "name"):
            field(u, key, str)
        Role(field(u, "role", str))
        if field(u, "failures", int) < 0:
            raise ValueError("negative failures")
        t = field(u, "last_failure_at", str, type(None))
        if t is not None and datetime.fromisoformat(t).tzinfo is None:
            raise ValueError("naive timestamp")
        slot = field(u, "slot", dict, type(None))
        if field(u, "disabled", bool) != (slot is None):
            raise ValueError("enabled user without slot, or disabled user with one")
        if slot is not None:
            check_slot(slot, 32)
        if (pending := field(u, "recovery_pending", dict, type(None))) is not None:
            field(pending, "id", str)
            field(pending, "at", str)
            if "check" in pending:
                field(pending, "check", str)
            if field(pending, "failures", int) < 0:
                raise ValueError("negative failures")
            check_slot(field(pending, "slot", dict), 32)
