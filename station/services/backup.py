"""Backup and restore of a whole station in one file (``station backup`` / ``station restore``).

The backup file is a ZIP holding, unchanged, what the data folder holds — nothing in it is
readable without a user's PIN:

* ``station.db``: a copy made with SQLite's online backup API from a read snapshot, so it is
  consistent while the station is in use, a sync included (the sync writes on its own
  connection; the snapshot sees every transaction committed before it began, none after). It
  stays encrypted with the same SQLCipher key: the copy's pages are the original's pages.
* ``keyslots.json``: the users' wrapped keys; ``station.json``: the plain settings.
* ``manifest.json``: station, org, head, time, the SHA-256 of every member, and an HMAC over all
  of it under a key derived from the data key — a changed byte anywhere is found before
  anything is replaced.

Restore never touches the current data folder until the backup has passed everything: the
manifest and its HMAC (which needs a user's PIN from the backup), each member's hash, the
SQLCipher page HMACs and SQLite's structure, every hash chain, and the projections refolded
from the log. Only then is the current folder renamed aside (``<folder>.before-restore-<time>``,
kept) and the restored one renamed into its place — both renames on the same volume.

Limits: a backup is the station as it was when taken. Records made after it and never synced
are lost with the PC; records synced after it come back from the county only to a station that
enrols anew (see ``docs/village-pc.md``, "Device replacement").
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import shutil
import zipfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlcipher3
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from schema import canonical
from schema.errors import UserError, ValidationError
from station import clock, logs
from station.config import CONFIG_FILE, DB_FILE, SLOTS_FILE, DataDir, StationConfig
from station.session import Session, open_session
from station.store.atomicfile import fsync_dir
from station.store.db import key_pragma, translate_errors
from station.store.keyslots import DeviceSecretMissing, KeySlots, WrongPin

log = logging.getLogger("station.backup")

FORMAT = "station-backup"
VERSION = 1
SUFFIX = ".station-backup"
MANIFEST = "manifest.json"
MEMBERS = (DB_FILE, SLOTS_FILE, CONFIG_FILE)
# What a member may expand to: a station of 100,000 cases is ~300 MB; JSON files are small.
MAX_DB = 8 * 1024**3
MAX_JSON = 4 * 1024**2
LAST_BACKUP = "backup.last_at"
REMIND_DAYS = 7  # the home screen reminds when the last backup is older


class BackupError(UserError):
    code = "backup"


@dataclass
class BackupResult:
    path: Path
    bytes: int
    events: int
    head_seq: int
    created_at: str

    def text(self) -> str:
        return (f"已备份到 {self.path}（{self.bytes / 1024 / 1024:.1f} MB，{self.events} 条记录）。"
                "备份文件已加密，需用本站用户的PIN才能恢复；请把U盘存放在安全的地方")

    def to_dict(self) -> dict[str, Any]:
        return {"file": str(self.path), "bytes": self.bytes, "events": self.events, "head_seq": self.head_seq,
                "created_at": self.created_at}


@dataclass
class RestoreResult:
    data_dir: Path
    kept_aside: Path | None
    station_id: str
    name: str
    org: str
    created_at: str
    events: int
    enrolled: bool

    def text(self) -> str:
        lines = [f"已从备份恢复工作站“{self.name}”（{self.org}），备份时间 {self.created_at[:16].replace('T', ' ')}，"
                 f"{self.events} 条记录，校验全部通过"]
        if self.kept_aside:
            lines.append(f"原来的数据没有删除，已移到 {self.kept_aside}")
        if self.enrolled:
            lines.append("请先同步一次再办理新业务：备份之后已同步到县中心的记录不在备份里")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"data_dir": str(self.data_dir), "kept_aside": str(self.kept_aside) if self.kept_aside else None,
                "station_id": self.station_id, "name": self.name, "org": self.org, "created_at": self.created_at,
                "events": self.events, "enrolled": self.enrolled}


# -- backup --------------------------------------------------------------------------------------------


def default_name(config: StationConfig, at: datetime | None = None) -> str:
    """``330522101001-01_20261128-1336.station-backup``: which station and when, nothing personal."""
    at = at or clock.now()
    return f"{config.org}-{config.station_no:02d}_{at.strftime('%Y%m%d-%H%M')}{SUFFIX}"


def _target(path: str | Path, config: StationConfig) -> Path:
    p = Path(path)
    if p.is_dir() or str(path).endswith(("/", os.sep)):
        return p / default_name(config)
    return p


def _mac_key(data_key: bytes | bytearray) -> bytes:
    return HKDF(hashes.SHA256(), 32, salt=None, info=b"station-backup/v1/manifest").derive(bytes(data_key))


def _mac(data_key: bytes | bytearray, manifest: dict[str, Any]) -> str:
    body = canonical.encode({k: v for k, v in manifest.items() if k != "mac"})
    return hmac.new(_mac_key(data_key), body, hashlib.sha256).hexdigest()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _copy_database(session: Session, dest: Path) -> tuple[int, int]:
    """SQLite's online backup of the open (encrypted) database into ``dest``, same key.

    Returns the copy's own head seq and event count (a sync may have added events since).
    """
    with translate_errors():
        src = session.db.connection()
        dst = sqlcipher3.connect(str(dest))
        try:
            dst.execute(f'PRAGMA key = "{key_pragma(session.data_key())}"')
            src.backup(dst)  # one step: the whole database from one read snapshot
            head = dst.execute("SELECT coalesce(max(seq), 0) FROM event WHERE station = ?",
                               (session.config.station_id,)).fetchone()[0]
            count = dst.execute("SELECT count(*) FROM event").fetchone()[0]
        finally:
            dst.close()
    return head, count


def create_backup(session: Session, path: str | Path) -> BackupResult:
    """Write the whole station into one file at ``path`` (a file name, or a folder such as a USB stick)."""
    target = _target(path, session.config)
    if target.suffix != SUFFIX:
        target = target.with_name(target.name + SUFFIX)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BackupError(f"无法使用文件夹 {target.parent}（{e.strerror}），请检查U盘是否插好") from None
    if target.resolve().is_relative_to(session.data.root.resolve()):
        raise ValidationError("备份不能放在工作站的数据目录里，请选择U盘或其他文件夹", field="path")
    work = target.with_name(f".{target.name}.tmp")
    staging = work.with_suffix(".db")
    created = clock.iso(clock.now())
    try:
        head_seq, events = _copy_database(session, staging)
        manifest: dict[str, Any] = {
            "format": FORMAT, "version": VERSION, "station_id": session.config.station_id,
            "org": session.config.org, "name": session.config.name, "created_at": created,
            "head_seq": head_seq, "events": events,
            "files": {DB_FILE: _sha256(staging)},
        }
        blobs = {SLOTS_FILE: session.data.slots.read_bytes(), CONFIG_FILE: session.data.config.read_bytes()}
        for name, blob in blobs.items():
            manifest["files"][name] = hashlib.sha256(blob).hexdigest()
        manifest["mac"] = _mac(session.data_key(), manifest)
        with zipfile.ZipFile(work, "w", zipfile.ZIP_STORED) as z:
            z.writestr(MANIFEST, json.dumps(manifest, ensure_ascii=False, indent=1))
            z.write(staging, DB_FILE)
            for name, blob in blobs.items():
                z.writestr(name, blob)
        with open(work, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(work, target)
        fsync_dir(target.parent)
    except OSError as e:
        raise BackupError(
            f"无法写入备份文件 {target}（{e.strerror or e}），请检查U盘是否插好、是否写保护、空间是否足够"
        ) from None
    finally:
        for p in (work, staging, *(staging.with_name(staging.name + s) for s in ("-wal", "-shm", "-journal"))):
            p.unlink(missing_ok=True)
    with session.store.writing():
        session.store.set_meta(LAST_BACKUP, created)
    size = target.stat().st_size
    log.info("backup written: station=%s head=%d events=%d bytes=%d", session.config.station_id[:8], head_seq,
             events, size)
    return BackupResult(target, size, events, head_seq, created)


def last_backup(session: Session) -> str | None:
    return session.store.meta(LAST_BACKUP)


def backup_overdue(session: Session, days: int = REMIND_DAYS) -> int | None:
    """Days since the last backup when more than ``days`` (or since set-up, never backed up); else None."""
    since = last_backup(session) or session.config.created_at
    if not since:
        return None
    age = (clock.now() - datetime.fromisoformat(since)).days
    return age if age >= days else None


# -- restore ---------------------------------------------------------------------------------------------


def _read_manifest(z: zipfile.ZipFile) -> dict[str, Any]:
    names = {i.filename: i for i in z.infolist()}
    if set(names) != {MANIFEST, *MEMBERS}:
        raise BackupError("这不是完整的工作站备份文件（内容不符），未做任何改动")
    for name, info in names.items():
        if info.file_size > (MAX_DB if name == DB_FILE else MAX_JSON):
            raise BackupError("备份文件中的内容大小异常，可能已损坏或被改动，未做任何改动")
    try:
        manifest = json.loads(z.read(MANIFEST).decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise BackupError("备份文件的说明部分已损坏，未做任何改动") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError("这不是工作站备份文件，未做任何改动")
    if manifest.get("version") != VERSION:
        raise BackupError("备份文件来自其他版本的程序，请安装相同或更新版本后再恢复，未做任何改动")
    files = manifest.get("files")
    if not isinstance(files, dict) or set(files) != set(MEMBERS) or not isinstance(manifest.get("mac"), str):
        raise BackupError("备份文件的说明部分不完整，未做任何改动")
    return manifest


def _extract(z: zipfile.ZipFile, manifest: dict[str, Any], into: Path) -> None:
    for name in MEMBERS:
        h = hashlib.sha256()
        with z.open(name) as src, open(into / name, "wb") as dst:
            for block in iter(lambda src=src: src.read(1 << 20), b""):
                h.update(block)
                dst.write(block)
            dst.flush()
            os.fsync(dst.fileno())
        if not hmac.compare_digest(h.hexdigest(), str(manifest["files"][name])):
            raise BackupError(f"备份文件中的 {name} 与备份时不一致（已损坏或被改动），未做任何改动")


def _check(staging: Path, manifest: dict[str, Any], login: str, pin: str) -> tuple[Session, int]:
    """Unlock the staged copy with a PIN from the backup, check it all; the open Session and its event count."""
    from station.services.verify import verify_station

    data = DataDir(staging)
    config = data.load_config()
    slots = KeySlots.load(data.slots)
    if not (manifest.get("station_id") == slots.station_id == config.station_id):
        raise BackupError("备份文件的各部分不属于同一个工作站（可能被改动），未做任何改动")
    try:
        user, key = slots.unlock(login, pin)
    except WrongPin:  # the count is kept in the discarded copy: "还可尝试N次" would not be true
        raise BackupError(f"PIN不正确：请输入 {login} 在备份时使用的PIN。未做任何改动") from None
    except DeviceSecretMissing:
        raise BackupError(
            "这个备份的PIN与做备份的那台电脑绑定（系统凭据库中的设备密钥），在这台电脑上打不开，未做任何改动。"
            "换了电脑时请请县中心停用旧电脑，新电脑重新登记后同步，即可从县中心取回已同步的全部记录"
        ) from None
    if not hmac.compare_digest(_mac(key, manifest), manifest["mac"]):
        key[:] = bytes(len(key))
        raise BackupError("备份文件的校验码不符（已损坏或被改动），未做任何改动")
    # Opened as any unlock opens a station: a backup made by an older program is migrated and
    # its projections rebuilt in the staging copy.
    session = open_session(data, config, slots, user, key)
    report = verify_station(session)
    if not report.ok:
        session.close()
        raise BackupError("备份文件校验未通过，未做任何改动：" + "；".join(report.problems[:3]))
    with session.store.writing():  # the restored station is that backup: the reminder counts from it
        session.store.set_meta(LAST_BACKUP, str(manifest.get("created_at", "")))
    return session, report.events


def backup_logins(path: str | Path) -> list[str]:
    """The active users' logins in a backup (to ask for one), read without unlocking anything."""
    try:
        with zipfile.ZipFile(path) as z:
            _read_manifest(z)
            doc = json.loads(z.read(SLOTS_FILE).decode("utf-8"))
        return [u["login"] for u in doc["users"] if not u.get("disabled")]
    except (OSError, zipfile.BadZipFile, EOFError, ValueError, UnicodeDecodeError, KeyError, TypeError):
        raise BackupError(f"无法读取备份文件 {path}（不存在、不完整或不是工作站备份）") from None


