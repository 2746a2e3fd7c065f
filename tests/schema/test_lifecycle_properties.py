"""Properties of the case rulebook under random actions by random actors (hypothesis).

(a) a state machine drives several cases through random actions: allowed ones apply,
    refused ones raise TransitionError and leave the case untouched, and the case
    invariants hold after every step;
(b) any two replicas holding the same events compute the same case, whatever the order;
(c) events that break the rules (or are malformed) become conflicts, never exceptions.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from schema import events as K
from schema import lifecycle
from schema.case import CaseView, State
from schema.errors import TransitionError
from schema.events import Event, verify_chain
from schema.org import Level, OrgCode, Role
from tests.helpers import (
    ADMIN,
    ADMIN_ELSEWHERE,
    AGENT,
    AGENT2,
    BIRTH,
    CLERK,
    CLERK2,
    DIBAO,
    DISABLED_SUBSIDY,
    HOMESTEAD,
    ID_CARD,
    LAND,
    MEDICAL,
    OLD_AGE_CARD,
    PENSION,
    REVIEWER,
    Chains,
    Who,
    registration_body,
    scaled,
)

ITEMS = [PENSION, DIBAO, DISABLED_SUBSIDY, HOMESTEAD, MEDICAL, BIRTH, LAND, ID_CARD, OLD_AGE_CARD]
INTAKE = [AGENT, CLERK, REVIEWER]
ACTORS = [AGENT, AGENT2, CLERK, CLERK2, REVIEWER, ADMIN, ADMIN_ELSEWHERE]
KINDS = sorted([*lifecycle.RULES, K.CASE_ID_VIEWED])
CLOSED = {State.DONE, State.DELIVERED, State.REFUSED, State.LAPSED, State.VOIDED}
ACCEPTED_STATES = {State.IN_PROGRESS, State.SUSPENDED, State.RETURNED, State.DONE, State.DELIVERED}
# Several terminals per level: each org's events come from one of two stations.
STATIONS = ["a", "b"]


def body_for(kind: str, view: CaseView, draw, today: str) -> dict[str, Any]:
    """A plausible body for ``kind``; often valid, sometimes not."""
    materials = sorted(view.materials)
    some = st.lists(st.sampled_from(materials), max_size=3, unique=True) if materials else st.just([])
    text = st.sampled_from(["", "  ", "理由说明"])
    if kind == K.CASE_ACCEPTED:
        return {"rongque": draw(some)}
    if kind == K.CASE_NOTIFIED_MISSING:
        missing = draw(st.one_of(some, st.just(["不存在的材料"])))
        deadline = draw(st.sampled_from([None, today, "2026-03-05", "2026-04-30"]))
        return {"missing": missing, **({"deadline": deadline} if deadline else {})}
    if kind == K.CASE_SUPPLEMENTED:
        outstanding = [m for m, s in view.materials.items() if s != "received"]
        pick = st.just(outstanding) if outstanding else some
        return {"materials": draw(st.one_of(pick, some))}
    if kind in (K.CASE_REFUSED, K.CASE_RETURNED):
        return {"reason": draw(text)}
    if kind == K.CASE_VOIDED:
        return {"reason": draw(text), "entry_error": draw(st.booleans())}
    if kind == K.CASE_SPECIAL_STARTED:
        return {"procedure": draw(st.sampled_from(["extension", "publicity", "verification", "other", "nap"])),
                "reason": draw(text), "days": draw(st.sampled_from([None, 7]))}
    if kind == K.CASE_CO_OPINION:
        depts = list(view.item.get("co_departments") or []) + ["县公安局"]
        return {"department": draw(st.sampled_from(depts)), "agree": draw(st.booleans()), "opinion": ""}
    if kind == K.CASE_DECIDED:
        return {"outcome": draw(st.sampled_from(["approved", "approved", "denied", "maybe"])),
                "opinion": draw(text), "certificate": draw(st.sampled_from(["", "C-1"]))}
    if kind == K.CASE_RATED:
        return {"level": draw(st.integers(0, 6)), "comment": ""}
    return {}


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
    assert len(v.ratings) <= lifecycle.MAX_RATINGS
    assert set(v.materials) == {m["name"] for m in v.item["materials"]}
    if v.state is State.AWAITING_SUPPLEMENT:
        assert v.supplement_deadline and v.missing_notice


class History:
    """Random histories of several cases, sealed by several stations."""

    def __init__(self, draw) -> None:
        self.draw = draw
        self.chains = Chains()
        self.views: dict[str, CaseView] = {}
        self.events: dict[str, list[Event]] = {}
        self.refusals = 0

    def station_of(self, who: Who) -> str:
        return f"st-{who.org}-{self.draw(st.sampled_from(STATIONS))}"

    def register(self) -> str:
        draw = self.draw
        code, who = draw(st.sampled_from(ITEMS)), draw(st.sampled_from(INTAKE))
        case_id = f"case-{len(self.views) + 1}"
        names = [m["name"] for m in registration_body(code)["item"]["materials"]]
        received = draw(st.sampled_from([names, names[:1], []]))
        body = registration_body(code, received, n=len(self.views) + 1)
        ev = self.chains.build(K.CASE_REGISTERED, case_id, body, who, station=self.station_of(who))
        self.views[case_id] = lifecycle.apply(None, ev)
        self.events[case_id] = [ev]
        return case_id

    def pick_action(self, view: CaseView) -> tuple[Who, str]:
        """Mostly an action the menus offer someone, sometimes anything by anyone."""
        draw = self.draw
        offered = [(who, r.kind) for who in ACTORS for r in lifecycle.allowed_actions(view, Role(who.role), who.org)]
        if offered and draw(st.integers(0, 4)) > 0:
            return draw(st.sampled_from(offered))
        return draw(st.sampled_from(ACTORS)), draw(st.sampled_from(KINDS))

    def step(self, case_id: str, *, keep_refused: bool = False) -> bool:
        """One random action on the case; returns whether the rules allowed it."""
        draw = self.draw
        if draw(st.integers(0, 5)) == 0:
            self.chains.advance(days=draw(st.integers(1, 40)))
        view = self.views[case_id]
        who, kind = self.pick_action(view)
        body = body_for(kind, view, draw, self.chains.now.date().isoformat())
        offered = {r.kind for r in lifecycle.allowed_actions(view, Role(who.role), who.org)}
        before = view.to_dict()
        ev = self.chains.build(kind, case_id, body, who, station=self.station_of(who), commit=False)
        try:
            lifecycle.apply(view, ev)
        except TransitionError as e:
            assert e.message
            assert view.to_dict() == before, f"refused {kind} changed the case: {e.message}"
            self.refusals += 1
            if keep_refused:  # another replica may have allowed it: it is in the log all the same
                self.commit(case_id, ev)
            return False
        # whatever the rules allow, the menus offered
        assert kind in offered or kind in lifecycle.AUDIT_KINDS, (kind, who, before["state"])
        self.commit(case_id, ev)
        return True

    def commit(self, case_id: str, ev: Event) -> None:
        committed = self.chains.build(ev.kind, ev.subject, ev.body, Who(ev.role, ev.org, ev.actor),
                                      station=ev.station, at=ev.at)
        assert committed.hash == ev.hash
        self.events[case_id].append(committed)

    def all_events(self) -> list[Event]:
        return [e for evs in self.events.values() for e in evs]


# -- (a) the state machine -----------------------------------------------------------------------------------


class CaseMachine(RuleBasedStateMachine):
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
        for _ in range(data.draw(st.integers(1, 4))):
            h.step(case_id)

    @invariant()
    def cases_are_consistent(self) -> None:
        if self.history is None:
            return
        for case_id, view in self.history.views.items():
            check_invariants(view)
            # the incrementally applied case equals the fold of its events
            assert lifecycle.fold(self.history.events[case_id]).to_dict() == view.to_dict()


CaseMachine.TestCase.settings = settings(max_examples=scaled(60), stateful_step_count=30, deadline=None,
                                         suppress_health_check=[HealthCheck.too_slow])
TestCaseMachine = CaseMachine.TestCase


# -- (b) convergence ------------------------------------------------------------------------------------------


def _history(draw, *, cases: int, steps: int, keep_refused: bool) -> History:
    h = History(draw)
    for _ in range(cases):
        h.register()
    for _ in range(steps):
        h.step(draw(st.sampled_from(sorted(h.views))), keep_refused=keep_refused)
    return h


def _fold_by_case(events: list[Event]) -> dict[str, dict]:
    by_case: dict[str, list[Event]] = {}
    for ev in events:
        by_case.setdefault(ev.subject, []).append(ev)
    return {cid: lifecycle.fold(evs).to_dict() for cid, evs in by_case.items()}


@settings(max_examples=scaled(60), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_any_arrival_order_folds_to_the_same_cases(data):
    h = _history(data.draw, cases=data.draw(st.integers(1, 3)), steps=data.draw(st.integers(0, 40)),
                 keep_refused=False)
    events = h.all_events()
    # the history really spans several stations, each a valid hash chain
    by_station: dict[str, list[Event]] = {}
    for ev in events:
        by_station.setdefault(ev.station, []).append(ev)
    for evs in by_station.values():
        verify_chain(sorted(evs, key=lambda e: e.seq))
    expected = {cid: v.to_dict() for cid, v in h.views.items()}
    assert _fold_by_case(events) == expected
    shuffled = data.draw(st.permutations(events))
    assert _fold_by_case(shuffled) == expected
    assert all(not v["conflicts"] or v["item"]["code"] == ID_CARD for v in expected.values())


# -- (c) broken rules become conflicts ------------------------------------------------------------------------


GARBAGE = {
    K.CASE_ACCEPTED: [{"rongque": 5}, {"rongque": "身份证"}],
    K.CASE_NOTIFIED_MISSING: [{"missing": 5, "deadline": "2026-01-01"}, {"missing": "户口簿", "deadline": "x"}],
    K.CASE_SUPPLEMENTED: [{"materials": 3}, {"materials": None}],
    K.CASE_SPECIAL_STARTED: [{"procedure": ["publicity"], "reason": "x"}, {"procedure": 7, "reason": None}],
    K.CASE_CO_OPINION: [{"department": None, "agree": "yes"}, {"department": ["a"]}],
    K.CASE_DECIDED: [{"outcome": ["approved"]}, {"outcome": None}],
    K.CASE_RATED: [{"level": "5"}, {"level": None}],
    K.CASE_REFUSED: [{"reason": 12345}, {"reason": None}],
    K.CASE_RETURNED: [{"reason": {"a": 1}}],
    K.CASE_VOIDED: [{"reason": []}],
}


def _garbage(draw, h: History, case_id: str) -> Event:
    """An authentic event whose content no rule expects, often aimed at an action the case offers."""
    view = h.views[case_id]
    offered = [(who, r.kind) for who in ACTORS for r in lifecycle.allowed_actions(view, Role(who.role), who.org)]
    if offered and draw(st.integers(0, 3)) > 0:
        who, kind = draw(st.sampled_from(offered))
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
        view = lifecycle.fold([acc, reg])  # the case stays visible, its problems as conflicts
        assert view is not None and view.conflicts and view.events == 2
    for who in (Who("janitor", AGENT.org, "x"), Who("agent", "12", "x"), ADMIN):
        reg = chains.build(K.CASE_REGISTERED, "c", good, who)
        view = lifecycle.fold([reg])
        assert view is not None and len(view.conflicts) == 1
    with __import__("pytest").raises(TransitionError):
        lifecycle.apply(None, chains.build(K.CASE_REGISTERED, "c", good, ADMIN))


@settings(max_examples=scaled(60), deadline=None, suppress_health_check=[HealthCheck.too_slow])
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
        view = lifecycle.fold(evs)
        check_invariants(view)
        assert view.events == len(evs)  # nothing is dropped: every event is applied or a conflict
        ordered = sorted(evs, key=lambda e: e.order)
        # replaying in order: exactly the events the rules refuse are the conflicts
        replay, refused = None, []
        for ev in ordered:
            try:
                replay = lifecycle.apply(replay, ev)
            except (TransitionError, TypeError, ValueError, KeyError, AttributeError):
                refused.append(ev.id)
        registration_conflicts = [c.event_id for c in view.conflicts if c.kind == K.CASE_REGISTERED]
        assert [c.event_id for c in view.conflicts if c.kind != K.CASE_REGISTERED] == refused
        assert len(registration_conflicts) <= 1
    assert h.refusals + garbage == 0 or any(v["conflicts"] for v in folded.values())


def test_events_before_their_registration_are_refolded_once_it_arrives():
    chains = Chains()
    reg = chains.build(K.CASE_REGISTERED, "c1", registration_body(PENSION), AGENT)
    acc = chains.build(K.CASE_ACCEPTED, "c1", {}, AGENT)
    fwd = chains.build(K.CASE_FORWARDED, "c1", {}, AGENT)
    assert lifecycle.apply_or_conflict(None, acc) is None  # nothing to attach it to yet
    assert lifecycle.fold([fwd, acc, reg]).to_dict() == lifecycle.fold([reg, acc, fwd]).to_dict()
    assert lifecycle.fold([fwd, acc, reg]).holder_level == "township"
    assert lifecycle.fold([fwd, acc]) is None


def test_late_events_that_break_the_merged_order_are_kept_as_conflicts():
    """Two stations act on the same case concurrently: the later one in merged order is a conflict."""
    chains = Chains()
    reg = chains.build(K.CASE_REGISTERED, "c1", registration_body(PENSION), AGENT)
    acc = chains.build(K.CASE_ACCEPTED, "c1", {}, AGENT, station="village-pc-1")
    # the second PC of the same village had not seen the acceptance and voided the case
    void = chains.build(K.CASE_VOIDED, "c1", {"reason": "重复登记"}, AGENT, station="village-pc-2")
    fwd = chains.build(K.CASE_FORWARDED, "c1", {}, AGENT, station="village-pc-1")
    view = lifecycle.fold([fwd, void, acc, reg])
    assert view.state is State.VOIDED
    assert [(c.event_id, c.kind) for c in view.conflicts] == [(fwd.id, K.CASE_FORWARDED)]
    assert "已作废" in view.conflicts[0].reason
    assert view.events == 4


def test_clock_skew_does_not_change_the_outcome():
    """Order is by HLC, not by wall clock: a station whose clock is a day behind still sorts after."""
    chains = Chains()
    reg = chains.build(K.CASE_REGISTERED, "c1", registration_body(PENSION), AGENT)
    behind = (chains.now - timedelta(days=1)).isoformat()
    acc = chains.build(K.CASE_ACCEPTED, "c1", {}, AGENT, at=behind)
    assert acc.order > reg.order
    assert lifecycle.fold([acc, reg]).state is State.IN_PROGRESS
