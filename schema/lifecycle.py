"""The case lifecycle: which event may change a case, who may make it, and how.

One function, :func:`apply`, is the whole rulebook. The station calls it
before appending an event (a refused action never enters the log) and every
replica calls it while folding (:func:`fold`): an event that breaks a rule
under the merged order is kept as a :class:`~schema.case.Conflict` on the
case, never dropped (DESIGN.md §4).

Practice types (domain.md §3): 即办件 are accepted and decided on the spot;
承诺件 are decided within the promised limit; 上报件 travel village → township
→ county, the lower level closing its part as 转报办结; 联办件 need every
co-department's opinion before approval; 答复件 end as 不予受理 with a
written reason; 补办件 go through 一次性告知 → 补正 → continue, or end as
补正不来 once the notice period has passed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from schema import events as K
from schema.authority import claim_problem
from schema.case import (
    CaseView,
    Conflict,
    MaterialStatus,
    Outcome,
    ResultCode,
    Special,
    State,
)
from schema.errors import TransitionError, UserError
from schema.events import Event
from schema.org import Level, OrgCode, Role

S = State
AGENT, CLERK, REVIEWER, ADMIN = Role.AGENT, Role.CLERK, Role.REVIEWER, Role.ADMIN
INTAKE_ROLES = frozenset({AGENT, CLERK, REVIEWER})

# The enrolled org of a station (None: not enrolled). Replicas fold with it, so what an event
# claims about its org and role is checked against who its station is (schema.authority).
Who = Callable[[str], "str | None"]


@dataclass(frozen=True, slots=True)
class Rule:
    kind: str
    label: str  # the action as the UI names it
    sources: frozenset[State]
    roles: frozenset[Role]
    where: str  # "holder": the level now holding the case; "intake": where it was registered; "either"


def _r(kind: str, label: str, sources: Iterable[State], roles: Iterable[Role], where: str = "holder") -> Rule:
    return Rule(kind, label, frozenset(sources), frozenset(roles), where)


OPEN = (S.RECEIVED, S.AWAITING_SUPPLEMENT, S.IN_PROGRESS, S.SUSPENDED, S.RETURNED)
RULES: dict[str, Rule] = {
    r.kind: r
    for r in (
        _r(K.CASE_ACCEPTED, "受理", [S.RECEIVED, S.AWAITING_SUPPLEMENT], INTAKE_ROLES),
        _r(K.CASE_NOTIFIED_MISSING, "一次性告知", [S.RECEIVED, S.IN_PROGRESS, S.RETURNED], INTAKE_ROLES),
        _r(K.CASE_SUPPLEMENTED, "补正", OPEN, INTAKE_ROLES, "either"),
        _r(K.CASE_LAPSED, "补正不来办结", [S.AWAITING_SUPPLEMENT], INTAKE_ROLES),
        _r(K.CASE_REFUSED, "不予受理", [S.RECEIVED, S.AWAITING_SUPPLEMENT], INTAKE_ROLES),
        _r(K.CASE_FORWARDED, "转报", [S.IN_PROGRESS, S.RETURNED], {AGENT, CLERK}),
        _r(K.CASE_RETURNED, "退回", [S.IN_PROGRESS, S.RETURNED], {CLERK, REVIEWER}),
        _r(K.CASE_SPECIAL_STARTED, "特别程序", [S.IN_PROGRESS], INTAKE_ROLES),
        _r(K.CASE_SPECIAL_ENDED, "结束特别程序", [S.SUSPENDED], INTAKE_ROLES),
        _r(K.CASE_CO_OPINION, "联办意见", [S.IN_PROGRESS], {CLERK, REVIEWER}),
        _r(K.CASE_DECIDED, "决定", [S.IN_PROGRESS], INTAKE_ROLES),
        _r(K.CASE_DELIVERED, "送达", [S.DONE], INTAKE_ROLES, "either"),
        _r(K.CASE_RATED, "好差评", [S.DONE, S.DELIVERED, S.REFUSED, S.LAPSED], INTAKE_ROLES, "either"),
        _r(K.CASE_VOIDED, "作废", OPEN, {AGENT, CLERK, REVIEWER, ADMIN}, "either"),
    )
}
# Events that record something about a case without being an action on it.
AUDIT_KINDS = frozenset({K.CASE_ID_VIEWED})
CASE_KINDS = frozenset({K.CASE_REGISTERED, *RULES, *AUDIT_KINDS})

MAX_RATINGS = 2  # one rating plus one follow-up (追评)


def snapshot_item(item: Any) -> dict[str, Any]:
    """The facts of a catalog item that a case keeps for its whole life.

    Copied into ``case.registered`` so that the fold never depends on which
    catalog version a replica happens to hold.
    """
    legal = item.legal_limit
    return {
        "code": item.impl_code,
        "name": item.name,
        "department": item.department,
        "case_type": str(item.case_type),
        "decide_level": str(item.decide_level),
        "promise_days": item.promise_limit.days,
        "promise_unit": str(item.promise_limit.unit),
        "legal_days": legal.days if legal else None,
        "legal_unit": str(legal.unit) if legal else None,
        "supplement_days": item.supplement_limit.days,
        "supplement_unit": str(item.supplement_limit.unit),
        "village_may_accept": item.village_may_accept,
        "co_departments": list(item.co_departments),
        "materials": [{"name": m.name, "required": m.required, "rongque": m.rongque} for m in item.materials],
    }


def _date(iso: str) -> str:
    return iso[:10]


def effective_at(ev: Event) -> str:
    """When the act happened: the paper date for 补录 entries, else the event time."""
    return ev.body.get("effective_at") or ev.at


def _fail(msg: str) -> None:
    raise TransitionError(msg)


def _county_admin(ev: Event) -> bool:
    return ev.role == ADMIN and OrgCode(ev.org).level is Level.COUNTY


def _check_actor(view: CaseView, ev: Event, rule: Rule) -> None:
    try:
        role = Role(ev.role)
        actor_org = OrgCode(ev.org)
    except Exception:
        _fail("操作人的角色或单位无效")
    if view.state not in rule.sources:
        _fail(f"办件当前状态为“{view.state.label}”，不能{rule.label}")
    if role not in rule.roles:
        _fail(f"{role.label}不能对办件执行“{rule.label}”")
    if _county_admin(ev):  # the county admin may void anywhere in the county
        if not actor_org.covers(view.intake_org):
            _fail("该办件不在本单位管辖范围内")
        return
    at_holder = ev.org == view.holder_org
    at_intake = ev.org == view.intake_org
    ok = {"holder": at_holder, "intake": at_intake, "either": at_holder or at_intake}[rule.where]
    if not ok:
        where = {"holder": "当前经办", "intake": "收件", "either": "收件或当前经办"}[rule.where]
        _fail(f"只有{where}单位可以{rule.label}此办件（当前在{Level(view.holder_level).label}单位 {view.holder_org}）")


def _known(view: CaseView, material: str) -> None:
    if material not in view.materials:
        _fail(f"材料“{material}”不在该事项的材料清单中")


def _missing_required(item: dict[str, Any], materials: dict[str, str]) -> list[str]:
    required = [m["name"] for m in item.get("materials", []) if m.get("required", True)]
    return [m for m in required if materials.get(m) == MaterialStatus.MISSING]


def _require_text(ev: Event, key: str, what: str) -> str:
    text = str(ev.body.get(key) or "").strip()
    if not text:
        _fail(f"请填写{what}")
    return text


def _close(view: CaseView, state: State, code: ResultCode, at: str) -> None:
    view.state = state
    view.result_code = code.value
    view.closed_at = at
    view.level_closures[view.holder_level] = code.value


def _open_pause(view: CaseView, at: str, reason: str) -> None:
    view.pauses.append([at, None, reason])


def _end_pause(view: CaseView, at: str) -> None:
    if view.pauses and view.pauses[-1][1] is None:
        view.pauses[-1][1] = at


def register(ev: Event) -> tuple[CaseView, list[str]]:
    """The case as its registration creates it, and what is wrong with the registration.

    Never raises for an authentic event, so a bad registration received by
    sync stays visible (as conflicts) instead of hiding the case and all that
    was done to it. An advise-only item registered at a village is already a
    conflict on the view; the other problems are returned for the caller.
    """
    b = ev.body
    problems: list[str] = []
    advice_only = False
    item = b.get("item") if isinstance(b.get("item"), dict) else {}
    if not b.get("case_no") or not item.get("code"):
        problems.append("办件登记缺少办件编号或事项")
    try:
        role, level = Role(ev.role), OrgCode(ev.org).level.value
        if role not in INTAKE_ROLES:
            problems.append(f"{role.label}不能登记办件")
        elif level == Level.VILLAGE and not item.get("village_may_accept", True):
            advice_only = True
    except (UserError, ValueError):
        level = ""
        problems.append("操作人的角色或单位无效")
    given = b.get("materials") if isinstance(b.get("materials"), dict) else {}
    statuses = {}
    listed = item.get("materials") if isinstance(item.get("materials"), list) else []
    for m in listed:  # every material has a status; not ticked as received = missing
        name = m.get("name") if isinstance(m, dict) else None
        if not isinstance(name, str):
            problems.append("事项材料清单格式无效")
            continue
        status = given.get(name, MaterialStatus.MISSING)
        if not isinstance(status, str) or status not in MaterialStatus._value2member_map_:
            problems.append(f"材料“{name}”的状态无效")
            status = MaterialStatus.MISSING
        statuses[name] = MaterialStatus(status).value
    view = CaseView(
        case_id=ev.subject,
        case_no=str(b.get("case_no") or ev.subject),
        item=item,
        applicant=dict(b.get("applicant") or {}) if isinstance(b.get("applicant"), dict) else {},
        materials=statuses,
        state=State.RECEIVED,
        intake_org=ev.org,
        intake_level=level,
        holder_org=ev.org,
        holder_level=level,
        registered_at=str(b.get("received_at") or ev.at),
        registered_by=ev.actor,
        note=str(b.get("note") or ""),
    )
    if advice_only:  # kept but flagged: the catalog says villages only advise on this item
        view.conflicts.append(Conflict(ev.id, ev.kind, ev.at, ev.actor, "该事项村级仅可咨询，不能在村级登记办件"))
    return view, problems


def _apply_rule(view: CaseView, ev: Event) -> None:
    rule = RULES[ev.kind]
    _check_actor(view, ev, rule)
    b, at = ev.body, effective_at(ev)
    if b.get("effective_at") and at < view.registered_at:  # 补录 cannot predate the case itself
        _fail(f"补录的办理时间（{at[:16]}）不能早于收件时间（{view.registered_at[:16]}）")
    item = view.item
    kind = ev.kind
    if kind == K.CASE_ACCEPTED:
        if view.state is S.AWAITING_SUPPLEMENT and view.resume_state != S.RECEIVED:
            _fail("办件已受理，材料补齐后会自动恢复办理")
        if view.holder_level == Level.VILLAGE and not item.get("village_may_accept", True):
            _fail("该事项村级仅可咨询，不能在村级受理")
        rongque_ok = {m["name"] for m in item.get("materials", []) if m.get("rongque")}
        materials = dict(view.materials)
        for m in b.get("rongque") or []:
            _known(view, m)
            if m not in rongque_ok:
                _fail(f"材料“{m}”不允许容缺受理")
            if materials[m] == MaterialStatus.MISSING:
                materials[m] = MaterialStatus.RONGQUE.value
        missing = _missing_required(item, materials)
        if missing:
            _fail("材料不齐，不能受理，缺：" + "、".join(missing) + "（请先一次性告知）")
        view.materials = materials
        view.state = State.IN_PROGRESS
        view.resume_state, view.supplement_deadline, view.missing_notice = None, None, []
        view.accepted_at = at
    elif kind == K.CASE_NOTIFIED_MISSING:
        missing = list(b.get("missing") or [])
        if not missing:
            _fail("一次性告知须列出所缺的全部材料")
        for m in missing:
            _known(view, m)
        if not b.get("deadline"):
            _fail("一次性告知须写明补正期限")
        for m in missing:
            view.materials[m] = MaterialStatus.MISSING.value
        view.resume_state = view.state.value
        view.missing_notice = missing
        view.supplement_deadline = b["deadline"]
        if view.state in (S.IN_PROGRESS, S.RETURNED):
            _open_pause(view, at, "补正")
        view.state = State.AWAITING_SUPPLEMENT
    elif kind == K.CASE_SUPPLEMENTED:
        supplied = list(b.get("materials") or [])
        if not supplied:
            _fail("请选择补交的材料")
        for m in supplied:
            _known(view, m)
        for m in supplied:
            view.materials[m] = MaterialStatus.RECEIVED.value
        if view.state is S.AWAITING_SUPPLEMENT and not any(
            view.materials[m] == MaterialStatus.MISSING for m in view.missing_notice
        ):
            view.state = State(view.resume_state or S.RECEIVED)
            view.resume_state = None
            view.supplement_deadline = None
            view.missing_notice = []
            _end_pause(view, at)
    elif kind == K.CASE_LAPSED:
        if view.supplement_deadline and _date(at) <= view.supplement_deadline:
            _fail(f"补正期限（{view.supplement_deadline}）尚未届满，不能按补正不来办结")
        _end_pause(view, at)
        _close(view, State.LAPSED, ResultCode.LAPSED, at)
    elif kind == K.CASE_REFUSED:
        _require_text(ev, "reason", "不予受理的理由")
        if view.accepted_at is not None:  # awaiting 补正 after 受理: it ends by a decision or 补正不来
            _fail("办件已受理，不能再不予受理；材料补不来时请按补正不来办结")
        _close(view, State.REFUSED, ResultCode.RETURNED, at)
    elif kind == K.CASE_FORWARDED:
        level = Level(view.holder_level)
        decide = Level(item.get("decide_level", Level.COUNTY))
        if level.rank >= decide.rank:
            _fail(f"该事项由{decide.label}决定，本级不能再转报")
        parent = level.parent
        assert parent is not None
        view.path.append(view.holder_org)
        view.level_closures[view.holder_level] = ResultCode.FORWARDED.value
        view.holder_org = OrgCode(view.holder_org).ancestor(parent)
        view.holder_level = parent.value
        view.state = State.IN_PROGRESS
    elif kind == K.CASE_RETURNED:
        _require_text(ev, "reason", "退回理由")
        if not view.path:
            _fail("办件在收件单位，不能再退回；如需结束请作废或不予受理")
        view.holder_org = view.path.pop()
        view.holder_level = OrgCode(view.holder_org).level.value
        view.level_closures.pop(view.holder_level, None)
        view.state = State.RETURNED
    elif kind == K.CASE_SPECIAL_STARTED:
        try:
            proc = Special(b.get("procedure"))
        except ValueError:
            _fail("请选择特别程序种类（延长审批、公示、核查或其他）")
        reason = _require_text(ev, "reason", "特别程序的启动理由")
        view.special = {"procedure": proc.value, "reason": reason, "days": b.get("days"), "started_at": at}
        view.resume_state = view.state.value
        _open_pause(view, at, proc.label)
        view.state = State.SUSPENDED
    elif kind == K.CASE_SPECIAL_ENDED:
        view.special = None
        _end_pause(view, at)
        view.state = State(view.resume_state or S.IN_PROGRESS)
        view.resume_state = None
    elif kind == K.CASE_CO_OPINION:
        dept = str(b.get("department") or "")
        if dept not in item.get("co_departments", []):
            _fail(f"“{dept}”不是该事项的联办部门")
        view.co_opinions[dept] = {"agree": bool(b.get("agree")), "opinion": str(b.get("opinion") or ""), "at": at}
    elif kind == K.CASE_DECIDED:
        role = Role(ev.role)
        decide = Level(item.get("decide_level", Level.COUNTY))
        immediate = item.get("case_type") == "immediate"
        if role.level is not decide and not immediate:
            _fail(f"该事项由{decide.label}决定，{role.label}不能作出决定")
        try:
            outcome = Outcome(b.get("outcome"))
        except ValueError:
            _fail("请选择决定结果：准予或不予批准")
        if outcome is Outcome.DENIED:
            _require_text(ev, "opinion", "不予批准的理由")
        else:
            if view.outstanding_rongque:
                _fail("容缺材料尚未补齐，不能准予：" + "、".join(view.outstanding_rongque))
            co = item.get("co_departments") or []
            pending = [d for d in co if d not in view.co_opinions]
            if pending:
                _fail("联办部门意见未齐：" + "、".join(pending))
            against = [d for d in co if not view.co_opinions[d]["agree"]]
            if against:
                _fail("联办部门不同意，不能准予：" + "、".join(against))
        view.outcome = outcome.value
        code = ResultCode.RETURNED if outcome is Outcome.DENIED else (
            ResultCode.CERTIFICATE if b.get("certificate") else ResultCode.DONE
        )
        _close(view, State.DONE, code, at)
    elif kind == K.CASE_DELIVERED:
        view.state = State.DELIVERED
        view.delivered_at = at
    elif kind == K.CASE_RATED:
        level = b.get("level")
        if isinstance(level, bool) or not isinstance(level, int) or not 1 <= level <= 5:
            _fail("评价等级应为1到5（5为非常满意）")
        if len(view.ratings) >= MAX_RATINGS:
            _fail("每件办件只能评价一次并追评一次")
        view.ratings.append({"level": level, "comment": str(b.get("comment") or ""), "at": at,
                             "follow_up": bool(view.ratings)})
    elif kind == K.CASE_VOIDED:
        _require_text(ev, "reason", "作废原因")
        if not _county_admin(ev) and view.holder_org != view.intake_org:
            _fail("办件已转报上级，只能由上级退回后再作废")
        _end_pause(view, at)
        view.special = None
        code = ResultCode.DELETED if b.get("entry_error") else ResultCode.VOIDED
        _close(view, State.VOIDED, code, at)


def station_problem(ev: Event, who: Who | None) -> str | None:
    """Why ``ev``'s claimed org and role cannot be those of its station (``who``: the registry)."""
    if who is None:
        return None
    org = who(ev.station)
    if org is None:
        return "该记录来自未登记的工作站，不能确认其单位"
    return claim_problem(ev, org)


