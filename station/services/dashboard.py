"""The home screen's figures: counts that open a filtered case list, recent cases, sync state.

Every count is defined by the keyword arguments of :func:`station.services.queries.list_cases`
it opens (``Tile.filters``), and :func:`count` runs the same conditions as a ``count(*)``, so
a tile's number is exactly the length of the list it opens. "This org" is the signed-in user's
organisation (``session.actor.org``):

* 今日收件 — cases this org registered today (``intake``, ``since`` today, ``until`` tomorrow).
* 待补正 — cases this org holds that wait for 补正 materials (state 待补正).
* 待受理/转报 (village), 待审核/转报 (township), 待审批 (county) — cases this org holds that
  need its action: 待受理 (registered, not yet accepted), 办理中 (accepted here or forwarded up
  to here: to be forwarded or decided) and 已退回 (sent back down for correction).
* 两个工作日内到期 — cases this org holds whose clock is running (办理中/已退回) and whose
  promised date is today or within the next two working days of the station's calendar.
* 已超期 — cases this org holds whose clock is running and whose promised date has passed.

All of them read indexes (``case_holder_due``, ``case_registered``; migration 0002), so they
cost the same with 100,000 cases as with 100.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from schema.case import CLOCK_RUNNING_STATES, State
from schema.org import Role
from schema.workdays import TimeUnit
from station import clock
from station.services import queries
from station.services.queries import CaseRow
from station.session import Session

RECENT = 10
DUE_SOON_WORKDAYS = 2

PENDING_STATES = (State.RECEIVED, State.IN_PROGRESS, State.RETURNED)
PENDING_LABELS = {
    Role.AGENT: "待受理/转报",
    Role.CLERK: "待审核/转报",
    Role.REVIEWER: "待审批",
    Role.ADMIN: "待审批",
}


@dataclass(frozen=True)
class Tile:
    key: str  # today | supplement | pending | due_soon | overdue
    label: str
    count: int
    filters: dict[str, Any] = field(default_factory=dict)  # list_cases kwargs + title

    def open_args(self) -> dict[str, Any]:
        return {**self.filters, "title": self.label}


@dataclass(frozen=True)
class SyncSummary:
    online: bool | None  # None: unknown (never tried)
    last_sync: str | None  # ISO time of the last successful sync
    pending: int  # this station's events not yet accepted by the county
    message: str  # a short note for the status line ("" when there is nothing to add)


@dataclass(frozen=True)
class Home:
    tiles: list[Tile]
    recent: list[CaseRow]
    sync: SyncSummary
    today: date


def tile_filters(session: Session, today: date | None = None) -> list[tuple[str, str, dict[str, Any]]]:
    """(key, label, list_cases filters) of the home tiles for the signed-in user, in screen order."""
    today = today or clock.today()
    org = session.actor.org
    tomorrow = today + timedelta(days=1)
    soon = session.store.cases.calendar().add(today, DUE_SOON_WORKDAYS, TimeUnit.WORKDAY).date
    return [
        ("today", "今日收件", {"intake": org, "since": today.isoformat(), "until": tomorrow.isoformat()}),
        ("supplement", "待补正", {"holder": org, "states": [State.AWAITING_SUPPLEMENT.value]}),
        (
            "pending",
            PENDING_LABELS[session.user.role],
            {"holder": org, "states": [s.value for s in PENDING_STATES]},
        ),
        (
            "due_soon",
            "两个工作日内到期",
            {
                "holder": org,
                "due_from": today.isoformat(),
                "due_before": (soon + timedelta(days=1)).isoformat(),
            },
        ),
        ("overdue", "已超期", {"holder": org, "overdue": True, "due_before": today.isoformat()}),
    ]


def count(session: Session, **filters: Any) -> int:
    """``count(*)`` of what :func:`queries.list_cases` lists for the same filters (the subset used here)."""
    sql, args = count_sql(**filters)
    return session.db.execute_sql(sql, args).fetchone()[0]


def count_sql(**filters: Any) -> tuple[str, list[Any]]:
    where: list[str] = []
    args: list[Any] = []
    states = filters.get("states")
    running = [s.value for s in CLOCK_RUNNING_STATES]
    if filters.get("overdue") or filters.get("due_before") or filters.get("due_from"):
        states = [s for s in states if s in running] if states else running
    if states is not None:
        where.append(f"state IN ({','.join('?' * len(states))})")
        args += states
    if filters.get("overdue") or filters.get("due_before"):
        where.append("due_date IS NOT NULL AND due_date < ?")
        args.append(filters.get("due_before") or clock.today().isoformat())
    if filters.get("due_from"):
        where.append("due_date >= ?")
        args.append(filters["due_from"])
    for key, column in (("holder", "holder_org"), ("intake", "intake_org"), ("item_code", "item_code")):
        if filters.get(key):
            where.append(f"{column} = ?")
            args.append(filters[key])
    if filters.get("since"):
        where.append("registered_at >= ?")
        args.append(filters["since"])
    if filters.get("until"):
        where.append("registered_at < ?")
        args.append(filters["until"])
    unknown = set(filters) - {
        "states",
        "overdue",
        "due_before",
        "due_from",
        "holder",
        "intake",
        "item_code",
        "since",
        "until",
    }
    if unknown:
        raise TypeError(f"count_sql: unsupported filters {sorted(unknown)}")
    return "SELECT count(*) FROM case_view" + (" WHERE " + " AND ".join(where) if where else ""), args


def tiles(session: Session, today: date | None = None) -> list[Tile]:
    return [Tile(key, label, count(session, **f), f) for key, label, f in tile_filters(session, today)]


def recent_cases(session: Session, limit: int = RECENT) -> list[CaseRow]:
    """The most recently registered cases this station holds a copy of."""
    return queries.list_cases(session, limit=limit)


def sync_summary(session: Session) -> SyncSummary:
    """The sync state for the status line, from ``station.replication.status.sync_status``.

    ``online`` is how the county looked at the last attempt (None: never tried); ``pending``
    counts this station's events the county has not acknowledged, plus village records waiting
    in a township's relay outbox; ``message`` names the one thing that most needs attention.
    """
    from station.replication.status import sync_status

    st = sync_status(session)
    if not st.enrolled:
        message = "未登记到县中心（按F9登记）"
    elif st.revoked:
        message = "本站已被县中心注销（按F9查看）"
    elif st.blocked:
        message = "上传已暂停（按F9查看）"
    elif st.clock_warning:
        message = "本机时钟不准，请校正"
    elif st.last_error:
        message = "上次同步有问题（按F9查看）"
    else:
        message = ""
    if not message:
        from station.services.backup import backup_overdue

        days = backup_overdue(session)
        if days is not None:
            message = f"已{days}天未备份（按F10在“工作站”页备份到U盘）"
    return SyncSummary(online=st.online, last_sync=st.last_success, pending=st.pending, message=message)


def home(session: Session, today: date | None = None) -> Home:
    """Everything the home screen shows, in one call on the session thread."""
    today = today or clock.today()
    return Home(tiles(session, today), recent_cases(session), sync_summary(session), today)
