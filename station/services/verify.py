"""``station verify``: is everything on disk what the log says it should be?

Checks SQLCipher's page HMACs and SQLite's structure, re-verifies every
station's hash chain (this station's in full; others as far as we hold them,
since a pull brings only the events in our scope), refolds every case from
the log in memory and compares the result with the stored projection.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from schema.events import ChainError, verify_chain
from station.projections.cases import VIEW_COLUMNS, CaseProjection, view_row
from station.session import Session
from station.store.db import integrity_problems


@dataclass
class Report:
    events: int = 0
    stations: int = 0
    cases: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict:
        return {"ok": self.ok, "events": self.events, "stations": self.stations, "cases": self.cases,
                "problems": self.problems}

    def text(self) -> str:
        head = f"已校验 {self.events} 条事件（{self.stations} 个工作站的哈希链）、{self.cases} 件办件。"
        if self.ok:
            return head + "全部一致，未发现问题。"
        return head + f"发现 {len(self.problems)} 个问题：\n" + "\n".join("  - " + p for p in self.problems[:50])


def _comparable(row: tuple) -> tuple:
    # The JSON column is compared as data, not as text.
    return (*row[:-1], json.loads(row[-1]))


def _verify_partial(evs: list) -> None:
    """Another station's chain as far as we hold it: a pull brings only the events in our scope,
    so seqs may skip; every hash must match its content and consecutive seqs must link."""
    prev = None
    for ev in evs:
        if ev.compute_hash() != ev.hash:
            raise ChainError(f"station {ev.station} seq {ev.seq}: hash does not match content")
        if prev is not None and ev.seq == prev.seq + 1 and ev.prev != prev.hash:
            raise ChainError(f"station {ev.station} seq {ev.seq}: prev does not link to the previous event")
        prev = ev


def verify_station(session: Session) -> Report:
    report = Report()
    report.problems += [f"数据库完整性：{p}" for p in integrity_problems(session.db)]
    if report.problems:
        return report  # damaged pages cannot be read; checking the log would only fail on them
    store = session.store
    events = list(store.events())
    report.events = len(events)
    by_station: dict[str, list] = {}
    for ev in events:
        by_station.setdefault(ev.station, []).append(ev)
    report.stations = len(by_station)
    own = session.config.station_id
    for station, evs in by_station.items():
        evs.sort(key=lambda e: e.seq)
        try:
            if station == own:
                verify_chain(evs)
            else:
                _verify_partial(evs)
        except ChainError as e:
            report.problems.append(f"哈希链断裂：{e}")
    folded = CaseProjection.fold_all(events, who=store.org_of)
    report.cases = len(folded)
    cal = store.cases.calendar()
    stored = {r[0]: r for r in session.db.execute_sql(f"SELECT {VIEW_COLUMNS} FROM case_view").fetchall()}
    for cid in sorted(set(stored) - set(folded)):
        report.problems.append(f"办件 {cid} 在投影中存在，但日志中没有它的登记")
    for cid, view in folded.items():
        if cid not in stored:
            report.problems.append(f"办件 {view.case_no} 缺少投影记录")
        elif _comparable(stored[cid]) != _comparable(view_row(view, cal)):
            report.problems.append(f"办件 {view.case_no} 的投影与日志重建结果不一致")
    return report