def apply(view: CaseView | None, ev: Event, *, who: Who | None = None) -> CaseView:
    """Apply ``ev`` to ``view`` in place (or create the view) and return it.

    Raises :class:`TransitionError` with a Chinese message if the event breaks
    a rule; ``view`` is then left unchanged. ``who`` (every replica passes it) gives the
    enrolled org of the event's station: an event claiming another org, or a role its
    station's level cannot hold, breaks a rule. Without it the event's claims are taken
    as they are (the station checking its own user's action, pure rule tests).
    """
    if ev.kind not in CASE_KINDS:
        raise TransitionError(f"未知的办件事件类型 {ev.kind}")
    problem = station_problem(ev, who)
    if problem is not None:
        raise TransitionError(problem)
    if ev.kind == K.CASE_REGISTERED:
        if view is not None:
            raise TransitionError("该办件已登记，不能重复登记")
        created, problems = register(ev)
        if problems:
            raise TransitionError(problems[0])
        return _touch(created, ev)
    if view is None:
        raise TransitionError("尚未收到该办件的登记信息")
    if ev.kind in AUDIT_KINDS:
        return _touch(view, ev)
    _apply_rule(view, ev)  # checks everything before it changes anything
    return _touch(view, ev)


def _touch(view: CaseView, ev: Event) -> CaseView:
    view.events += 1
    view.last_order = list(ev.order)
    view.last_at = ev.at
    return view


