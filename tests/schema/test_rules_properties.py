"""Properties of the case rules under random actions by random people (hypothesis).

(a) the menus and the fold agree: for every case reached, an action is offered to a person
    exactly when some input to it is accepted by the fold (tests/schema/test_rules.py has the
    examples; this is the proof over random histories);
(b) a state machine drives several cases through whole lives — mostly actions the menus offer,
    inputs built by each action's own ``prepare`` — and the case invariants hold after every
    step; a tally proves every action was taken in the run;
(c) any two replicas holding the same events compute the same case, whatever the order;
(d) events that break the rules (or are malformed) become conflicts, never exceptions.
"""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from schema import events as K
from schema import rules
from schema.case import CaseView, State
from schema.errors import TransitionError
from schema.events import Event, verify_chain
from schema.org import Level, OrgCode
from schema.rules import Action, Kind
from schema.workdays import WorkCalendar
from tests.helpers import (
    ADMIN,
    ADMIN_ELSEWHERE,
    AGENT,
    AGENT2,
    BIRTH,
    CLERK,
    CLERK2,
    COUNTY,
    DIBAO,
    DISABLED_SUBSIDY,
    HOMESTEAD,
    ID_CARD,
    LAND,
    MEDICAL,
    OLD_AGE_CARD,
    PENSION,
    REVIEWER,
    TOWN,
    Chains,
    Who,
    registration_body,
    scaled,
    who_of,
)

# Joint items twice: 联办 needs the case at its deciding level, which random walks reach less often.
ITEMS = [PENSION, DIBAO, DISABLED_SUBSIDY, DISABLED_SUBSIDY, HOMESTEAD, HOMESTEAD, MEDICAL, BIRTH, LAND, ID_CARD,
         OLD_AGE_CARD]
INTAKE = [AGENT, AGENT, CLERK, REVIEWER]
DEPARTMENTS = (
    Who("reviewer", COUNTY, "cdpf-1", department="县残疾人联合会"),
    Who("clerk", TOWN, "land-1", department="乡镇自然资源所"),
    Who("clerk", TOWN, "farm-1", department="乡镇农业农村办"),
    Who("clerk", TOWN, "build-1", department="乡镇村镇建设办"),
)
ACTORS = [AGENT, AGENT2, CLERK, CLERK2, REVIEWER, ADMIN, ADMIN_ELSEWHERE, *DEPARTMENTS]
WHO = who_of(*ACTORS)
KINDS = sorted([*rules.ACTIONS, *rules.AUDIT_KINDS])
CLOSED = {State.DONE, State.DELIVERED, State.REFUSED, State.LAPSED, State.VOIDED}
ACCEPTED_STATES = {State.IN_PROGRESS, State.SUSPENDED, State.RETURNED, State.TRANSFERRED, State.DONE,
                   State.DELIVERED}
ENDERS = frozenset({K.CASE_REFUSED, K.CASE_VOIDED, K.CASE_VOID_APPROVED, K.CASE_LAPSED})
STATIONS = ["a", "b"]  # several terminals per level: each org's events come from one of two stations
CALENDAR = WorkCalendar({})
RANDOM: Counter[str] = Counter()  # actions random histories applied in this run (printed, floor checked)
EXPLICIT: Counter[str] = Counter()  # actions the scripted whole lives applied (every action, always)


class Env:
    def __init__(self, today: date, actor: rules.Actor) -> None:
        self.today, self.calendar, self.actor = today, CALENDAR, actor


def actor_of(who: Who) -> rules.Actor:
    return WHO(Chains().build(K.CASE_ID_VIEWED, "x", {}, who, commit=False))


# -- inputs ------------------------------------------------------------------------------------------------


def candidates(action: Action, view: CaseView, today: date) -> list[dict[str, Any]]:
    """A small exhaustive set of valid-looking inputs for ``action`` on ``view`` (at most 64)."""
    per_field = []
    for f in action.fields:
        options = [v for v, _ in f.options(view)]
        if f.kind is Kind.CHOICE:
            values = options or [None]
        elif f.kind is Kind.MULTI:
            values = [options, options[:1]] if options else [[]]
        elif f.kind is Kind.INT:
            values = [f.min_value or 1, 3]
        elif f.kind is Kind.BOOL:
            values = [False, True]
        elif f.kind is Kind.DATE:
            values = [(today + timedelta(days=14)).isoformat()]
        else:
            values = ["说明"] if f.required else ["说明", ""]
        per_field.append([(f.name, v) for v in values])
    combos = [dict(c) for c in itertools.product(*per_field)]
    return combos[:64]


