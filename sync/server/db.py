"""The county center's storage: peewee models on SQLite or PostgreSQL, one code path.

Tables (see docs/county-center.md for the full layout):

``county_meta``    key → value: county code and name, the county's own station id, public
                   keys, the private keys wrapped under the admin passphrase, schema version.
``station``        one row per enrolled station and one for the county's own chain: org,
                   level, keys, status, head (seq, hash, hlc, at), last seen, last pull cursor.
``event``          the county log. ``pos`` (autoincrement) is the county position, the pull
                   cursor. ``data`` is the event's canonical JSON, served to pulls as stored.
                   ``scope``/``township`` (sync.scope) index the pulls of villages and townships.
``case_scope``     case id → scope, set by ``case.registered``.
``enroll_code``    one-time enrollment codes: id and sealed confirmation key, never the code.
``staff``          the staff directory folded from ``user.*`` events: the accounts that
                   authority checks (schema.authority) look up.
``alarm``          forks, clock problems, refusals of revoked stations, forged signatures …;
                   ``source`` names the address an unauthenticated input came from.
``audit``          every refusal (time, remote, station, endpoint, status, code, reason).
``request_nonce``  (station, nonce, at) of recent signed requests: a replay is refused.

Writes go through :meth:`CountyDB.write`: ``BEGIN IMMEDIATE`` on SQLite (one writer at a
time), a plain transaction on PostgreSQL where :meth:`CountyDB.lock_station` takes the
station row ``FOR UPDATE`` and :meth:`CountyDB.lock_log` takes a transaction-scoped advisory
lock before any row is added to ``event``. The log lock makes positions commit in order,
so a pull that has seen position *n* can never later find a smaller position appear.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from peewee import (
    BigAutoField,
    BigIntegerField,
    BooleanField,
    CharField,
    CompositeKey,
    Database,
    IntegerField,
    Model,
    PostgresqlDatabase,
    SqliteDatabase,
    TextField,
    __exception_wrapper__,
)

from schema.errors import UserError

# 2: enroll_code keeps a code id and a sealed confirmation key (sync.enrollment);
# 3: staff.added_seq/disabled_seq, quarantined events, alarm.source, station.cursor_at,
#    request_nonce (sync.server.upgrade holds every step).
SCHEMA_VERSION = 3
LOG_LOCK_KEY = 847_001  # pg_advisory_xact_lock key for appending to the event table
# event.flags bit: stored before clocks were bounded and beyond the bound — kept, never served
# to a pull (sync.server.upgrade). The clock-plausibility bits are in sync.server.ingest.
FLAG_QUARANTINED = 8

SQLITE_PRAGMAS = {
    "journal_mode": "wal",
    "synchronous": "full",  # each commit fsynced: a receipt is never sent for data a power cut can lose
    "busy_timeout": 15000,
    "cache_size": -64000,
    "temp_store": "memory",
}


class DatabaseUnavailable(UserError):
    """The database cannot be opened or reached (a server fault, not the client's)."""

    code = "database"


@dataclass
class Models:
    Meta: type[Model]
    Station: type[Model]
    Event: type[Model]
    CaseScope: type[Model]
    EnrollCode: type[Model]
    Staff: type[Model]
    Alarm: type[Model]
    Audit: type[Model]
    Nonce: type[Model]

    def all(self) -> list[type[Model]]:
        return [
            self.Meta,
            self.Station,
            self.Event,
            self.CaseScope,
            self.EnrollCode,
            self.Staff,
            self.Alarm,
            self.Audit,
            self.Nonce,
        ]


def _models(database: Database) -> Models:
    """Model classes bound to one database (several county DBs can be open in one process)."""

    class Base(Model):
        class Meta:
            database = None
            legacy_table_names = False

    Base._meta.set_database(database)

    class Meta(Base):
        key = CharField(primary_key=True, max_length=64)
        value = TextField()

        class Meta:
            table_name = "county_meta"

    class Station(Base):
        id = CharField(primary_key=True, max_length=64)
        org = CharField(max_length=12)
        level = CharField(max_length=10)
        name = CharField(max_length=200, default="")
        sign_pub = CharField(max_length=64, default="")
        enc_pub = CharField(max_length=64, default="")
        status = CharField(max_length=10)  # active | revoked | county (the county's own chain)
        enrolled_at = CharField(max_length=40)
        revoked_at = CharField(max_length=40, null=True)
        revoke_reason = TextField(default="")
        head_seq = BigIntegerField(default=0)
        head_hash = CharField(max_length=64, default="")
        head_hlc = BigIntegerField(default=0)
        head_at = CharField(max_length=64, default="")
        last_seen = BigIntegerField(null=True)  # epoch ms of the last authenticated request
        last_cursor = BigIntegerField(null=True)  # the cursor it last said it holds
        cursor_at = BigIntegerField(default=0)  # signed time of the request or USB file that said so

        class Meta:
            table_name = "station"

    class Event(Base):
        pos = BigAutoField()
        id = CharField(unique=True, max_length=100)
        station = CharField(max_length=64)
        seq = BigIntegerField()
        hash = CharField(max_length=64)
        hlc = BigIntegerField()
        kind = CharField(max_length=64)
        subject = CharField(max_length=200)
        scope = CharField(max_length=12)
        township = CharField(max_length=12)
        data = TextField()  # canonical JSON of the full event (with prev and hash)
        received_at = BigIntegerField()
        flags = IntegerField(default=0)

        class Meta:
            table_name = "event"
            indexes = (
                (("station", "seq"), True),
                (("scope", "pos"), False),
                (("township", "pos"), False),
            )

    class CaseScope(Base):
        case_id = CharField(primary_key=True, max_length=200)
        scope = CharField(max_length=12)

        class Meta:
            table_name = "case_scope"

    class EnrollCode(Base):
        code_id = CharField(primary_key=True, max_length=32)  # from the stretched code (sync.enrollment)
        sealed_key = TextField()  # the code's confirmation key, sealed to the county's own X25519 key
        org = CharField(max_length=12)
        level = CharField(max_length=10)
        name = CharField(max_length=200, default="")
        created_at = BigIntegerField()
        expires_at = BigIntegerField()
        used_at = BigIntegerField(null=True)
        used_by = CharField(max_length=64, null=True)

        class Meta:
            table_name = "enroll_code"

    class Staff(Base):
        user_id = CharField(primary_key=True, max_length=200)
        login = CharField(max_length=200, default="")
        name = CharField(max_length=200, default="")
        role = CharField(max_length=32, default="")
        org = CharField(max_length=32, default="")
        station = CharField(max_length=64, default="")
        disabled = BooleanField(default=False)
        added_hlc = BigIntegerField(default=-1)
        added_seq = BigIntegerField(default=0)  # the seq of the user.added in its station's chain
        disabled_seq = BigIntegerField(null=True)  # the seq of its own station's user.disabled

        class Meta:
            table_name = "staff"

    class Alarm(Base):
        id = BigAutoField()
        at = BigIntegerField()
        kind = CharField(max_length=32)
        station = CharField(max_length=64, default="")
        source = CharField(max_length=64, default="")  # address of an unauthenticated input
        detail = TextField(default="{}")

        class Meta:
            table_name = "alarm"
            indexes = ((("station", "id"), False), (("source", "kind", "at"), False))

    class Audit(Base):
        id = BigAutoField()
        at = BigIntegerField()
        remote = CharField(max_length=64, default="")
        station = CharField(max_length=64, default="")
        endpoint = CharField(max_length=64, default="")
        status = IntegerField()
        code = CharField(max_length=32, default="")
        reason = TextField(default="")

        class Meta:
            table_name = "audit"

    class Nonce(Base):
        station = CharField(max_length=64)
        nonce = CharField(max_length=32)
        at = BigIntegerField()  # the request's own time (epoch ms), for expiry

        class Meta:
            table_name = "request_nonce"
            primary_key = CompositeKey("station", "nonce")
            indexes = ((("at",), False),)

    return Models(Meta, Station, Event, CaseScope, EnrollCode, Staff, Alarm, Audit, Nonce)


class CountyDB:
    """One county database: the peewee ``Database``, its models, and the write discipline."""

    def __init__(self, database: Database, backend: str, url: str) -> None:
        self.database = database
        self.backend = backend  # "sqlite" | "postgresql"
        self.url = url
        self.m = _models(database)

    @property
    def is_pg(self) -> bool:
        return self.backend == "postgresql"

    # -- schema --------------------------------------------------------------------------------

    def create_schema(self) -> None:
        with self.database.atomic():
            self.database.create_tables(self.m.all(), safe=True)
            self.m.Meta.insert(key="schema_version", value=str(SCHEMA_VERSION)).on_conflict_ignore().execute()

    def initialised(self) -> bool:
        try:
            return self.get_meta("county") is not None
        except Exception:  # noqa: BLE001 - no table yet means not initialised
            if self.is_pg:
                with contextlib.suppress(Exception):
                    self.database.rollback()
            return False

    # -- meta ----------------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        row = self.m.Meta.get_or_none(self.m.Meta.key == key)
        return None if row is None else row.value

    def get_meta_json(self, key: str) -> Any:
        value = self.get_meta(key)
        return None if value is None else json.loads(value)

    def set_meta(self, key: str, value: str) -> None:
        self.m.Meta.insert(key=key, value=value).on_conflict(
            conflict_target=[self.m.Meta.key], update={self.m.Meta.value: value}
        ).execute()

    # -- transactions and locks ------------------------------------------------------------------

    @contextlib.contextmanager
    def write(self) -> Iterator[None]:
        """One write transaction: BEGIN IMMEDIATE on SQLite, BEGIN on PostgreSQL."""
        if self.is_pg:
            with self.database.atomic():
                yield
        else:
            with self.database.atomic(lock_type="IMMEDIATE"):
                yield

    @contextlib.contextmanager
    def read(self) -> Iterator[None]:
        """A read transaction (one consistent snapshot on SQLite; READ COMMITTED on PostgreSQL)."""
        with self.database.atomic():
            yield

    def lock_station(self, station_id: str):
        """The station row, locked for this transaction (PostgreSQL); SQLite holds the write lock."""
        S = self.m.Station
        query = S.select().where(S.id == station_id)
        if self.is_pg:
            query = query.for_update()
        return query.get_or_none()

    def lock_log(self) -> None:
        """Serialise appends to ``event`` so positions become visible in order (PostgreSQL)."""
        if self.is_pg:
            self.database.execute_sql("SELECT pg_advisory_xact_lock(%s)", (LOG_LOCK_KEY,))

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.database.close()


# -- URLs --------------------------------------------------------------------------------------


def parse_url(url: str) -> tuple[str, dict[str, Any]]:
    """``sqlite:///relative.db``, ``sqlite:////abs/path.db``, ``postgresql://user:pw@host:port/db``
    (``?host=/socket/dir`` for a unix socket)."""
    if not isinstance(url, str) or "://" not in url:
        raise UserError(f"数据库地址“{url}”格式不对，应为 sqlite:///文件路径 或 postgresql://用户@主机/库名")
    u = urlparse(url)
    scheme = u.scheme.lower()
    if scheme == "sqlite":
        path = unquote(u.path)[1:] if u.path.startswith("/") else unquote(u.path)
        if not path:
            raise UserError("数据库地址缺少文件路径，例如 sqlite:///county.db")
        return "sqlite", {"path": path}
    if scheme in ("postgresql", "postgres", "postgresql+psycopg2"):
        q = {k: v[-1] for k, v in parse_qs(u.query).items()}
        params: dict[str, Any] = {"database": unquote(u.path.lstrip("/")) or "postgres"}
        if u.username:
            params["user"] = unquote(u.username)
        if u.password:
            params["password"] = unquote(u.password)
        host = q.pop("host", None) or u.hostname
        if host:
            params["host"] = host
        port = q.pop("port", None) or u.port
        if port:
            params["port"] = int(port)
        params.update(q)
        return "postgresql", params
    raise UserError(f"不支持的数据库类型“{scheme}”：请用 sqlite:/// 或 postgresql://")


def connect(url: str) -> CountyDB:
    """Open the county database at ``url`` (the schema is created by ``init``)."""
    backend, params = parse_url(url)
    if backend == "sqlite":
        path = Path(params["path"])
        if str(path) != ":memory:" and not path.parent.exists():
            raise UserError(f"数据库目录 {path.parent} 不存在")
        database: Database = SqliteDatabase(str(path), pragmas=SQLITE_PRAGMAS, autoconnect=True)
    else:
        database = PostgresqlDatabase(params.pop("database"), autoconnect=True, **params)
    cdb = CountyDB(database, backend, url)
    try:
        database.connect(reuse_if_open=True)
    except Exception as e:  # noqa: BLE001 - a driver's own exception types differ
        raise DatabaseUnavailable(
            f"无法连接数据库（{type(e).__name__}），请检查数据库地址和数据库服务是否运行"
        ) from None
    return cdb


# -- the event log ------------------------------------------------------------------------------

# Same settings as schema.canonical; used for events whose canonical form was already checked
# (their hash was recomputed from the same dict), so the float/type walk is not repeated.
_ENCODER = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False)
EVENT_FIELDS = (
    "pos",
    "id",
    "station",
    "seq",
    "hash",
    "hlc",
    "kind",
    "subject",
    "scope",
    "township",
    "data",
    "received_at",
    "flags",
)
INSERT_CHUNK = 400


