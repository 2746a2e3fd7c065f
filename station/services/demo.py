"""``station demo-data``: a demo county with realistic history, for trying the
software and for benchmarks.

The demo county has 2 townships × 3 villages. Each village, township and the
county window is simulated as its own station writing its own hash chain, in
time order, through the real case rules; the data directory becomes the
county office's station, holding every chain as if it had all been synced.
Cases are spread over the past year, so old ones are finished and recent
ones sit in every open state.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from schema import events as K
from schema import hlc as HLC
from schema import rules
from schema.case import CaseView, State
from schema.catalog import CaseType, Item
from schema.events import GENESIS, Event, seal
from schema.ids import new_id
from schema.org import Level, Role
from schema.validation import id_check_char
from schema.workdays import TimeUnit
from station import clock
from station.config import DataDir
from station.replication import registry
from station.services import catalog as catalogs
from station.services import users
from station.session import Session, init_station, unlock
from station.store.store import Actor

COUNTY = ("330522000000", "演示县")
TOWNSHIPS = [("330522101000", "城关镇"), ("330522102000", "青山乡")]
VILLAGES = [
    ("330522101001", "东村"), ("330522101002", "西村"), ("330522101003", "南村"),
    ("330522102001", "上坪村"), ("330522102002", "下坪村"), ("330522102003", "石桥村"),
]  # fmt: skip
DEMO_PIN = "246810"
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程"
GIVEN = "秀英华明国建平兰芳军玉珍桂红春梅丽强伟杰勇敏静燕霞志刚德福海金凤云林荣生文永宝成"


@dataclass
class SimStation:
    """A station of the demo county writing its own chain."""

    station_id: str
    org: str
    name: str
    actor: Actor
    seq: int = 0
    prev: str = GENESIS
    hlc: int = 0
    day_counter: dict[str, int] = field(default_factory=dict)

    staff: dict[str, Actor] = field(default_factory=dict)  # department -> a co-department user here
    admin: Actor | None = None  # the station's first user (管理员), who adds the others

    def write(self, kind: str, subject: str, body: dict[str, Any], at: datetime, actor: Actor | None = None) -> Event:
        actor = actor or self.actor
        self.hlc = HLC.tick(self.hlc, clock.ms(at))
        self.seq += 1
        ev = seal(
            id=new_id(clock.ms(at)),
            station=self.station_id,
            seq=self.seq,
            prev=self.prev,
            at=clock.iso(at),
            hlc=self.hlc,
            actor=actor.user_id,
            role=actor.role.value,
            org=self.org,
            kind=kind,
            subject=subject,
            body=body,
        )
        self.prev = ev.hash
        return ev

    def next_case_no(self, at: datetime) -> str:
        day = f"{at:%Y%m%d}"
        self.day_counter[day] = self.day_counter.get(day, 0) + 1
        return f"{self.org}-{day}-01-{self.day_counter[day]:04d}"


def _station(org: str, name: str, role: Role, login: str, person: str) -> SimStation:
    admin = Actor(new_id(), Role.ADMIN, org, f"{name}管理员")
    return SimStation(new_id(), org, name, Actor(new_id(), role, org, person), hlc=0, admin=admin)


def fake_person(rng: random.Random, today) -> tuple[str, str, str]:
    name = rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))
    birth = today - timedelta(days=rng.randint(18 * 365, 90 * 365))
    first17 = f"330522{birth:%Y%m%d}{rng.randint(0, 999):03d}"
    phone = "1" + rng.choice("3589") + "".join(str(rng.randint(0, 9)) for _ in range(9))
    return name, first17 + id_check_char(first17), phone


@dataclass(order=True)
class Step:
    at: datetime
    order: int
    station: SimStation = field(compare=False)
    kind: str = field(compare=False)
    case_id: str = field(compare=False)
    body: dict[str, Any] = field(compare=False)
    actor: Actor | None = field(default=None, compare=False)


class CasePlanner:
    """Plans one case's history by running it through the real rules."""

    def __init__(self, rng: random.Random, now: datetime, cal, stations: dict[str, SimStation], policy) -> None:
        self.rng, self.now, self.cal, self.st, self.policy = rng, now, cal, stations, policy
        self.counter = 0
        departments = {a.user_id: dept for st in stations.values() for dept, a in st.staff.items()}

        def who(ev: Event) -> rules.Actor:
            actor = rules.claimed(ev)
            dept = departments.get(ev.actor, "")
            return rules.Actor(actor.user, actor.role, actor.org, actor.level, dept) if dept else actor

        self.who = who

    def day(self, t: datetime, n: int, unit: TimeUnit = TimeUnit.WORKDAY) -> str:
        return self.cal.add(t.date(), n, unit).date.isoformat()

    def plan(self, item: Item, village: str, start: datetime) -> list[Step]:
        rng = self.rng
        case_id = new_id(clock.ms(start))
        steps: list[Step] = []
        view: CaseView | None = None
        t = start
        # Some cases stall part-way (waiting on the applicant or an office), so every open state has cases.
        stop_after = rng.randint(1, 12) if rng.random() < 0.3 else 99

        def act(station: SimStation, kind: str, body: Any, gap_days: float, actor: Actor | None = None) -> bool:
            """``body`` may be a function of the moment the action happens (deadlines are counted from it)."""
            nonlocal view, t
            t = t + timedelta(days=gap_days, minutes=rng.randint(5, 240))
            if t > self.now or len(steps) >= stop_after:
                return False
            body = body(t) if callable(body) else body
            a = actor or station.actor
            ev = Event("", station.station_id, 0, "", clock.iso(t), 0, a.user_id, a.role.value, station.org, kind,
                       case_id, body)
            view = rules.apply(view, ev, self.who)  # the plan only contains what the rules allow
            self.counter += 1
            steps.append(Step(t, self.counter, station, kind, case_id, body, actor))
            return True

        agent = self.st[village]
        clerk = self.st[village[:9] + "000"]
        county = self.st[COUNTY[0]]
        name, idn, phone = fake_person(rng, start.date())
        mats = [m.name for m in item.materials]
        required = [m.name for m in item.materials if m.required]
        complete = rng.random() < 0.7
        received = mats if complete else [m for m in mats if rng.random() < 0.6]
        body = {
            "item": rules.snapshot_item(item, self.policy),
            "applicant": {
                "name": name,
                "doc_type": "resident_id",
                "id_number": idn,
                "gender": "男" if int(idn[16]) % 2 else "女",
                "birth_date": f"{idn[6:10]}-{idn[10:12]}-{idn[12:14]}",
                "phone": phone,
            },
            "materials": {m: ("received" if m in received else "missing") for m in mats},
            "received_at": clock.iso(start),
            "first_responder": agent.actor.user_id,
            "note": "",
            "case_no": "(numbered when written)",
        }
        if rng.random() < 0.15:  # a son or daughter came for an elderly parent
            pname, pid, pphone = fake_person(rng, start.date())
            body["proxy"] = {"name": pname, "relation": "子女", "doc_type": "resident_id", "doc_number": pid,
                             "phone": pphone}
        if not act(agent, K.CASE_REGISTERED, body, 0):
            return steps
        roll = rng.random()
        if roll < 0.03:
            act(agent, K.CASE_VOIDED, {"reason": "申请人撤回申请", "entry_error": False}, rng.random())
            return steps
        if roll < 0.07:
            act(agent, K.CASE_REFUSED, {"reason": "申请人不符合该事项的申请条件"}, rng.random())
            return steps
        missing = [m for m in required if m not in received]
        rongque_ok = {m.name for m in item.materials if m.rongque}
        notice = [m for m in missing if m not in rongque_ok]
        if notice:
            if not act(agent, K.CASE_NOTIFIED_MISSING,
                       lambda at: {"missing": notice, "opinion": "", "deadline": self.day(at, 30, TimeUnit.NATURAL)},
                       rng.random()):
                return steps
            if rng.random() < 0.1:
                act(agent, K.CASE_LAPSED, {"opinion": "逾期未补正"}, rng.randint(40, 55))
                return steps
            if not act(agent, K.CASE_SUPPLEMENTED, {"materials": notice}, rng.uniform(1, 10)):
                return steps
        assert view is not None
        rongque = [m for m in view.missing_required if m in rongque_ok]
        accept_body: Any = {"rongque": [], "opinion": ""}
        if rongque:
            accept_body = lambda at: {"rongque": rongque, "opinion": "", "promise": "申请人承诺10个工作日内补交",  # noqa: E731
                                      "rongque_due": self.day(at, 10)}
        if not act(agent, K.CASE_ACCEPTED, accept_body, rng.uniform(0, 1)):
            return steps
        if rongque and rng.random() < 0.9 and not act(agent, K.CASE_SUPPLEMENTED, {"materials": rongque},
                                                      rng.uniform(1, 8)):
            return steps
        decider = self._route(item, act, agent, clerk, county)
        if decider is None:
            return steps
        if not self._decide(item, act, view_of=lambda: view, decider=decider):
            return steps
        closer = decider
        if not act(agent, K.CASE_DELIVERED, {"method": "窗口领取" if decider is agent else "村代办员代领"},
                   0 if decider is agent else rng.uniform(1, 5)):
            return steps
        if rng.random() < 0.7:
            level = rng.choices([5, 4, 3, 2, 1], [70, 20, 6, 3, 1])[0]
            rate: dict[str, Any] = {"level": level, "channel": "onsite",
                                    "reasons": ["办事效率高"] if level > 3 else ["多次跑腿"],
                                    "comment": "" if level > 3 else "等待时间较长"}
            if level <= 2:
                rate = {**rate, "rectify_verify_due": self.day(t, 1), "rectify_due": self.day(t, 15)}
            if not act(agent, K.CASE_RATED, rate, 0):
                return steps
            if level <= 2:
                act(closer, K.CASE_RECTIFY_VERIFIED, {"finding": "申请人反映等待时间较长，情况属实"}, rng.uniform(0.2, 1))
                act(closer, K.CASE_RECTIFY_CLOSED, {"measure": "immediate", "result": "已向申请人解释并优化办理流程"},
                    rng.uniform(1, 10))
            if rng.random() < 0.1:
                act(agent, K.CASE_RATED, {"level": 5, "channel": "onsite", "reasons": [], "comment": "已解决，满意"},
                    rng.uniform(1, 10))
        return steps

    def _route(self, item: Item, act, agent: SimStation, clerk: SimStation, county: SimStation):
        """Forward up to the deciding level (接件 at each); returns the deciding station, or None."""
        rng = self.rng
        if item.case_type is CaseType.IMMEDIATE and Level.VILLAGE in item.immediate_at:
            return agent
        if not act(agent, K.CASE_FORWARDED, {"opinion": "材料齐全，同意上报"}, rng.uniform(0.5, 3)):
            return None
        if not act(clerk, K.CASE_RECEIVED, {"opinion": ""}, rng.uniform(0, 1)):
            return None
        if rng.random() < 0.06:
            if not act(clerk, K.CASE_RETURNED, {"reason": "材料复印件不清晰，请重新提供"}, rng.uniform(1, 3)):
                return None
            if not act(agent, K.CASE_FORWARDED, {"opinion": "已重新提供"}, rng.uniform(1, 4)):
                return None
            if not act(clerk, K.CASE_RECEIVED, {"opinion": ""}, rng.uniform(0, 1)):
                return None
        if item.decide_level is Level.TOWNSHIP:
            return clerk
        if not act(clerk, K.CASE_FORWARDED, {"opinion": "经审核，同意上报"}, rng.uniform(1, 4)):
            return None
        if not act(county, K.CASE_RECEIVED, {"opinion": ""}, rng.uniform(0, 1)):
            return None
        return county

    def _decide(self, item: Item, act, *, view_of, decider: SimStation) -> bool:
        rng = self.rng
        if item.publicity and decider is not None:
            if not act(decider, K.CASE_PUBLICITY_STARTED,
                       lambda at: {"note": "村务公开栏", "until": self.day(at, item.publicity.days, item.publicity.unit)},
                       rng.uniform(1, 5)):
                return False
            # ended after the period, which rolls past weekends and holidays (up to 国庆's week)
            if not act(decider, K.CASE_PUBLICITY_ENDED, {"objection": False, "result": "公示期满无异议"},
                       item.publicity.days + rng.uniform(8, 10)):
                return False
        if item.co_departments:
            if not act(decider, K.CASE_CO_DISPATCHED,
                       lambda at: {"departments": list(item.co_departments), "due": self.day(at, 5)}, rng.uniform(0, 1)):
                return False
            for dept in item.co_departments:
                staff = decider.staff[dept]
                if not act(decider, K.CASE_CO_OPINION, {"department": dept, "decision": "agree", "opinion": "同意"},
                           rng.uniform(1, 4), actor=staff):
                    return False
        if view_of().outstanding_rongque:  # the promised material never came: the case waits (电子监察 shows it)
            return False
        denied = rng.random() < 0.12
        body = (
            {"outcome": "denied", "opinion": "经调查核实，家庭收入超过当地标准", "certificate": ""}
            if denied
            else {"outcome": "approved", "opinion": "符合条件，准予", "certificate": ""}
        )
        immediate = item.case_type is CaseType.IMMEDIATE
        return act(decider, K.CASE_DECIDED, body, 0 if immediate else rng.uniform(2, 12))


