"""Projection of everything that is not a case: users, the station, the calendar."""

from __future__ import annotations

from schema import events as K
from schema.events import Event


class DirectoryProjection:
    def __init__(self, db) -> None:
        self.db = db

    def apply(self, ev: Event) -> None:
        b = ev.body
        if ev.kind == K.USER_ADDED:
            self.db.execute_sql(
                "INSERT OR REPLACE INTO user (user_id, login, name, role, org, disabled, added_at, added_by, department) "
                "VALUES (?, ?, ?, ?, ?, 0, ?, ?, ?)",
                (b["user_id"], b["login"], b["name"], b["role"], b["org"], ev.at, ev.actor,
                 str(b.get("department") or "")),
            )
        elif ev.kind == K.USER_DISABLED:
            self.db.execute_sql("UPDATE user SET disabled = 1 WHERE user_id = ?", (b["user_id"],))
        elif ev.kind == K.CALENDAR_SET:
            self.db.execute_sql(
                "INSERT OR REPLACE INTO calendar_override (day, workday, source) VALUES (?, ?, ?)",
                (b["day"], int(bool(b["workday"])), b.get("source", "")),
            )
        # station.initialised, user.pin_reset, catalog.published: nothing to project yet
