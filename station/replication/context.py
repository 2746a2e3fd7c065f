"""What one sync carries from step to step, and what it reports at the end."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from station.replication.identity import County
from sync.client import Client
from sync.crypto import KeyPair

Progress = Callable[[str, int, "int | None"], None]

# Stage names, shown as they are next to a progress bar.
STAGE_CONNECT = "连接县中心"
STAGE_PUSH = "上传本站记录"
STAGE_RELAY = "转交下级站记录"
STAGE_PULL = "下载县中心数据"
STAGE_RETURN = "为下级站取回数据"
STAGE_DONE = "完成"

# Outcomes, from best to worst for the exit code.
OK = "ok"
REFUSED = "refused"  # something was refused (shown with its reason); the rest went through
OFFLINE = "offline"  # the county could not be reached (everything stays queued)
REVOKED = "revoked"  # the county revoked this station: nothing syncs any more
ERROR = "error"  # the county answered nonsense (ServerFault)

OUTCOME_LABELS = {
    OK: "同步成功",
    REFUSED: "部分内容被县中心拒收",
    OFFLINE: "无法连接县中心",
    REVOKED: "本站已被县中心注销",
    ERROR: "县中心应答异常",
}


@dataclass
class SyncReport:
    started_at: str
    finished_at: str = ""
    outcome: str = OK
    pushed: int = 0  # own events the county acknowledged in this sync
    relayed: int = 0  # village events relayed and acknowledged
    pulled: int = 0  # new events received from the county
    returns: int = 0  # return envelopes fetched for villages
    bytes_sent: int = 0
    bytes_received: int = 0
    offset_ms: int | None = None
    messages: list[str] = field(default_factory=list)  # Chinese, one per problem
    notices: list[str] = field(default_factory=list)  # Chinese, worth saying but not a problem

    @property
    def ok(self) -> bool:
        return self.outcome == OK

    @property
    def exit_code(self) -> int:
        """``station sync``: 0 everything went, 2 refused/revoked/bad answer, 3 offline."""
        return {OK: 0, OFFLINE: 3}.get(self.outcome, 2)

    def worse(self, outcome: str) -> None:
        order = [OK, REFUSED, ERROR, OFFLINE, REVOKED]
        if order.index(outcome) > order.index(self.outcome):
            self.outcome = outcome

    def note(self, message: str, outcome: str = REFUSED) -> None:
        if message not in self.messages:
            self.messages.append(message)
        self.worse(outcome)

    @property
    def summary(self) -> str:
        parts = [OUTCOME_LABELS[self.outcome] + "："]
        parts.append(f"上传 {self.pushed} 条，下载 {self.pulled} 条")
        if self.relayed:
            parts.append(f"，转交下级 {self.relayed} 条")
        if self.returns:
            parts.append(f"，为 {self.returns} 个下级站取回数据")
        kib = (self.bytes_sent + self.bytes_received) / 1024
        parts.append(f"，流量 {kib:.1f} KB")
        return "".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "outcome": self.outcome,
            "pushed": self.pushed,
            "relayed": self.relayed,
            "pulled": self.pulled,
            "returns": self.returns,
            "bytes_sent": self.bytes_sent,
            "bytes_received": self.bytes_received,
            "offset_ms": self.offset_ms,
            "messages": self.messages,
            "notices": self.notices,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "summary": self.summary,
        }


class Stop(Exception):
    """Ends the sync early (revoked): the report already says why."""


@dataclass
class Ctx:
    session: Any
    client: Client
    key: KeyPair
    county: County
    report: SyncReport
    progress: Progress | None = None

    @property
    def station(self) -> str:
        return self.session.config.station_id

    def tick(self, stage: str, done: int, total: int | None) -> None:
        if self.progress is not None:
            self.progress(stage, done, total)
