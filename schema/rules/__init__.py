"""The case rules: one object per action (schema/rules/actions/), and the fold that applies them.

Everything that needs to know what an action is comes here: the fold
(:func:`apply`, :func:`fold`), the menus (:func:`allowed_actions`), the county's authority
check (:func:`roles_for`), the station's services (``station.services.cases.act``), the CLI
sub-commands and the UI dialogs (built from each action's :class:`Field` inputs), the
timeline's words and docs/case-rules.md (:func:`rules_table`).
"""

from __future__ import annotations

from schema import events as K
from schema.case import CaseView
from schema.org import Role
from schema.rules.actions.accept import Accept
from schema.rules.actions.co_dispatch import CoDispatch
from schema.rules.actions.co_opinion import CoOpinion
from schema.rules.actions.decide import Decide, approval_blockers
from schema.rules.actions.deliver import DELIVERY_METHODS, Deliver
from schema.rules.actions.forward import Forward
from schema.rules.actions.lapse import Lapse
from schema.rules.actions.notify_missing import NotifyMissing
from schema.rules.actions.publicity import PublicityEnd, PublicityStart
from schema.rules.actions.rate import MAX_RATINGS, Rate, RectifyClose, RectifyVerify
from schema.rules.actions.receive import Receive
from schema.rules.actions.refuse import Refuse
from schema.rules.actions.return_down import ReturnDown
from schema.rules.actions.special import SpecialEnd, SpecialStart
from schema.rules.actions.supplement import Supplement
from schema.rules.actions.void import Void, VoidApprove, VoidReject, VoidRequest
from schema.rules.base import STAFF, Action, Actor, Env, Field, Kind, Registry, Where
from schema.rules.fold import Who, apply, apply_or_conflict, claimed, fold
from schema.rules.register import register, snapshot_item

REGISTRY = Registry()
for _cls in (
    Receive, Accept, NotifyMissing, Supplement, Lapse, Refuse, Forward, ReturnDown, PublicityStart,
    PublicityEnd, SpecialStart, SpecialEnd, CoDispatch, CoOpinion, Decide, Deliver, Rate, RectifyVerify,
    RectifyClose, VoidRequest, VoidApprove, VoidReject, Void,
):
    REGISTRY.add(_cls())

ACTIONS: dict[str, Action] = REGISTRY.by_kind()
BY_NAME: dict[str, Action] = REGISTRY.by_name()
# Events that record something about a case without being an action on it.
AUDIT_KINDS = frozenset({K.CASE_ID_VIEWED, K.CASE_PRINTED})
CASE_KINDS = frozenset({K.CASE_REGISTERED, *ACTIONS, *AUDIT_KINDS})


def allowed_actions(view: CaseView, actor: Actor, at: str) -> list[Action]:
    """The actions ``actor`` may take on the case at ``at``, in menu order (exactly those the fold
    would not refuse for every body: tests/schema/test_rules_agreement.py)."""
    return [a for a in REGISTRY.actions if a.refusal(view, actor, at) is None]


def roles_for(kind: str) -> frozenset[Role]:
    """The roles that may ever record ``kind`` (the county refuses others at ingest)."""
    if kind == K.CASE_REGISTERED:
        return STAFF
    if kind in AUDIT_KINDS:
        return frozenset(Role)
    action = ACTIONS.get(kind)
    return action.roles if action is not None else frozenset()


__all__ = [
    "ACTIONS",
    "AUDIT_KINDS",
    "BY_NAME",
    "CASE_KINDS",
    "DELIVERY_METHODS",
    "MAX_RATINGS",
    "REGISTRY",
    "Action",
    "Actor",
    "Env",
    "Field",
    "Kind",
    "Where",
    "Who",
    "allowed_actions",
    "apply",
    "apply_or_conflict",
    "approval_blockers",
    "claimed",
    "fold",
    "register",
    "roles_for",
    "snapshot_item",
]