def event_json(ev) -> str:
    """Canonical JSON text of the full event (``Event.to_dict()``), as served to pulls."""
    return _ENCODER.encode(ev.to_dict())


def event_row(ev, *, scope: str, township: str, received_at: int, flags: int = 0) -> tuple:
    return (
        ev.id,
        ev.station,
        ev.seq,
        ev.hash,
        ev.hlc,
        ev.kind,
        ev.subject,
        scope,
        township,
        event_json(ev),
        received_at,
        flags,
    )


def insert_events(cdb: CountyDB, rows: list[tuple]) -> None:
    """Append rows (from :func:`event_row`) to the log; the caller holds :meth:`CountyDB.lock_log`.

    One prepared statement on the peewee-managed connection (inside the caller's transaction):
    building a multi-row INSERT through peewee's query builder cost more than the rest of ingest.
    """
    if not rows:
        return
    cols = ", ".join(f'"{c}"' for c in EVENT_FIELDS[1:])
    cursor = cdb.database.cursor()
    with __exception_wrapper__:  # driver errors as peewee's (IntegrityError …), as for any peewee query
        if cdb.is_pg:
            from psycopg2.extras import execute_values

            execute_values(cursor, f'INSERT INTO "event" ({cols}) VALUES %s', rows, page_size=INSERT_CHUNK)
        else:
            marks = ", ".join("?" * (len(EVENT_FIELDS) - 1))
            cursor.executemany(f'INSERT INTO "event" ({cols}) VALUES ({marks})', rows)


def insert_case_scopes(cdb: CountyDB, pairs: list[tuple[str, str]]) -> None:
    """case id → scope for new registrations; an id already known keeps its scope."""
    cursor = cdb.database.cursor()
    with __exception_wrapper__:
        if cdb.is_pg:
            from psycopg2.extras import execute_values

            execute_values(
                cursor,
                'INSERT INTO "case_scope" ("case_id", "scope") VALUES %s ON CONFLICT DO NOTHING',
                pairs,
                page_size=INSERT_CHUNK,
            )
        else:
            cursor.executemany('INSERT OR IGNORE INTO "case_scope" ("case_id", "scope") VALUES (?, ?)', pairs)