def _demo_session(data: DataDir) -> Session:
    if data.exists():
        return unlock(data.root, "admin", DEMO_PIN)
    s = init_station(
        data.root,
        org=COUNTY[0],
        name=f"{COUNTY[1]}政务服务中心",
        login="admin",
        role=Role.ADMIN,
        pin=DEMO_PIN,
        user_name="县管理员",
    )
    users.add_user(s, "shenpi", Role.REVIEWER, DEMO_PIN, "审批员")
    return s


def simulate(
    *, cases: int, seed: int, cal, now: datetime, progress: Callable[[int], None] | None = None
) -> tuple[dict[str, SimStation], Iterator[Event]]:
    """The demo county's stations and every event they write, in time order (a generator:
    a 100k-case county is ~800k events, streamed rather than held)."""
    rng = random.Random(seed)
    sims = {COUNTY[0]: _station(COUNTY[0], "县政务服务中心窗口", Role.REVIEWER, "county", "县审批员")}
    for org, name in TOWNSHIPS:
        sims[org] = _station(org, f"{name}便民服务中心", Role.CLERK, f"clerk{org[6:9]}", f"{name}窗口员")
    for org, name in VILLAGES:
        sims[org] = _station(org, f"{name}便民服务室", Role.AGENT, f"agent{org[6:]}", f"{name}代办员")

    catalog = catalogs.current_catalog()
    for item in catalog.items:  # a user of each co-handling department, at the deciding level's station
        if item.co_departments:
            host = sims[COUNTY[0]] if item.decide_level is Level.COUNTY else None
            for st in [host] if host else [sims[org] for org, _ in TOWNSHIPS]:
                for dept in item.co_departments:
                    st.staff.setdefault(dept, Actor(new_id(), st.actor.role, st.org, f"{dept}经办人"))

    def events() -> Iterator[Event]:
        start = now - timedelta(days=365)
        for sim in sims.values():
            a = sim.actor
            yield sim.write(
                K.STATION_INITIALISED,
                sim.station_id,
                {"org": sim.org, "name": sim.name, "station_no": 1},
                start,
            )
            # As on a real station: its 管理员 is the first user and adds everyone else.
            for dept, person in [("", sim.admin), ("", a), *sim.staff.items()]:
                yield sim.write(
                    K.USER_ADDED,
                    person.user_id,
                    {"user_id": person.user_id, "login": person.name, "name": person.name,
                     "role": person.role.value, "org": sim.org, "department": dept},
                    start,
                    actor=sim.admin,
                )
        items = [i for i in catalog.items if i.village_may_accept]
        planner = CasePlanner(rng, now, cal, sims, catalog.policy)
        starts = sorted(start + timedelta(seconds=rng.uniform(0, 365 * 86400)) for _ in range(cases))
        # Working hours only: a village room opens 8:30–17:30.
        starts = [min(s.replace(hour=rng.randint(8, 17), minute=rng.randint(0, 59)), now) for s in starts]
        steps: list[Step] = []
        for n, s in enumerate(starts, 1):
            steps.extend(planner.plan(rng.choice(items), rng.choice(VILLAGES)[0], s))
            if progress and n % 1000 == 0:
                progress(n)
        steps.extend(_registers(rng, now, start, sims, items, planner, cases))
        steps.sort()
        for step in steps:
            body = step.body
            if step.kind == K.CASE_REGISTERED:
                body = {**body, "case_no": step.station.next_case_no(step.at)}
            yield step.station.write(step.kind, step.case_id, body, step.at, step.actor)

    return sims, events()