def apply_or_conflict(view: CaseView | None, ev: Event, *, who: Who | None = None) -> CaseView | None:
    """Fold step: like :func:`apply`, but a rule violation becomes a conflict."""
    try:
        return apply(view, ev, who=who)
    except TransitionError as e:
        reason = e.message
    except (UserError, ValueError, TypeError, KeyError, AttributeError) as e:
        # Authentic but malformed (e.g. a list where a rule expects text): kept, never blocks the fold.
        reason = f"事件内容无效（{type(e).__name__}）"
    if view is None:
        if ev.kind == K.CASE_REGISTERED:  # kept, with its problems as conflicts
            created, problems = register(ev)
            problem = station_problem(ev, who)
            if problem is not None:
                problems.insert(0, problem)
            created.conflicts.extend(Conflict(ev.id, ev.kind, ev.at, ev.actor, p) for p in problems)
            return _touch(created, ev)
        return None  # an action seen before its registration: refolded when it arrives
    view.conflicts.append(Conflict(ev.id, ev.kind, ev.at, ev.actor, reason))
    return _touch(view, ev)


def fold(events: Iterable[Event], *, who: Who | None = None) -> CaseView | None:
    """The case as the given events make it, whatever order they arrived in (``who``: see :func:`apply`)."""
    view: CaseView | None = None
    for ev in sorted(events, key=lambda e: e.order):
        view = apply_or_conflict(view, ev, who=who)
    return view


