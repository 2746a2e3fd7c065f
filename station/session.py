"""Opening a station: first-run initialisation, unlocking, locking.

A :class:`Session` is an unlocked station: the data key is in memory, the
encrypted database is open and the signed-in user is known. Locking closes
the database and wipes the key.
"""

from __future__ import annotations

import contextlib
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from schema import events as K
from schema import rules
from schema.authority import check_role_at
from schema.errors import ValidationError
from schema.ids import new_id
from schema.org import OrgCode, Role
from schema.validation import check_person_name
from station import clock
from station.config import DataDir, StationConfig
from station.projections import rebuild
from station.store.db import DatabaseProblem, open_database
from station.store.keyslots import (
    KeySlots,
    SlotInfo,
    UserDisabled,
    new_data_key,
    release_reserve,
    validate_pin,
)
from station.store.migrate import migrate
from station.store.store import Actor, Store

LOW_SPACE = 1024 * 1024  # below this, a database that will not open is taken for a full disk


@dataclass
class Session:
    data: DataDir
    config: StationConfig
    user: SlotInfo
    store: Store
    slots: KeySlots
    _key: bytearray = field(repr=False)  # never in a repr, a log line or a traceback's locals

    @property
    def actor(self) -> Actor:
        """Who acts: the signed-in user, always for this station's own org (schema.authority)."""
        return Actor(self.user.user_id, self.user.role, self.config.org, self.user.name)

    @property
    def author(self) -> rules.Actor:
        """The signed-in user as the case rules see them (menus, previews)."""
        a = self.actor
        row = self.db.execute_sql("SELECT department FROM user WHERE user_id = ?", (a.user_id,)).fetchone()
        return rules.Actor(a.user_id, a.role, a.org, OrgCode(a.org).level, row[0] if row else "")

    @property
    def db(self):
        return self.store.db

    def data_key(self) -> bytearray:
        return self._key

    def fork(self) -> Session:
        """A second Session on the same data directory with its OWN database connection and Store.

        For work on another thread (the UI runs a sync on a worker thread while the session
        thread keeps serving screens): call it ON that thread — peewee connections belong to the
        thread that opened them — and close it there when done. It holds its own copy of the
        data key, wiped by its ``close``. Both connections may write: every write is one
        ``BEGIN IMMEDIATE`` transaction, and each Store drops its caches when the other commits.
        """
        key = bytearray(self._key)
        db = None
        try:
            db = open_database(self.data.db, key)
            migrate(db)
            config = self.data.load_config()
            store = Store(db, config.station_id, config.org)
            store.finish_upgrade()
            return Session(self.data, config, self.user, store, KeySlots.load(self.data.slots), key)
        except BaseException:
            if db is not None and not db.is_closed():
                db.close()
            key[:] = bytes(len(key))
            raise

    def close(self) -> None:
        """Lock: close the database and forget the key (best effort in Python)."""
        db = self.store.db
        if not db.is_closed():
            with contextlib.suppress(Exception):
                # Keeps the planner's statistics fresh (an unanalysed 100k-case table
                # picks a full scan for tiny LIMITs); cheap when nothing changed.
                db.execute_sql("PRAGMA optimize")
            db.close()
        self._key[:] = bytes(len(self._key))

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def apply_disables(store: Store, slots: KeySlots) -> set[str]:
    """Disable the key slots of this station's users whose ``user.disabled`` came by sync (the
    county admin may disable any user of the county); returns the user ids disabled now."""
    rows = store.db.execute_sql(
        "SELECT user_id FROM user WHERE disabled = 1 AND station = ?", (store.station_id,)
    ).fetchall()
    disabled = {r[0] for r in rows}
    done = set()
    for u in slots.users():
        if u.user_id in disabled and not u.disabled:
            slots.disable(u.login)
            done.add(u.user_id)
    return done


def init_station(
    root: str | Path,
    *,
    org: str,
    name: str,
    login: str,
    role: Role,
    pin: str,
    user_name: str | None = None,
    station_no: int = 1,
) -> Session:
    """First run, offline: create the station, its first user and its database."""
    data = DataDir(root)
    if data.exists() or data.slots.exists() or data.db.exists():
        raise ValidationError(f"数据目录 {data.root} 中已有工作站，不能重复初始化", field="data_dir")
    cfg = StationConfig(station_id=new_id(), org=org, name=name.strip(), station_no=station_no,
                        created_at=clock.iso(clock.now()))
    check_role_at(role, org)
    display = check_person_name(user_name or login, label="用户姓名") if user_name else login
    validate_pin(pin)
    data.root.mkdir(parents=True, exist_ok=True)
    key = new_data_key()
    user_id = new_id()
    slots = KeySlots.create(data.slots, cfg.station_id)
    slots.add_user(user_id=user_id, login=login, name=display, role=role, pin=pin, data_key=key)
    db = open_database(data.db, key, create=True)
    migrate(db)
    data.save_config(cfg)
    session = Session(data, cfg, slots.find(login), Store(db, cfg.station_id, cfg.org), slots, key)
    rebuild.if_needed(session.store)
    store, actor = session.store, session.actor
    with store.writing():
        store.record(actor, K.STATION_INITIALISED, cfg.station_id,
                     {"org": org, "name": cfg.name, "station_no": station_no})
        store.record(actor, K.USER_ADDED, user_id,
                     {"user_id": user_id, "login": login, "name": display, "role": role.value,
                      "org": session.actor.org})
    return session


def unlock(root: str | Path, login: str, pin: str) -> Session:
    data = DataDir(root)
    cfg = data.load_config()
    slots = KeySlots.load(data.slots)
    user, key = slots.unlock(login, pin)
    return open_session(data, cfg, slots, user, key)


def open_session(data: DataDir, cfg: StationConfig, slots: KeySlots, user: SlotInfo, key: bytearray) -> Session:
    """The database opened with a data key just unwrapped (by a PIN, or by a county recovery)."""
    db = None
    try:
        db = _open_db(data, key)
        store = Store(db, cfg.station_id, cfg.org)
        store.finish_upgrade()
        if user.user_id in apply_disables(store, slots):  # the county admin disabled this user
            raise UserDisabled("该用户已被县中心管理员停用，请联系上级人员")
    except BaseException:
        if db is not None and not db.is_closed():
            db.close()  # a refused unlock must not keep the file open (locked, on Windows)
        key[:] = bytes(len(key))
        raise
    session = Session(data, cfg, user, store, slots, key)
    rebuild.if_needed(session.store)
    return session


def _open_db(data: DataDir, key: bytearray):
    """Open and migrate; on a full disk, give up the key slots' reserve once so reading still works
    (SQLite needs room for the WAL index to open the database at all)."""
    for attempt in (1, 2):
        db = None
        try:
            db = open_database(data.db, key)
            migrate(db)
            return db
        except DatabaseProblem:
            if db is not None and not db.is_closed():
                db.close()  # don't keep the file open (and locked, on Windows) after a refused unlock
            if shutil.disk_usage(data.root).free >= LOW_SPACE:
                raise
            if attempt == 1 and release_reserve(data.slots):
                continue
            raise DatabaseProblem(
                "磁盘空间已满，无法打开数据库（至少需要约1 MB空闲空间）。请删除不需要的文件后重试，数据没有受影响"
            ) from None
        except BaseException:
            if db is not None and not db.is_closed():
                db.close()
            raise
    raise AssertionError("unreachable")