def _registers(rng: random.Random, now: datetime, start: datetime, sims: dict[str, SimStation], items: list[Item],
               planner: CasePlanner, cases: int) -> list[Step]:
    """咨询 (about half as many as cases) and a few 投诉, some forwarded up and most answered."""
    out: list[Step] = []
    for _ in range(cases // 2):
        village = rng.choice(VILLAGES)[0]
        at = start + timedelta(seconds=rng.uniform(0, 365 * 86400))
        item = rng.choice(items)
        planner.counter += 1
        out.append(Step(at, planner.counter, sims[village], K.CONSULT_RECORDED, new_id(clock.ms(at)),
                        {"item_code": item.impl_code, "item_name": item.name, "topic": "", "channel": "window",
                         "answer": "已告知所需材料和办理流程", "person": {},
                         "first_responder": sims[village].actor.user_id}))
    for n in range(max(1, cases // 100)):
        village = rng.choice(VILLAGES)[0]
        at = start + timedelta(seconds=rng.uniform(0, 360 * 86400))
        cid = new_id(clock.ms(at))
        due = planner.day(at, 10)
        planner.counter += 1
        out.append(Step(at, planner.counter, sims[village], K.COMPLAINT_FILED, cid,
                        {"about": "other", "case_no": "", "staff": "", "content": "办事等待时间较长",
                         "channel": "window", "complainant": {}, "due": due,
                         "complaint_no": f"TS-{village}-{at:%Y}-{n + 1:04d}"}))
        owner = sims[village]
        if rng.random() < 0.3:
            at += timedelta(days=rng.uniform(0.5, 2))
            planner.counter += 1
            out.append(Step(at, planner.counter, owner, K.COMPLAINT_FORWARDED, cid, {"opinion": "涉及乡镇窗口"}))
            owner = sims[village[:9] + "000"]
        at += timedelta(days=rng.uniform(1, 12))
        if at < now and rng.random() < 0.85:
            planner.counter += 1
            out.append(Step(at, planner.counter, owner, K.COMPLAINT_ANSWERED, cid,
                            {"result": "已核实并向投诉人说明情况，优化了排队流程"}))
    return out


def summary_of(states: dict[str, int], events: int, stations: int) -> str:
    total = sum(states.values())
    return (
        f"演示县已生成：{total} 件办件、{events} 条事件（{stations} 个模拟工作站）。"
        f"登录名 admin（管理员）或 shenpi（审批人员），PIN {DEMO_PIN}。\n"
        + "、".join(f"{State(k).label} {v}" for k, v in sorted(states.items()))
    )


def build_demo(
    root: str | Path,
    *,
    cases: int,
    seed: int = 1,
    progress: Callable[[int], None] | None = None,
    batch: int = 2000,
) -> dict[str, Any]:
    """The county office's station holding every simulated chain as if it had all been synced."""
    data = DataDir(root)
    with _demo_session(data) as session:
        sims, events = simulate(
            cases=cases, seed=seed, cal=session.store.cases.calendar(), now=clock.now(), progress=progress
        )
        with session.store.writing():  # as if each had enrolled: the fold judges events by their station
            for sim in sims.values():
                registry.remember(session.db, sim.station_id, sim.org, sim.name)
        written = 0
        pending: list[Event] = []
        for ev in events:
            pending.append(ev)
            if len(pending) >= batch * 5:
                written += session.store.ingest(pending)
                pending = []
        written += session.store.ingest(pending)
        states = dict(
            session.db.execute_sql("SELECT state, count(*) FROM case_view GROUP BY state").fetchall()
        )
    return {
        "cases": sum(states.values()),
        "events": written,
        "states": states,
        "summary": summary_of(states, written, len(sims)),
        "logins": ["admin", "shenpi"],
        "pin": DEMO_PIN,
    }
