"""Projection of everything that is not a case: users, the station, the calendar.

A user belongs to the station whose chain added it (``schema.authority``): a second
``user.added`` of the same id never replaces it, and only that station's ``user.disabled``
records ``disabled_seq`` (a county admin's disables the user all the same).
"""

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
                "INSERT OR IGNORE INTO user (user_id, login, name, role, org, disabled, added_at, added_by, "
                "station, added_seq, department) VALUES (?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?)",
                (b["user_id"], b["login"], b["name"], b["role"], b["org"], ev.at, ev.actor, ev.station, ev.seq,
                 str(b.get("department") or "")),
            )
        elif ev.kind == K.USER_DISABLED:
            self.db.execute_sql(
                "UPDATE user SET disabled = 1, disabled_seq = CASE WHEN station = ? "
                "THEN min(coalesce(disabled_seq, ?), ?) ELSE disabled_seq END WHERE user_id = ?",
                (ev.station, ev.seq, ev.seq, b["user_id"]),
            )
        elif ev.kind == K.CALENDAR_SET:
            self.db.execute_sql(
                "INSERT OR REPLACE INTO calendar_override (day, workday, source) VALUES (?, ?, ?)",
                (b["day"], int(bool(b["workday"])), b.get("source", "")),
            )
        # station.initialised, user.pin_reset, catalog.published: nothing to project yet