def bodies(action: Action, view: CaseView, who: Who, today: date) -> list[dict[str, Any]]:
    env = Env(today, actor_of(who))
    out = []
    for values in candidates(action, view, today):
        try:
            out.append(action.prepare(view, values, env))
        except (ValueError, TypeError):
            continue
    return out


def body_for(draw, action: Action, view: CaseView, who: Who, today: date) -> dict[str, Any]:
    """Mostly an input the action's own ``prepare`` builds; sometimes a field left out or emptied."""
    options = bodies(action, view, who, today) or [{}]
    body = dict(draw(st.sampled_from(options)))
    if body and draw(st.integers(0, 9)) == 0:
        key = draw(st.sampled_from(sorted(body)))
        body[key] = draw(st.sampled_from([None, "", [], 0]))
    return body


def accepted_by_fold(view: CaseView, ev: Event) -> bool:
    try:
        rules.apply(CaseView.from_dict(view.to_dict()), ev, WHO)
    except TransitionError:
        return False
    return True


# -- invariants ---------------------------------------------------------------------------------------------


def check_invariants(v: CaseView) -> None:
    assert isinstance(v.state, State)
    if v.state.is_open:
        assert v.result_code is None and v.closed_at is None, v.to_dict()
    else:
        assert v.state in CLOSED
        assert v.result_code is not None and v.closed_at, v.to_dict()
    assert v.holder_level == OrgCode(v.holder_org).level.value
    assert v.intake_level == OrgCode(v.intake_org).level.value
    assert len(v.path) == Level(v.holder_level).rank - Level(v.intake_level).rank
    if v.state in ACCEPTED_STATES:
        assert v.accepted_at is not None, v.to_dict()
    open_pauses = [p for p in v.pauses if p[1] is None]
    assert len(open_pauses) <= 1
    if open_pauses:
        assert v.pauses[-1][1] is None  # only the latest pause can still be running
    paused = v.state is State.SUSPENDED or (v.state is State.AWAITING_SUPPLEMENT and v.accepted_at is not None)
    assert bool(open_pauses) == paused, v.to_dict()
    assert (v.special is not None) == (v.state is State.SUSPENDED)
    assert len(v.ratings) <= rules.MAX_RATINGS
    assert set(v.materials) == {m["name"] for m in v.item["materials"]}
    if v.state is State.AWAITING_SUPPLEMENT:
        assert v.supplement_deadline and v.missing_notice
    if v.rectify is not None:
        assert any(r["level"] <= 2 for r in v.ratings)
    assert set(v.co_opinions) <= set(v.co_dispatch)


# -- random histories --------------------------------------------------------------------------------------


