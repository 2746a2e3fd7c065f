"""Shared test helpers: pure event builders for the case rules, and real stations.

Pure part (no I/O): :class:`Chains` seals events the way stations do (per-station
``seq``/``prev`` hash chain, a hybrid logical clock), :class:`CaseSim` drives one case
through :func:`schema.rules.apply`.

Station part: :func:`make_station` creates a real encrypted station in a directory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from schema import events as K
from schema import hlc as HLC
from schema import rules
from schema.case import CaseView
from schema.catalog import default_catalog
from schema.errors import TransitionError
from schema.events import GENESIS, Event, seal
from schema.org import Role
from schema.rules import snapshot_item
from schema.validation import id_check_char

# -- organisations and people ---------------------------------------------------------------------

COUNTY = "330522000000"
TOWN = "330522101000"
TOWN2 = "330522102000"
VILLAGE = "330522101001"
VILLAGE2 = "330522101002"  # a sibling village of VILLAGE (same township)
VILLAGE_T2 = "330522102001"  # a village of the other township
OTHER_COUNTY = "330523000000"


@dataclass(frozen=True)
class Who:
    role: str
    org: str
    actor: str
    department: str = ""  # a county or township department (联办意见)


AGENT = Who("agent", VILLAGE, "agent-1")
AGENT2 = Who("agent", VILLAGE2, "agent-2")
CLERK = Who("clerk", TOWN, "clerk-1")
CLERK2 = Who("clerk", TOWN2, "clerk-2")
REVIEWER = Who("reviewer", COUNTY, "reviewer-1")
ADMIN = Who("admin", COUNTY, "admin-1")
ADMIN_ELSEWHERE = Who("admin", OTHER_COUNTY, "admin-9")

# -- catalog items (schema/data/catalog.json) --------------------------------------------------------

PENSION = "11000000210000000X4002021001001"  # 城乡居民基本养老保险参保登记: promised, county, no 容缺
DIBAO = "11000000070000000X4000507001001"  # 低保: escalated, county, bank account may be 容缺
DISABLED_SUBSIDY = "11000000070000000X4000507004001"  # 残疾人两项补贴: joint, county, 1 co-department
HOMESTEAD = "11000000010000000X5000101001001"  # 宅基地: joint, township, 3 co-departments
MEDICAL = "11000000220000000X4002022001001"  # 医保参保: immediate, county, village may accept
BIRTH = "11000000050000000X5000705001001"  # 出生登记: immediate, township
LAND = "11000000130000000X5001013001001"  # 土地流转备案: promised, township
ID_CARD = "11000000040000000X4000704001001"  # 居民身份证: promised, county, village may only advise
OLD_AGE_CARD = "11000000070000000X4002007001001"  # 老年人优待证: promised 5 workdays, photo may be 容缺


def differ(text: str) -> str:
    """``text`` with its last character replaced by a different one: a "forged" or "other"
    value that can never equal the original (``text[:-1] + "0"`` does when it ends in 0)."""
    return text[:-1] + ("1" if text[-1] == "0" else "0")


def item(code: str) -> dict[str, Any]:
    return snapshot_item(default_catalog().get(code))


def material_names(code: str) -> list[str]:
    return [m.name for m in default_catalog().get(code).materials]


def rongque_names(code: str) -> list[str]:
    return [m.name for m in default_catalog().get(code).materials if m.rongque]


def required_names(code: str) -> list[str]:
    return [m.name for m in default_catalog().get(code).materials if m.required]


def id_number(region: str = "330522", birth: str = "19500101", seq: str = "001") -> str:
    first17 = region + birth + seq
    return first17 + id_check_char(first17)


# -- sealing events like stations do ------------------------------------------------------------------


def _ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp() * 1000)


class Chains:
    """Seals events for several stations: gapless seq, prev hash chain, one HLC.

    Every station is assumed to have synced everything sealed before it acts, so the
    HLC order is the order of creation (causal). ``at`` defaults to a clock that moves
    one minute per event; :meth:`advance` moves it further.
    """

    def __init__(self, start: str = "2026-03-02T09:00:00+08:00") -> None:
        self.heads: dict[str, tuple[int, str]] = {}
        self.hlc = 0
        self.now = datetime.fromisoformat(start)

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)

    def build(
        self,
        kind: str,
        subject: str,
        body: dict[str, Any] | None,
        who: Who,
        *,
        station: str | None = None,
        at: str | None = None,
        commit: bool = True,
    ) -> Event:
        station = station or "st-" + who.org
        seq, prev = self.heads.get(station, (0, GENESIS))
        if at is None:
            self.now += timedelta(minutes=1)
            at = self.now.isoformat(timespec="seconds")
        hlc = HLC.tick(self.hlc, _ms(at))
        ev = seal(
            id=f"ev-{station}-{seq + 1}", station=station, seq=seq + 1, prev=prev, at=at, hlc=hlc,
            actor=who.actor, role=who.role, org=who.org, kind=kind, subject=subject, body=dict(body or {}),
        )
        if commit:
            self.heads[station] = (ev.seq, ev.hash)
            self.hlc = hlc
        return ev


def registration_body(code: str, received: list[str] | None = None, n: int = 1, *,
                      received_at: str | None = None, **applicant: Any) -> dict:
    names = material_names(code)
    received = names if received is None else received
    extra = {"received_at": received_at} if received_at else {}
    return {
        **extra,
        "case_no": f"{VILLAGE}-20260302-01-{n:04d}",
        "item": item(code),
        "applicant": {"name": "王秀英", "id_number": id_number(), "phone": "13800001234", **applicant},
        "materials": {m: ("received" if m in received else "missing") for m in names},
    }


def who_of(*people: Who):
    """A fold resolver for pure tests: the event's own claims, plus each person's department."""
    departments = {p.actor: p.department for p in people if p.department}

    def who(ev: Event) -> rules.Actor:
        actor = rules.claimed(ev)
        dept = departments.get(ev.actor)
        return rules.Actor(actor.user, actor.role, actor.org, actor.level, dept) if dept else actor

    return who


@dataclass
class CaseSim:
    """One case driven through :func:`schema.rules.apply`; keeps the events it accepted."""

    chains: Chains
    code: str
    who: Who = AGENT
    received: list[str] | None = None
    case_id: str = "case-1"
    received_at: str | None = None  # 补录: the date in the paper register
    people: tuple[Who, ...] = ()  # people with a department (联办意见)
    view: CaseView = field(init=False)
    events: list[Event] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        self.resolve = who_of(*self.people)
        body = registration_body(self.code, self.received, received_at=self.received_at)
        ev = self.chains.build(K.CASE_REGISTERED, self.case_id, body, self.who)
        self.view = rules.apply(None, ev, self.resolve)
        self.events.append(ev)

    def event(self, kind: str, who: Who, *, at: str | None = None, commit: bool = True, **body: Any) -> Event:
        return self.chains.build(kind, self.case_id, body, who, at=at, commit=commit)

    def do(self, kind: str, who: Who, *, at: str | None = None, **body: Any) -> CaseView:
        """Apply an action that must be allowed."""
        ev = self.event(kind, who, at=at, **body)
        self.view = rules.apply(self.view, ev, self.resolve)
        self.events.append(ev)
        return self.view

    def refused(self, kind: str, who: Who, *, at: str | None = None, **body: Any) -> str:
        """Apply an action that must be refused; return the message. The view must not change."""
        before = self.view.to_dict()
        ev = self.event(kind, who, at=at, commit=False, **body)
        with pytest.raises(TransitionError) as info:
            rules.apply(self.view, ev, self.resolve)
        assert self.view.to_dict() == before, "a refused action changed the case"
        message = info.value.message
        assert any("\u4e00" <= c <= "\u9fff" for c in message), message
        return message

    def actor(self, who: Who) -> rules.Actor:
        """``who`` as the rules see them (for allowed_actions)."""
        ev = self.chains.build(K.CASE_ID_VIEWED, self.case_id, {}, who, commit=False)
        return self.resolve(ev)

    def offered(self, who: Who, at: str | None = None) -> set[str]:
        """The kinds the menu offers ``who`` now."""
        return {a.kind for a in rules.allowed_actions(self.view, self.actor(who), at or self.view.last_at)}


# -- real stations ------------------------------------------------------------------------------------

PIN = "Xiang-2026"
T0 = "2026-03-02T09:00:00+08:00"  # a Monday; no holiday that week or the next


def make_station(root: Path, *, org: str = VILLAGE, role: Role = Role.AGENT, login: str = "agent1",
                 name: str = "东村便民服务室", station_no: int = 1):
    from station.session import init_station

    return init_station(root, org=org, name=name, login=login, role=role, pin=PIN, station_no=station_no)


def know(session, *stations) -> None:
    """Let ``session`` know other stations as enrollment and a pull would (its station registry):
    the fold judges every event by its station's enrolled org. Each of ``stations`` is an open
    Session or a ``(station id, org)`` pair."""
    from station.replication import registry

    with session.store.writing():
        for st in stations:
            sid, org = (st.config.station_id, st.config.org) if hasattr(st, "config") else st
            registry.remember(session.db, sid, org)


def receive(dst, events) -> int:
    """``dst`` stores honest events of other stations as a sync would, knowing their stations."""
    events = list(events)
    know(dst, *{(e.station, e.org) for e in events if e.station != dst.config.station_id})
    return dst.store.ingest(events)


def copy_events(src, dst) -> int:
    """What a sync through the county gives ``dst``: ``src``'s events, ``src`` in its registry."""
    know(dst, src)
    return dst.store.ingest(list(src.store.events()))


def case_count(session) -> int:
    return session.db.execute_sql("SELECT count(*) FROM case_view").fetchone()[0]


def case_rows(session) -> list[tuple]:
    return session.db.execute_sql("SELECT * FROM case_view ORDER BY case_id").fetchall()


LONG_TESTS = os.environ.get("STATION_LONG_TESTS") == "1"


def scaled(n: int) -> int:
    """Example counts for property tests: ×20 in the long mode (STATION_LONG_TESTS=1)."""
    return n * 20 if LONG_TESTS else n
