"""Read-only questions about cases: lists, filters, search, dashboard counts."""

from __future__ import annotations

from dataclasses import dataclass

from schema.case import CLOCK_RUNNING_STATES, State
from schema.validation import mask_id_number, mask_phone
from station import clock
from station import search as terms
from station.session import Session

LIST_COLUMNS = (
    "case_id, case_no, item_name, state, applicant_name, id_number, phone, registered_at, due_date, "
    "due_estimated, holder_org, holder_level, conflicts, accepted_at"
)


@dataclass(frozen=True, slots=True)
class CaseRow:
    case_id: str
    case_no: str
    item_name: str
    state: State
    applicant_name: str
    id_masked: str
    phone_masked: str
    registered_at: str
    due_date: str | None
    due_estimated: bool
    holder_org: str
    holder_level: str
    conflicts: int
    accepted_at: str | None = None  # 受理 time (the case lists' 受理日期)

    def to_dict(self) -> dict:
        d = {f: getattr(self, f) for f in self.__slots__}
        d["state"] = self.state.value
        d["state_label"] = self.state.label
        return d


def _row(r: tuple) -> CaseRow:
    cid, no, item, state, name, idn, phone, reg, due, est, holder, level, conflicts, accepted = r
    return CaseRow(cid, no, item, State(state), name, mask_id_number(idn) if idn else "", mask_phone(phone),
                   reg, due, bool(est), holder, level, conflicts, accepted)


def list_cases(
    session: Session,
    *,
    states: list[str] | None = None,
    overdue: bool = False,
    due_before: str | None = None,
    holder: str | None = None,
    intake: str | None = None,
    item_code: str | None = None,
    since: str | None = None,
    until: str | None = None,
    due_from: str | None = None,
    limit: int = 100,
    offset: int = 0,
    oldest_first: bool = False,
) -> list[CaseRow]:
    """Cases by filter, newest registration first.

    ``overdue``/``due_before``/``due_from`` keep cases whose clock is running (办理中/已退回) with
    a due date before ``due_before`` (default today, for ``overdue``) and on or after
    ``due_from``; ``intake`` is the org that registered the case, ``holder`` the org holding it.
    """
    where, args = [], []
    if states:
        where.append(f"state IN ({','.join('?' * len(states))})")
        args += states
    if overdue or due_before:
        running = [s.value for s in CLOCK_RUNNING_STATES]
        where.append(f"state IN ({','.join('?' * len(running))}) AND due_date IS NOT NULL AND due_date < ?")
        args += [*running, due_before or clock.today().isoformat()]
    if due_from:
        running = [s.value for s in CLOCK_RUNNING_STATES]
        where.append(f"state IN ({','.join('?' * len(running))}) AND due_date >= ?")
        args += [*running, due_from]
    if holder:
        where.append("holder_org = ?")
        args.append(holder)
    if intake:
        where.append("intake_org = ?")
        args.append(intake)
    if item_code:
        where.append("item_code = ?")
        args.append(item_code)
    if since:
        where.append("registered_at >= ?")
        args.append(since)
    if until:
        where.append("registered_at < ?")
        args.append(until)
    order = f" ORDER BY registered_at {'ASC' if oldest_first else 'DESC'}, case_no"
    sql = f"SELECT {LIST_COLUMNS} FROM case_view"
    if where:
        sql += " WHERE " + " AND ".join(where)
    split = states or ([s.value for s in CLOCK_RUNNING_STATES] if overdue or due_before or due_from else [])
    if len(split) > 1 and not holder and not intake and not item_code and limit >= 0 and offset >= 0:
        # With several states SQLite cannot read case_state in date order, so it sorts every
        # matching row (~100 ms on 100k cases, bench/store.py). One index-ordered branch per
        # state, each cut at limit + offset, gives the same rows in the same order. (A holder
        # or item filter is selective enough for its own index: left to the planner.)
        branch = f"SELECT * FROM ({sql} AND state = ?{order} LIMIT ?)"
        sql = f"SELECT * FROM ({' UNION ALL '.join([branch] * len(split))})"
        args = [a for s in split for a in (*args, s, limit + offset)]
    sql += f"{order} LIMIT ? OFFSET ?"
    rows = session.db.execute_sql(sql, (*args, limit, offset)).fetchall()
    return [_row(r) for r in rows]


def search_cases(session: Session, text: str, limit: int = 50) -> list[CaseRow]:
    """Find cases by applicant name (any part), ID number, phone, case number or name initials."""
    probes, confirm = terms.plan(text)
    if not probes:
        return []
    ids: list[str] = []
    seen: set[str] = set()
    db = session.db
    for term, prefix in probes:
        if prefix:
            rows = db.execute_sql(
                "SELECT case_id FROM case_term WHERE term >= ? AND term < ? LIMIT ?", (term, term + "\uffff", limit * 4)
            ).fetchall()
        else:
            rows = db.execute_sql("SELECT case_id FROM case_term WHERE term = ? LIMIT ?", (term, limit * 4)).fetchall()
        for (cid,) in rows:
            if cid not in seen:
                seen.add(cid)
                ids.append(cid)
    if not ids:
        return []
    marks = ",".join("?" * len(ids))
    sql = f"SELECT {LIST_COLUMNS} FROM case_view WHERE case_id IN ({marks})"
    args: list = list(ids)
    if confirm:
        sql += " AND instr(applicant_name, ?) > 0"
        args.append(confirm)
    sql += " ORDER BY registered_at DESC LIMIT ?"
    return [_row(r) for r in db.execute_sql(sql, (*args, limit)).fetchall()]