class History:
    """Random histories of several cases, sealed by several stations."""

    def __init__(self, draw) -> None:
        self.draw = draw
        self.chains = Chains()
        self.views: dict[str, CaseView] = {}
        self.events: dict[str, list[Event]] = {}
        self.refusals = 0
        self.applied: Counter[str] = Counter()

    def station_of(self, who: Who) -> str:
        return f"st-{who.org}-{self.draw(st.sampled_from(STATIONS))}"

    @property
    def next_at(self) -> str:
        return (self.chains.now + timedelta(minutes=1)).isoformat(timespec="seconds")

    def register(self) -> str:
        draw = self.draw
        code, who = draw(st.sampled_from(ITEMS)), draw(st.sampled_from(INTAKE))
        case_id = f"case-{len(self.views) + 1}"
        names = [m["name"] for m in registration_body(code)["item"]["materials"]]
        received = draw(st.sampled_from([names, names, names[1:], []]))
        body = registration_body(code, received, n=len(self.views) + 1)
        ev = self.chains.build(K.CASE_REGISTERED, case_id, body, who, station=self.station_of(who))
        self.views[case_id] = rules.apply(None, ev, WHO)
        self.events[case_id] = [ev]
        return case_id

    def offered(self, view: CaseView) -> list[tuple[Who, Action]]:
        at = self.next_at
        return [(who, a) for who in ACTORS for a in rules.allowed_actions(view, actor_of(who), at)]

    def pick_action(self, view: CaseView) -> tuple[Who, Action | None, str]:
        """Mostly an action the menus offer someone (so whole lives happen), sometimes anything.

        The action is drawn first, then who takes it: an action many people may take (好差评,
        作废 by the admin) is not picked more often than one only the holder may (转报)."""
        draw = self.draw
        offered: dict[str, list[tuple[Who, Action]]] = {}
        for who, action in self.offered(view):
            offered.setdefault(action.kind, []).append((who, action))
        if offered and draw(st.integers(0, 6)) > 0:
            # Actions that end a case early are drawn less often, so most cases live long enough
            # to reach 联办, 公示, 决定 and 好差评.
            kinds = [k for k in sorted(offered) for _ in range(1 if k in ENDERS else 4)]
            who, action = draw(st.sampled_from(offered[draw(st.sampled_from(kinds))]))
            return who, action, action.kind
        kind = draw(st.sampled_from(KINDS))
        return draw(st.sampled_from(ACTORS)), rules.ACTIONS.get(kind), kind

    def step(self, case_id: str, *, keep_refused: bool = False) -> bool:
        """One random action on the case; returns whether the rules allowed it."""
        draw = self.draw
        if draw(st.integers(0, 3)) == 0:  # time passes: deadlines (补正, 公示) run out
            self.chains.advance(days=draw(st.sampled_from([1, 3, 8, 35])))
        view = self.views[case_id]
        who, action, kind = self.pick_action(view)
        today = self.chains.now.date()
        body = body_for(draw, action, view, who, today) if action is not None else {}
        offered = {a.kind for a in rules.allowed_actions(view, actor_of(who), self.next_at)}
        before = view.to_dict()
        ev = self.chains.build(kind, case_id, body, who, station=self.station_of(who), commit=False)
        try:
            rules.apply(view, ev, WHO)
        except TransitionError as e:
            assert e.message
            assert view.to_dict() == before, f"refused {kind} changed the case: {e.message}"
            self.refusals += 1
            if keep_refused:  # another replica may have allowed it: it is in the log all the same
                self.commit(case_id, ev)
            return False
        # whatever the rules allow, the menus offered
        assert kind in offered or kind in rules.AUDIT_KINDS, (kind, who, before["state"])
        self.applied[kind] += 1
        self.commit(case_id, ev)
        return True

    def commit(self, case_id: str, ev: Event) -> None:
        who = next(w for w in ACTORS if w.actor == ev.actor) if any(w.actor == ev.actor for w in ACTORS) else Who(
            ev.role, ev.org, ev.actor)
        committed = self.chains.build(ev.kind, ev.subject, ev.body, who, station=ev.station, at=ev.at)
        assert committed.hash == ev.hash
        self.events[case_id].append(committed)

    def all_events(self) -> list[Event]:
        return [e for evs in self.events.values() for e in evs]


# -- (a) the menus and the fold agree ----------------------------------------------------------------------


def assert_menu_agrees(h: History, view: CaseView) -> None:
    at = h.next_at
    today = h.chains.now.date()
    for who in ACTORS:
        offered = {a.kind for a in rules.allowed_actions(view, actor_of(who), at)}
        for action in rules.REGISTRY.actions:
            candidates_ = bodies(action, view, who, today)
            if action.kind not in offered:
                candidates_ = candidates_[:1]  # refused before the body is read: one is enough
            accepted = any(
                accepted_by_fold(view, h.chains.build(action.kind, view.case_id, body, who, commit=False))
                for body in candidates_
            )
            if action.kind in offered:
                assert accepted, f"the menu offers {action.label} to {who} but no input is accepted ({view.state})"
            else:
                assert not accepted, f"the fold accepts {action.label} from {who} though the menu hides it"


