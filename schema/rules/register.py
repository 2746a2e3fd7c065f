"""收件登记: the event that creates a case, and the item snapshot it carries for life."""

from __future__ import annotations

from typing import Any

from schema.case import CaseView, Conflict, MaterialStatus, State
from schema.catalog import CaseType, Item, Policy
from schema.org import Level
from schema.rules.base import STAFF, Actor


def snapshot_item(item: Item, policy: Policy | None = None) -> dict[str, Any]:
    """The facts of a catalog item that a case keeps for its whole life.

    Copied into ``case.registered`` so that the fold never depends on which catalog version a
    replica happens to hold; ``policy`` is the county-wide limits of the catalog it came from.
    """
    legal, publicity = item.legal_limit, item.publicity
    immediate = item.case_type is CaseType.IMMEDIATE
    return {
        "code": item.impl_code,
        "name": item.name,
        "department": item.department,
        "case_type": str(item.case_type),
        "decide_level": str(item.decide_level),
        "immediate_levels": [lv.value for lv in item.immediate_at] if immediate else [],
        "promise_days": item.promise_limit.days,
        "promise_unit": str(item.promise_limit.unit),
        "legal_days": legal.days if legal else None,
        "legal_unit": str(legal.unit) if legal else None,
        "publicity_days": publicity.days if publicity else None,
        "publicity_unit": str(publicity.unit) if publicity else None,
        "supplement_days": item.supplement_limit.days,
        "supplement_unit": str(item.supplement_limit.unit),
        "village_may_accept": item.village_may_accept,
        "co_departments": list(item.co_departments),
        **(policy or Policy()).snapshot(),
        "materials": [{"name": m.name, "required": m.required, "rongque": m.rongque} for m in item.materials],
    }


def register(ev, actor: Actor) -> tuple[CaseView, list[str]]:
    """The case as its registration creates it, and what is wrong with the registration.

    Never raises for an authentic event, so a bad registration received by sync stays visible
    (as conflicts) instead of hiding the case and all that was done to it. An advise-only item
    registered at a village is already a conflict on the view; the other problems are returned
    for the caller.
    """
    b = ev.body
    problems: list[str] = []
    item = b.get("item") if isinstance(b.get("item"), dict) else {}
    if not b.get("case_no") or not item.get("code"):
        problems.append("办件登记缺少办件编号或事项")
    if actor.role not in STAFF:
        problems.append(f"{actor.role.label}不能登记办件")
    advice_only = actor.level is Level.VILLAGE and not item.get("village_may_accept", True)
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
    proxy = b.get("proxy") if isinstance(b.get("proxy"), dict) else None
    first = b.get("first_responder")
    view = CaseView(
        case_id=ev.subject,
        case_no=str(b.get("case_no") or ev.subject),
        item=item,
        applicant=dict(b.get("applicant") or {}) if isinstance(b.get("applicant"), dict) else {},
        materials=statuses,
        state=State.RECEIVED,
        intake_org=actor.org,
        intake_level=actor.level.value,
        holder_org=actor.org,
        holder_level=actor.level.value,
        registered_at=str(b.get("received_at") or ev.at),
        registered_by=actor.user,
        first_responder=first if isinstance(first, str) and first else actor.user,
        proxy=dict(proxy) if proxy else None,
        note=str(b.get("note") or ""),
    )
    if advice_only:  # kept but flagged: the catalog says villages only advise on this item
        view.conflicts.append(Conflict(ev.id, ev.kind, ev.at, ev.actor, "该事项村级仅可咨询，不能在村级登记办件"))
    return view, problems
