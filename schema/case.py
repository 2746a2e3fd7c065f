"""What a case is at one moment: its state and the facts folded from its events.

:class:`CaseView` is the projection of one case. It is plain data so the
station can store it, the UI can show it and tests can compare two replicas.
The rules that change it are the action objects of :mod:`schema.rules`.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from schema.choices import parse_choice


class State(enum.StrEnum):
    RECEIVED = "received"  # 待受理: registered, materials checked, not yet accepted
    AWAITING_SUPPLEMENT = "awaiting_supplement"  # 待补正: 一次性告知 issued
    IN_PROGRESS = "in_progress"  # 办理中: accepted (clock running), possibly forwarded upward
    SUSPENDED = "suspended"  # 特别程序中: 延长/公示/核查, clock paused
    RETURNED = "returned"  # 已退回: sent back down by a higher level for correction
    TRANSFERRED = "transferred"  # 待接件: forwarded up, the receiving level has not taken it in yet
    DONE = "done"  # 已办结: decided, result not yet handed over
    DELIVERED = "delivered"  # 已送达: result collected or delivered
    REFUSED = "refused"  # 不予受理 (答复件)
    LAPSED = "lapsed"  # 补正不来办结
    VOIDED = "voided"  # 作废

    @property
    def label(self) -> str:
        return STATE_LABELS[self]

    @property
    def is_open(self) -> bool:
        return self in OPEN_STATES

    @classmethod
    def parse(cls, text: str) -> State:
        return parse_choice(cls, text, unknown="未知状态", field="state")


STATE_LABELS = {
    State.RECEIVED: "待受理",
    State.AWAITING_SUPPLEMENT: "待补正",
    State.IN_PROGRESS: "办理中",
    State.SUSPENDED: "特别程序中",
    State.RETURNED: "已退回",
    State.TRANSFERRED: "待接件",
    State.DONE: "已办结",
    State.DELIVERED: "已送达",
    State.REFUSED: "不予受理",
    State.LAPSED: "补正不来办结",
    State.VOIDED: "已作废",
}

OPEN_STATES = frozenset(
    {
        State.RECEIVED,
        State.AWAITING_SUPPLEMENT,
        State.IN_PROGRESS,
        State.SUSPENDED,
        State.RETURNED,
        State.TRANSFERRED,
    }
)
# The promised-time clock runs only in these states (补正 and 特别程序 pause it).
CLOCK_RUNNING_STATES = frozenset({State.IN_PROGRESS, State.RETURNED, State.TRANSFERRED})


class ResultCode(enum.StrEnum):
    """办结结果代码 (BJJGDM) as used by the 电子监察 exchange."""

    CERTIFICATE = "0"  # 出证办结
    RETURNED = "1"  # 退回办结 (驳回、不予受理)
    VOIDED = "2"  # 作废办结
    DELETED = "3"  # 删除办结 (录入错误)
    FORWARDED = "4"  # 转报办结
    LAPSED = "5"  # 补正不来办结
    DONE = "6"  # 办结

    @property
    def label(self) -> str:
        return {
            "0": "出证办结",
            "1": "退回办结",
            "2": "作废办结",
            "3": "删除办结",
            "4": "转报办结",
            "5": "补正不来办结",
            "6": "办结",
        }[self.value]


class MaterialStatus(enum.StrEnum):
    RECEIVED = "received"
    MISSING = "missing"
    RONGQUE = "rongque"  # 容缺: accepted on a written promise to supply it later

    @property
    def label(self) -> str:
        return {"received": "已收", "missing": "缺", "rongque": "容缺"}[self.value]


class Outcome(enum.StrEnum):
    APPROVED = "approved"  # 准予/通过
    DENIED = "denied"  # 不予批准/不予许可

    @property
    def label(self) -> str:
        return {"approved": "准予", "denied": "不予批准"}[self.value]


class Special(enum.StrEnum):
    """特别程序种类. 延长审批 extends the promised time (capped by the 法定时限); the others
    pause the clock for a stated number of days (行政许可法 Art. 45) and resume on their own."""

    EXTENSION = "extension"
    VERIFICATION = "verification"
    HEARING = "hearing"
    TESTING = "testing"
    APPRAISAL = "appraisal"
    PUBLICITY = "publicity"  # started from the catalog by the 公示 action, never chosen by hand
    OTHER = "other"

    @property
    def label(self) -> str:
        return {
            "extension": "延长审批",
            "verification": "实地核查",
            "hearing": "听证",
            "testing": "检验检测",
            "appraisal": "鉴定或专家评审",
            "publicity": "公示",
            "other": "其他特别程序",
        }[self.value]

    @property
    def gbt_code(self) -> str:
        """GB/T 39046 A.7 特别程序种类代码: 1 延长审批, 2 除延长审批之外的情况."""
        return "1" if self is Special.EXTENSION else "2"

    @property
    def pauses(self) -> bool:
        return self is not Special.EXTENSION


RATING_LABELS = {5: "非常满意", 4: "满意", 3: "基本满意", 2: "不满意", 1: "非常不满意"}
BAD_RATING = 2  # 不满意 and below is a 差评: it opens a 整改 task
# Reasons a villager may tick (国办发〔2019〕51号 线下评价内容), shown with the five levels.
RATING_REASONS = ("办事效率高", "服务态度好", "一次办好", "办事效率低", "服务态度差", "材料要求不清楚", "多次跑腿", "其他")


def gbt_satisfaction(level: int) -> str:
    """GB/T 39046 A.8 满意度代码: 1 非常满意 … 5 非常不满意 (the reverse of our 5 = 非常满意)."""
    return str(6 - level)


class Channel(enum.StrEnum):
    """评价渠道: how a rating reached us. Staff never type a level in for the applicant."""

    ONSITE = "onsite"  # the villager pressed the keys on the station's rating screen
    QR = "qr"  # the QR code on the receipt
    PHONE = "phone"  # a 回访 call by an org that did not handle the case
    SMS = "sms"

    @property
    def label(self) -> str:
        return {"onsite": "现场评价", "qr": "二维码", "phone": "电话回访", "sms": "短信"}[self.value]

    @property
    def gbt_label(self) -> str:
        """GB/T 39046 Table 9 评价渠道."""
        return {"onsite": "政务大厅其他终端", "qr": "二维码", "phone": "电话", "sms": "短信"}[self.value]


@dataclass(slots=True)
class Conflict:
    event_id: str
    kind: str
    at: str
    actor: str
    reason: str


@dataclass(slots=True)
class CaseView:
    """The projection of one case. Plain JSON-like data; deadlines that need the working-day
    calendar are written into the event bodies (by the station that recorded them) or
    computed at projection time (:mod:`schema.deadlines`), never inside the fold."""

    case_id: str
    case_no: str
    item: dict[str, Any]  # snapshot of the 事项 at registration (see schema.rules.snapshot_item)
    applicant: dict[str, Any]  # name, doc_type, id_number, gender, birth_date, phone
    materials: dict[str, str]  # material name -> MaterialStatus value
    state: State
    intake_org: str
    intake_level: str
    holder_org: str
    holder_level: str
    registered_at: str
    registered_by: str
    first_responder: str = ""  # 首问负责人 (user id): who first received the applicant
    proxy: dict[str, Any] | None = None  # 代办人/委托人 acting for the applicant, with their document
    path: list[str] = field(default_factory=list)  # orgs the case was forwarded from, innermost last
    stage_since: str = ""  # when the current holder got the case (its stage limit counts from here)
    stages: list[dict[str, Any]] = field(default_factory=list)  # [{org, level, since, until, result}]
    accepted_at: str | None = None  # effective time of 受理
    supplement_deadline: str | None = None  # date, while awaiting 补正
    missing_notice: list[str] = field(default_factory=list)  # materials named in the last 一次性告知
    resume_state: str | None = None  # state to return to after 补正 / 特别程序
    pauses: list[list[str | None]] = field(default_factory=list)  # [start, end|None, reason, until|None]
    special: dict[str, Any] | None = None  # the running pause-type 特别程序 (incl. 公示)
    extensions: list[dict[str, Any]] = field(default_factory=list)  # 延长审批: [{days, unit, at, reason}]
    publicity: dict[str, Any] | None = None  # {started_at, days, unit, until, ended_at, objection, result}
    rongque_promise: dict[str, Any] | None = None  # 容缺: {materials, promise, due, at}
    co_dispatch: dict[str, dict[str, Any]] = field(default_factory=dict)  # 联办 department -> {at, due}
    co_opinions: dict[str, dict[str, Any]] = field(default_factory=dict)  # department -> {agree, opinion, at, actor}
    void_request: dict[str, Any] | None = None  # pending 作废申请: {reason, entry_error, at, by, org}
    outcome: str | None = None
    certificate: str = ""  # 证照编号 given at 决定
    result_code: str | None = None
    closed_at: str | None = None
    delivered_at: str | None = None
    level_closures: dict[str, str] = field(default_factory=dict)  # level -> ResultCode at that level
    ratings: list[dict[str, Any]] = field(default_factory=list)
    rectify: dict[str, Any] | None = None  # 差评整改 task: {org, level, opened_at, verify_due, due, …}
    conflicts: list[Conflict] = field(default_factory=list)
    events: int = 0
    last_order: list[Any] = field(default_factory=list)  # (hlc, station, seq) of the last folded event
    last_at: str = ""
    note: str = ""

    @property
    def is_open(self) -> bool:
        return self.state.is_open

    @property
    def outstanding_rongque(self) -> list[str]:
        return [m for m, s in self.materials.items() if s == MaterialStatus.RONGQUE]

    @property
    def missing_required(self) -> list[str]:
        """Required materials still missing, in catalog order (the one place this is computed)."""
        required = [m["name"] for m in self.item.get("materials", []) if isinstance(m, dict) and m.get("required", True)]
        return [m for m in required if self.materials.get(m) == MaterialStatus.MISSING]

    @property
    def still_missing(self) -> list[str]:
        """What the last 一次性告知 asked for that has not come in yet."""
        return [m for m in self.missing_notice if self.materials.get(m) == MaterialStatus.MISSING]

    def to_dict(self) -> dict[str, Any]:
        # Same result as dataclasses.asdict (an independent deep copy), ~3x faster: asdict
        # deep-copies every leaf and was the largest cost of appending an event (bench/store.py).
        d = {name: _plain(getattr(self, name)) for name in _VIEW_FIELDS}
        d["state"] = self.state.value
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CaseView:
        d = {k: v for k, v in d.items() if k in _VIEW_FIELD_SET}  # views stored by older versions
        d["state"] = State(d["state"])
        d["conflicts"] = [Conflict(**c) for c in d.get("conflicts", [])]
        return cls(**d)


_VIEW_FIELDS = tuple(f.name for f in fields(CaseView))
_VIEW_FIELD_SET = frozenset(_VIEW_FIELDS)


def _plain(value: Any) -> Any:
    """A deep copy of the view's JSON-like data, with Conflict records as dicts."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    if isinstance(value, Conflict):
        return asdict(value)
    return value