def allowed_actions(view: CaseView, role: Role, org: str) -> list[Rule]:
    """The actions this role at this org may take on the case now (for menus)."""
    out = []
    for rule in RULES.values():
        probe = Event(id="", station="", seq=0, prev="", at=view.last_at, hlc=0, actor="", role=role.value,
                      org=org, kind=rule.kind, subject=view.case_id)
        try:
            _check_actor(view, probe, rule)
        except TransitionError:
            continue
        if rule.kind == K.CASE_CO_OPINION and not view.item.get("co_departments"):
            continue
        if rule.kind == K.CASE_FORWARDED:
            if Level(view.holder_level).rank >= Level(view.item.get("decide_level", "county")).rank:
                continue
        if rule.kind == K.CASE_RETURNED and not view.path:
            continue
        if rule.kind == K.CASE_DECIDED:
            if role.level.value != view.item.get("decide_level") and view.item.get("case_type") != "immediate":
                continue
        if rule.kind == K.CASE_RATED and len(view.ratings) >= MAX_RATINGS:
            continue
        if rule.kind in (K.CASE_ACCEPTED, K.CASE_REFUSED) and view.accepted_at is not None:
            continue  # accepted, awaiting 补正: 受理/不予受理 are always refused
        if rule.kind == K.CASE_VOIDED and not _county_admin(probe) and view.holder_org != view.intake_org:
            continue  # forwarded: only the county admin may void it
        out.append(rule)
    return out
