"""待办 (inbox): the cases waiting for this org's review or decision.

At a township, the cases its villages forwarded up (待接件 first to take in, then those taken in,
and cases the county returned to it); at the county, the cases forwarded up to the county; at a
village, the cases returned down to it. Waiting means the org holds the case and the case is
待接件, 办理中 or 已退回; a case the org registered itself and still holds in 办理中 is its own
work, not something sent to it, and is left out.

Most urgent first: by promised completion date, then the oldest registration. The query reads the
partial index ``case_inbox`` (migrations 0003 and 0006) in order, so a page costs the same on 100,000 cases
as on 100.
"""

from __future__ import annotations

from schema.case import State
from station.services.queries import LIST_COLUMNS, CaseRow, _row
from station.session import Session

# Literal, not bound: SQLite uses a partial index only when the query repeats its WHERE term.
_WAITING = "state IN ('in_progress', 'returned', 'transferred')"
assert {State.IN_PROGRESS.value, State.RETURNED.value, State.TRANSFERRED.value} == {
    "in_progress", "returned", "transferred"}

_WHERE = f"holder_org = ? AND {_WAITING} AND (intake_org <> ? OR state = 'returned')"
INBOX_SQL = (
    f"SELECT {LIST_COLUMNS} FROM case_view WHERE {_WHERE} "
    "ORDER BY due_date, registered_at, case_no LIMIT ? OFFSET ?"
)
COUNT_SQL = f"SELECT count(*) FROM case_view WHERE {_WHERE}"


def inbox(session: Session, limit: int = 100, offset: int = 0) -> list[CaseRow]:
    org = session.actor.org
    rows = session.db.execute_sql(INBOX_SQL, (org, org, limit, offset)).fetchall()
    return [_row(r) for r in rows]


def inbox_count(session: Session) -> int:
    org = session.actor.org
    return session.db.execute_sql(COUNT_SQL, (org, org)).fetchone()[0]
