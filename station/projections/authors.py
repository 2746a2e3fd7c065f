"""Who made an event, as the case rules must see it.

The rules (schema.rules) never trust what an event says about its author: its org and level
are those its station enrolled with (the station registry; this station's own config for its
own events), its role must be one a station of that level may hold (schema.authority), and the
department (联办意见) is the user's, from the staff directory. An event claiming anything else
becomes a conflict on its case. This resolver is handed to every fold at the station.
"""

from __future__ import annotations

from collections.abc import Callable

from schema import rules
from schema.authority import claim_problem
from schema.errors import TransitionError
from schema.events import Event
from schema.org import OrgCode, Role

UNREGISTERED = "该记录来自未登记的工作站，不能确认其单位"


class Authors:
    def __init__(self, db, org_of: Callable[[str], str | None]) -> None:
        self.db = db
        self.org_of = org_of  # a station's enrolled org (Store.org_of), None if unknown here
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
        org = self.org_of(ev.station)
        if org is None:
            raise TransitionError(UNREGISTERED)
        problem = claim_problem(ev, org)
        if problem is not None:
            raise TransitionError(problem)
        return rules.Actor(ev.actor, Role(ev.role), org, OrgCode(org).level, self.departments().get(ev.actor, ""))