def restore_backup(path: str | Path, data_dir: str | Path, login: str, pin: str, *,
                   replace: bool = False) -> RestoreResult:
    """Verify the backup at ``path`` completely, then make it the station in ``data_dir``.

    ``login``/``pin``: a user of the backed-up station (the backup opens only with its key).
    An existing station in ``data_dir`` is replaced only with ``replace`` and is kept aside.
    """
    source = Path(path)
    target = DataDir(data_dir)
    if not source.is_file():
        raise BackupError(f"找不到备份文件 {source}，请检查U盘是否插好、文件名是否正确")
    occupied = target.root.exists() and any(target.root.iterdir())
    if occupied and not replace:
        what = "已有工作站" if target.exists() else "已有其他文件"
        raise BackupError(f"数据目录 {target.root} 中{what}。确认要用备份替换时请加 --replace（原数据会保留在旁边）")
    parent = target.root.resolve().parent
    parent.mkdir(parents=True, exist_ok=True)
    stamp = clock.now().strftime("%Y%m%d-%H%M%S")
    staging = parent / f".{target.root.name}.restoring-{stamp}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    session = None
    try:
        try:
            with zipfile.ZipFile(source) as z:
                manifest = _read_manifest(z)
                _extract(z, manifest, staging)
        except (zipfile.BadZipFile, EOFError):
            raise BackupError("备份文件已损坏或不完整（不是有效的备份文件），未做任何改动") from None
        except OSError as e:
            raise BackupError(f"无法读取备份文件或写入临时文件（{e.strerror or e}），未做任何改动") from None
        session, events = _check(staging, manifest, login, pin)
        from station.replication import identity

        enrolled = identity.enrolled(session)
        config = session.config
        session.close()
        session = None
        aside = None
        logging_here = logs.release(target.root)
        try:
            if target.root.exists():
                aside = parent / f"{target.root.name}.before-restore-{stamp}"
                os.replace(target.root, aside)
            os.replace(staging, target.root)
            fsync_dir(parent)
        finally:
            if logging_here:
                logs.setup(target)
    except BaseException:
        if session is not None:
            session.close()
        shutil.rmtree(staging, ignore_errors=True)
        raise
    log.info("restored: station=%s events=%d backup_at=%s kept_aside=%s", config.station_id[:8], events,
             manifest.get("created_at"), bool(aside))
    return RestoreResult(target.root, aside, config.station_id, config.name, config.org,
                         str(manifest.get("created_at", "")), events, enrolled)
