"""作废. Before 受理 the intake station may void a case itself; once accepted, 作废 is a request
that a higher level approves or rejects (作废申请 → 审批). The county admin may void directly
anywhere in the county. 录入错误 records 删除办结 (code 3) instead of 作废办结 (code 2)."""

from __future__ import annotations

from typing import Any

from schema import events as K
from schema.case import CaseView, ResultCode, State
from schema.org import Role
from schema.rules.base import (
    ADMIN,
    CLERK,
    OPEN,
    REVIEWER,
    STAFF,
    Action,
    Actor,
    Field,
    Kind,
    Where,
    close,
    end_pause,
    text_of,
)

REASON = Field("reason", "作废原因", required=True)
ENTRY_ERROR = Field("entry_error", "录入错误（删除办结）", Kind.BOOL, help="办件是误录的，按删除办结处理")


def _void(view: CaseView, entry_error: bool, at: str) -> None:
    end_pause(view, at)
    view.special = None
    view.void_request = None
    close(view, State.VOIDED, ResultCode.DELETED if entry_error else ResultCode.VOIDED, at)


class Void(Action):
    kind = K.CASE_VOIDED
    name = "void"
    label = "作废"
    key = "z"
    done = "已作废"
    help = "作废尚未受理的办件（已受理的办件须提交作废申请，由上级审批；县管理员可直接作废）"
    states = OPEN
    roles = frozenset({*STAFF, ADMIN})
    where = Where.INTAKE
    fields = (REASON, ENTRY_ERROR)

    def precondition(self, view: CaseView, actor: Actor, at: str) -> str | None:
        if actor.role is Role.ADMIN:
            return None
        if view.accepted_at is not None:
            return "办件已受理，作废须提交作废申请，由上级审批"
        return None

    def check(self, view: CaseView, actor: Actor, body: dict[str, Any], at: str) -> None:
        text_of(body, "reason", "作废原因")

    def effect(self, view: CaseView, actor: Actor, body: dict[str, Any], at: str, ev) -> None:
        _void(view, bool(body.get("entry_error")), at)


class VoidRequest(Action):
    kind = K.CASE_VOID_REQUESTED
    name = "void-request"
    label = "申请作废"
    key = "v"
    done = "已提交作废申请"
    help = "已受理的办件需要作废时，写明原因提交上级审批"
    states = OPEN - {State.TRANSFERRED}  # the receiving level takes the case in first
    fields = (REASON, ENTRY_ERROR)

    def precondition(self, view: CaseView, actor: Actor, at: str) -> str | None:
        if view.accepted_at is None:
            return "办件尚未受理，可直接作废"
        if view.void_request:
            return "已有待审批的作废申请"
        return None

    def check(self, view: CaseView, actor: Actor, body: dict[str, Any], at: str) -> None:
        text_of(body, "reason", "作废原因")

    def effect(self, view: CaseView, actor: Actor, body: dict[str, Any], at: str, ev) -> None:
        view.void_request = {"reason": body["reason"], "entry_error": bool(body.get("entry_error")), "at": at,
                             "by": actor.user, "org": actor.org}


class _VoidDecision(Action):
    states = OPEN
    roles = frozenset({CLERK, REVIEWER, ADMIN})
    where = Where.ABOVE

    def precondition(self, view: CaseView, actor: Actor, at: str) -> str | None:
        if not view.void_request:
            return "没有待审批的作废申请"
        return None


class VoidApprove(_VoidDecision):
    kind = K.CASE_VOID_APPROVED
    name = "void-approve"
    label = "批准作废"
    key = "y"
    done = "已批准作废"
    help = "上级批准下级的作废申请，办件作废"
    fields = (Field("opinion", "审批意见"),)

    def effect(self, view: CaseView, actor: Actor, body: dict[str, Any], at: str, ev) -> None:
        assert view.void_request is not None
        _void(view, bool(view.void_request.get("entry_error")), at)


class VoidReject(_VoidDecision):
    kind = K.CASE_VOID_REJECTED
    name = "void-reject"
    label = "驳回作废申请"
    key = "w"
    done = "已驳回作废申请"
    help = "上级不同意作废，写明理由，办件继续办理"
    fields = (Field("reason", "驳回理由", required=True),)

    def check(self, view: CaseView, actor: Actor, body: dict[str, Any], at: str) -> None:
        text_of(body, "reason", "驳回理由")

    def effect(self, view: CaseView, actor: Actor, body: dict[str, Any], at: str, ev) -> None:
        view.void_request = None
