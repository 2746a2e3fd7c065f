"""Who made an event, as the case rules must see it.

The rules (schema.rules) never trust what an event says about its author beyond its role: the
org and level are those of the station that recorded it, and the department (联办意见) is the
user's, from the staff directory. This resolver is handed to every fold at the station.
"""

from __future__ import annotations

from dataclasses import replace

from schema import rules
from schema.events import Event


class Authors:
    def __init__(self, db) -> None:
        self.db = db
        self._departments: dict[str, str] | None = None

    def forget(self) -> None:
        """The directory changed (a user was added, another connection committed)."""
        self._departments = None

    def departments(self) -> dict[str, str]:
        if self._departments is None:
            rows = self.db.execute_sql("SELECT user_id, department FROM user WHERE department != ''").fetchall()
            self._departments = dict(rows)
        return self._departments

    def __call__(self, ev: Event) -> rules.Actor:
        actor = rules.claimed(ev)
        department = self.departments().get(ev.actor, "")
        return replace(actor, department=department) if department else actor