@settings(max_examples=scaled(25), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_the_menu_offers_exactly_what_the_fold_accepts(data):
    h = History(data.draw)
    case_id = h.register()
    for _ in range(data.draw(st.integers(0, 15))):
        assert_menu_agrees(h, h.views[case_id])
        h.step(case_id)
    assert_menu_agrees(h, h.views[case_id])
    RANDOM.update(h.applied)


# -- (b) the state machine --------------------------------------------------------------------------------------


class CaseMachine(RuleBasedStateMachine):
    """Always something to do: register (up to 4 cases) or act on one (an offered action mostly)."""

    def __init__(self) -> None:
        super().__init__()
        self.history: History | None = None

    @precondition(lambda self: self.history is None or len(self.history.views) < 4)
    @rule(data=st.data())
    def register(self, data) -> None:
        if self.history is None:
            self.history = History(data.draw)
        self.history.draw = data.draw
        self.history.register()

    @precondition(lambda self: self.history is not None)
    @rule(data=st.data())
    def act(self, data) -> None:
        h = self.history
        h.draw = data.draw
        case_id = data.draw(st.sampled_from(sorted(h.views)))
        for _ in range(data.draw(st.integers(1, 8))):
            h.step(case_id)

    @invariant()
    def cases_are_consistent(self) -> None:
        if self.history is None:
            return
        for case_id, view in self.history.views.items():
            check_invariants(view)
            # the incrementally applied case equals the fold of its events
            assert rules.fold(self.history.events[case_id], WHO).to_dict() == view.to_dict()

    def teardown(self) -> None:
        if self.history is not None:
            RANDOM.update(self.history.applied)


CaseMachine.TestCase.settings = settings(max_examples=scaled(40), stateful_step_count=40, deadline=None,
                                         suppress_health_check=[HealthCheck.too_slow])
TestCaseMachine = CaseMachine.TestCase


def _walk(h: History, case_id: str, script: list[tuple[Who, str, Any]]) -> CaseView:
    """Apply a fixed script, one day apart; a body may be a function of that day's date."""
    for who, kind, body in script:
        h.chains.advance(days=1)
        today = h.chains.now.date()
        body = body(today) if callable(body) else body
        ev = h.chains.build(kind, case_id, body, who, station=h.station_of(who))
        h.views[case_id] = rules.apply(h.views[case_id], ev, WHO)
        h.events[case_id].append(ev)
        h.applied[kind] += 1
    return h.views[case_id]


def scripted(code: str, who: Who = AGENT) -> tuple[History, str]:
    h = History(lambda strategy: "a")  # the only thing drawn here is a station: always "a"
    ev = h.chains.build(K.CASE_REGISTERED, "life", registration_body(code), who, station="st-x")
    h.views["life"], h.events["life"] = rules.apply(None, ev, WHO), [ev]
    return h, "life"


def test_life_with_nested_pauses_returns_rating_follow_up_and_rectification():
    """Paths random walks reach rarely: nested pauses, decided → delivered → rated → 追评 → 整改,
    and a case returned twice before it is decided."""
    h, case_id = scripted(DIBAO)
    bank = "本人银行账户（存折或银行卡）复印件"
    v = _walk(h, case_id, [
        (AGENT, K.CASE_ACCEPTED, {}),
        (AGENT, K.CASE_NOTIFIED_MISSING, {"missing": [bank], "deadline": "2026-04-30"}),  # pause 1 (补正)
        (AGENT, K.CASE_SUPPLEMENTED, {"materials": [bank]}),
        (AGENT, K.CASE_FORWARDED, {}), (CLERK, K.CASE_RECEIVED, {}),
        (CLERK, K.CASE_FORWARDED, {}), (REVIEWER, K.CASE_RETURNED, {"reason": "缺收入证明"}),
        (CLERK, K.CASE_RETURNED, {"reason": "请补充"}),
        (AGENT, K.CASE_FORWARDED, {}), (CLERK, K.CASE_RECEIVED, {}), (CLERK, K.CASE_FORWARDED, {}),
        (REVIEWER, K.CASE_RECEIVED, {}),
        (REVIEWER, K.CASE_SPECIAL_STARTED, lambda d: {"procedure": "verification", "reason": "入户", "days": 3,
                                                      "until": (d + timedelta(days=3)).isoformat()}),
        (REVIEWER, K.CASE_SPECIAL_ENDED, {"result": "属实"}),
        (REVIEWER, K.CASE_PUBLICITY_STARTED, lambda d: {"until": d.isoformat()}),
        (REVIEWER, K.CASE_PUBLICITY_ENDED, {"objection": False, "result": "无异议"}),
        (REVIEWER, K.CASE_SPECIAL_STARTED, {"procedure": "extension", "reason": "复杂", "days": 5}),
        (REVIEWER, K.CASE_DECIDED, {"outcome": "approved"}),
        (AGENT, K.CASE_DELIVERED, {"method": "村代办员代领"}),
        (AGENT, K.CASE_RATED, {"level": 2, "channel": "onsite", "rectify_verify_due": "2026-05-01",
                               "rectify_due": "2026-05-30"}),
        (CLERK2, K.CASE_RATED, {"level": 4, "channel": "phone"}),
        (REVIEWER, K.CASE_RECTIFY_VERIFIED, {"finding": "等待时间长"}),
        (REVIEWER, K.CASE_RECTIFY_CLOSED, {"measure": "immediate", "result": "已增加窗口"}),
    ])
    assert v.state is State.DELIVERED and [r["follow_up"] for r in v.ratings] == [False, True]
    assert v.rectify["closed_at"] and len(v.pauses) == 3 and all(p[1] for p in v.pauses)
    assert [s["result"] for s in v.stages] == ["forwarded", "forwarded", "returned", "returned", "forwarded",
                                               "forwarded", "decided"]
    check_invariants(v)
    EXPLICIT.update(h.applied)


def test_life_of_a_joint_item_voided_after_a_rejected_request():
    h, case_id = scripted(HOMESTEAD)
    depts = DEPARTMENTS[1:]
    v = _walk(h, case_id, [
        (AGENT, K.CASE_ACCEPTED, {}), (AGENT, K.CASE_FORWARDED, {}), (CLERK, K.CASE_RECEIVED, {}),
        (CLERK, K.CASE_CO_DISPATCHED, {"departments": [d.department for d in depts], "due": "2026-04-30"}),
        *[(d, K.CASE_CO_OPINION, {"department": d.department, "decision": "agree", "opinion": "同意"})
          for d in depts],
        (CLERK, K.CASE_VOID_REQUESTED, {"reason": "申请人撤回"}),
        (REVIEWER, K.CASE_VOID_REJECTED, {"reason": "请先核实"}),
        (CLERK, K.CASE_VOID_REQUESTED, {"reason": "申请人书面撤回"}),
        (REVIEWER, K.CASE_VOID_APPROVED, {}),
    ])
    assert v.state is State.VOIDED and len(v.co_opinions) == 3
    check_invariants(v)
    EXPLICIT.update(h.applied)


def test_lives_that_end_early():
    for script, state in [
        ([(AGENT, K.CASE_NOTIFIED_MISSING, {"missing": ["户口簿（首页及本人页）"], "deadline": "2026-03-03"}),
          (AGENT, K.CASE_LAPSED, {})], State.LAPSED),
        ([(AGENT, K.CASE_REFUSED, {"reason": "不属于受理范围"})], State.REFUSED),
        ([(AGENT, K.CASE_VOIDED, {"reason": "重复登记"})], State.VOIDED),
    ]:
        h, case_id = scripted(PENSION)
        assert _walk(h, case_id, script).state is state
        EXPLICIT.update(h.applied)


@pytest.fixture(scope="module", autouse=True)
def every_action_is_exercised():
    """Print what this module's random histories did; the scripted lives take every action, and the
    random ones must reach most of them too (a floor, not all: a run may miss a rare one)."""
    yield
    print("\nactions applied by random histories:", dict(sorted(RANDOM.items())))
    if EXPLICIT:  # skipped when a single test of the module runs alone
        scripted_missing = sorted(a.label for a in rules.REGISTRY.actions if not EXPLICIT[a.kind])
        assert not scripted_missing, f"no scripted life takes: {scripted_missing}"
    if sum(RANDOM.values()) > 500:
        reached = sum(1 for a in rules.REGISTRY.actions if RANDOM[a.kind])
        assert reached >= 0.8 * len(rules.REGISTRY.actions), f"random histories reached only {reached} actions"


# -- (c) convergence ------------------------------------------------------------------------------------------


def _history(draw, *, cases: int, steps: int, keep_refused: bool) -> History:
    h = History(draw)
    for _ in range(cases):
        h.register()
    for _ in range(steps):
        h.step(draw(st.sampled_from(sorted(h.views))), keep_refused=keep_refused)
    RANDOM.update(h.applied)
    return h


def _fold_by_case(events: list[Event]) -> dict[str, dict]:
    by_case: dict[str, list[Event]] = {}
    for ev in events:
        by_case.setdefault(ev.subject, []).append(ev)
    return {cid: rules.fold(evs, WHO).to_dict() for cid, evs in by_case.items()}


@settings(max_examples=scaled(40), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_any_arrival_order_folds_to_the_same_cases(data):
    h = _history(data.draw, cases=data.draw(st.integers(1, 3)), steps=data.draw(st.integers(0, 40)),
                 keep_refused=False)
    events = h.all_events()
    by_station: dict[str, list[Event]] = {}
    for ev in events:
        by_station.setdefault(ev.station, []).append(ev)
    for evs in by_station.values():  # the history really spans several stations, each a valid chain
        verify_chain(sorted(evs, key=lambda e: e.seq))
    expected = {cid: v.to_dict() for cid, v in h.views.items()}
    assert _fold_by_case(events) == expected
    assert _fold_by_case(data.draw(st.permutations(events))) == expected
    assert all(not v["conflicts"] or v["item"]["code"] == ID_CARD for v in expected.values())


# -- (d) broken rules become conflicts ------------------------------------------------------------------------


GARBAGE = {
    K.CASE_ACCEPTED: [{"rongque": 5}, {"rongque": "身份证", "promise": 3}],
    K.CASE_NOTIFIED_MISSING: [{"missing": 5, "deadline": "2026-01-01"}, {"missing": ["户口簿"], "deadline": "x"}],
    K.CASE_SUPPLEMENTED: [{"materials": 3}, {"materials": None}],
    K.CASE_SPECIAL_STARTED: [{"procedure": ["verification"], "reason": "x"}, {"procedure": 7, "days": "3"}],
    K.CASE_PUBLICITY_STARTED: [{"until": 5}, {"until": "tomorrow"}],
    K.CASE_CO_DISPATCHED: [{"departments": "x", "due": "2026-01-01"}, {"departments": [1]}],
    K.CASE_CO_OPINION: [{"department": None, "decision": "yes"}, {"department": ["a"]}],
    K.CASE_DECIDED: [{"outcome": ["approved"]}, {"outcome": None}],
    K.CASE_RATED: [{"level": "5", "channel": "onsite"}, {"level": 1, "channel": "onsite", "reasons": "x"}],
    K.CASE_REFUSED: [{"reason": 12345}, {"reason": None}],
    K.CASE_RETURNED: [{"reason": {"a": 1}}],
    K.CASE_VOIDED: [{"reason": []}],
}


def _garbage(draw, h: History, case_id: str) -> Event:
    """An authentic event whose content no rule expects, often aimed at an action the case offers."""
    offered = h.offered(h.views[case_id])
    if offered and draw(st.integers(0, 3)) > 0:
        who, action = draw(st.sampled_from(offered))
        kind = action.kind
    else:
        who = draw(st.sampled_from([Who("janitor", AGENT.org, "x"), Who("agent", "not-an-org", "x"), AGENT]))
        kind = draw(st.sampled_from(KINDS))
    body = draw(st.sampled_from(GARBAGE.get(kind, [{"x": 1}])))
    return h.chains.build(kind, case_id, body, who, station="st-rogue")


def test_malformed_registrations_never_break_the_fold():
    chains = Chains()
    good = registration_body(PENSION)
    bad_bodies = [
        {**good, "materials": {"居民身份证": "lost"}},
        {**good, "item": {"code": "X", "materials": [{"nom": "a"}]}},
        {**good, "item": "not an item"},
        {"case_no": "1"},
    ]
    for i, body in enumerate(bad_bodies):
        reg = chains.build(K.CASE_REGISTERED, f"c{i}", body, AGENT)
        acc = chains.build(K.CASE_ACCEPTED, f"c{i}", {}, AGENT)
        view = rules.fold([acc, reg])  # the case stays visible, its problems as conflicts
        assert view is not None and view.conflicts and view.events == 2
    for who in (Who("janitor", AGENT.org, "x"), Who("agent", "12", "x"), ADMIN):
        view = rules.fold([chains.build(K.CASE_REGISTERED, "c", good, who)])
        assert view is not None and len(view.conflicts) == 1
    with pytest.raises(TransitionError):
        rules.apply(None, chains.build(K.CASE_REGISTERED, "c", good, ADMIN))


@settings(max_examples=scaled(40), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_broken_rules_become_conflicts_and_never_raise(data):
    h = _history(data.draw, cases=2, steps=0, keep_refused=True)
    garbage = 0
    for _ in range(data.draw(st.integers(5, 40))):
        case_id = data.draw(st.sampled_from(sorted(h.views)))
        if data.draw(st.integers(0, 3)) == 0:  # a malformed event, in the middle of the history
            h.events[case_id].append(_garbage(data.draw, h, case_id))
            garbage += 1
        else:  # refused actions stay in the log too: another replica may have allowed them
            h.step(case_id, keep_refused=True)
    events = h.all_events()
    folded = _fold_by_case(events)
    assert _fold_by_case(data.draw(st.permutations(events))) == folded
    for evs in h.events.values():
        view = rules.fold(evs, WHO)
        check_invariants(view)
        assert view.events == len(evs)  # nothing is dropped: every event is applied or a conflict
        replay, refused = None, []
        for ev in sorted(evs, key=lambda e: e.order):  # replaying in order: the refused are the conflicts
            try:
                replay = rules.apply(replay, ev, WHO)
            except (TransitionError, TypeError, ValueError, KeyError, AttributeError):
                refused.append(ev.id)
        assert [c.event_id for c in view.conflicts if c.kind != K.CASE_REGISTERED] == refused
        assert len([c for c in view.conflicts if c.kind == K.CASE_REGISTERED]) <= 1
    assert h.refusals + garbage == 0 or any(v["conflicts"] for v in folded.values())


def test_events_before_their_registration_are_refolded_once_it_arrives():
    chains = Chains()
    reg = chains.build(K.CASE_REGISTERED, "c1", registration_body(PENSION), AGENT)
    acc = chains.build(K.CASE_ACCEPTED, "c1", {}, AGENT)
    fwd = chains.build(K.CASE_FORWARDED, "c1", {}, AGENT)
    assert rules.apply_or_conflict(None, acc) is None  # nothing to attach it to yet
    assert rules.fold([fwd, acc, reg]).to_dict() == rules.fold([reg, acc, fwd]).to_dict()
    assert rules.fold([fwd, acc, reg]).holder_level == "township"
    assert rules.fold([fwd, acc]) is None


def test_late_events_that_break_the_merged_order_are_kept_as_conflicts():
    """Two stations act on the same case concurrently: the later one in merged order is a conflict."""
    chains = Chains()
    reg = chains.build(K.CASE_REGISTERED, "c1", registration_body(PENSION), AGENT)
    acc = chains.build(K.CASE_ACCEPTED, "c1", {}, AGENT, station="village-pc-1")
    # the second PC of the same village had not seen the acceptance and voided the case
    void = chains.build(K.CASE_VOIDED, "c1", {"reason": "重复登记"}, AGENT, station="village-pc-2")
    fwd = chains.build(K.CASE_FORWARDED, "c1", {}, AGENT, station="village-pc-1")
    view = rules.fold([fwd, void, acc, reg])
    assert view.state is State.TRANSFERRED  # accepted, then forwarded: the void came too late
    assert [(c.event_id, c.kind) for c in view.conflicts] == [(void.id, K.CASE_VOIDED)]
    assert "作废须提交作废申请" in view.conflicts[0].reason
    assert view.events == 4


def test_clock_skew_does_not_change_the_outcome():
    """Order is by HLC, not by wall clock: a station whose clock is a day behind still sorts after."""
    chains = Chains()
    reg = chains.build(K.CASE_REGISTERED, "c1", registration_body(PENSION), AGENT)
    behind = (chains.now - timedelta(days=1)).isoformat()
    acc = chains.build(K.CASE_ACCEPTED, "c1", {}, AGENT, at=behind)
    assert acc.order > reg.order
    assert rules.fold([acc, reg]).state is State.IN_PROGRESS
