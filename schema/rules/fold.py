"""Folding a case's events into its view: the one place every rule object is applied.

:func:`apply` checks everything before it changes anything; :func:`fold` sorts by
``(hlc, station, seq)`` and turns every violation into a :class:`~schema.case.Conflict`, so
any two replicas holding the same events compute the same case and nothing typed is lost.

Who made an event is resolved by the caller (``who``): at a station and at the county it maps
the event's station to its enrolled org and level (the registry), never trusting the event's
own ``org``; :func:`claimed` (the event's own claims) is for pure tests and local checks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from schema import events as K
from schema.case import CaseView
from schema.errors import TransitionError, UserError
from schema.events import Event
from schema.rules.base import Actor, add_conflict, effective_at
from schema.rules.register import register

Who = Callable[[Event], Actor]  # raises TransitionError when the event's author cannot be trusted


def claimed(ev: Event) -> Actor:
    try:
        return Actor.claimed(ev)
    except (UserError, ValueError):
        raise TransitionError("操作人的角色或单位无效") from None


def apply(view: CaseView | None, ev: Event, who: Who = claimed) -> CaseView:
    """Apply ``ev`` to ``view`` in place (or create the view) and return it.

    Raises :class:`TransitionError` with a Chinese message if the event breaks a rule;
    ``view`` is then left unchanged.
    """
    from schema.rules import ACTIONS, AUDIT_KINDS, CASE_KINDS

    if ev.kind not in CASE_KINDS:
        raise TransitionError(f"未知的办件事件类型 {ev.kind}")
    actor = who(ev)
    if ev.kind == K.CASE_REGISTERED:
        if view is not None:
            raise TransitionError("该办件已登记，不能重复登记")
        created, problems = register(ev, actor)
        if problems:
            raise TransitionError(problems[0])
        return _touch(created, ev)
    if view is None:
        raise TransitionError("尚未收到该办件的登记信息")
    if ev.kind in AUDIT_KINDS:
        return _touch(view, ev)
    action = ACTIONS[ev.kind]
    at = effective_at(ev)
    if ev.body.get("effective_at") and at < view.registered_at:  # 补录 cannot predate the case itself
        raise TransitionError(f"补录的办理时间（{at[:16]}）不能早于收件时间（{view.registered_at[:16]}）")
    why = action.refusal(view, actor, at)
    if why:
        raise TransitionError(why)
    try:
        action.check(view, actor, ev.body, at)
    except (TypeError, KeyError, ValueError, AttributeError) as e:  # a body of the wrong shape
        raise TransitionError(f"事件内容无效（{type(e).__name__}）") from None
    action.effect(view, actor, ev.body, at, ev)
    return _touch(view, ev)


def _touch(view: CaseView, ev: Event) -> CaseView:
    view.events += 1
    view.last_order = list(ev.order)
    view.last_at = ev.at
    return view


def apply_or_conflict(view: CaseView | None, ev: Event, who: Who = claimed) -> CaseView | None:
    """Fold step: like :func:`apply`, but a rule violation becomes a conflict."""
    try:
        return apply(view, ev, who)
    except TransitionError as e:
        reason = e.message
    except (UserError, ValueError, TypeError, KeyError, AttributeError) as e:
        # Authentic but malformed (e.g. a list where a rule expects text): kept, never blocks the fold.
        reason = f"事件内容无效（{type(e).__name__}）"
    if view is None:
        if ev.kind == K.CASE_REGISTERED:  # kept, with its problems as conflicts
            try:
                actor = who(ev)
            except TransitionError as e:
                actor, problems = None, [e.message]
            if actor is not None:
                created, problems = register(ev, actor)
            else:
                created, _ = register(ev, _nobody(ev))
            for p in problems:
                add_conflict(created, ev, p)
            return _touch(created, ev)
        return None  # an action seen before its registration: refolded when it arrives
    add_conflict(view, ev, reason)
    return _touch(view, ev)


def _nobody(ev: Event) -> Actor:
    """A registration whose author cannot be trusted is still shown, held by its claimed org."""
    from schema.org import Level, OrgCode, Role

    try:
        org, level = ev.org, OrgCode(ev.org).level
    except UserError:
        org, level = "", Level.VILLAGE
    return Actor(ev.actor, Role.ADMIN, org, level)


def fold(events: Iterable[Event], who: Who = claimed) -> CaseView | None:
    """The case as the given events make it, whatever order they arrived in."""
    view: CaseView | None = None
    for ev in sorted(events, key=lambda e: e.order):
        view = apply_or_conflict(view, ev, who)
    return view
