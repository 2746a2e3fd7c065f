"""An honest sync status for the status line, the sync screen and ``station sync-status``.

Nothing here touches the network: "online" is how the county looked at the last attempt.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from station.replication import identity as I
from station.replication import relay
from station.replication.push import pending_own

CLOCK_LIMIT_MS = 5 * 60 * 1000


@dataclass(frozen=True)
class SyncStatus:
    enrolled: bool
    county: str  # county name (or code), "" when not enrolled
    url: str
    county_fingerprint: str  # of the county's keys, as shown at enrollment ("" when not enrolled)
    online: bool | None  # as last seen; None: never tried
    last_attempt: str | None
    last_success: str | None  # ISO time of the last sync that went through
    pending: int  # own unsynced events + events waiting in the relay outbox
    pending_own: int
    pending_relay: int
    offset_ms: int | None  # county time − this PC's time at the last sync
    clock_warning: str  # Chinese, "" when the clock is fine
    clock_suspect: int  # own events recorded while the clock was more than 5 minutes off
    revoked: bool
    revoked_reason: str
    blocked: str  # why pushing our own chain stopped ("" if it did not)
    last_error: str  # Chinese, "" after a clean sync
    relay_refused: list[dict[str, Any]] = field(default_factory=list)
    set_aside: int = 0  # received events not taken in (authority, clock, the county's copy won)
    set_aside_recent: list[dict[str, Any]] = field(default_factory=list)

    @property
    def sendable(self) -> int:
        """Records a sync or a USB export could hand over now (0 when not enrolled or revoked)."""
        return self.pending if self.enrolled and not self.revoked else 0

    @property
    def message(self) -> str:
        """One short line for the status bar."""
        if not self.enrolled:
            return "未登记到县中心"
        if self.revoked:
            return "本站已被县中心注销：" + self.revoked_reason
        parts = []
        if self.online is None:
            parts.append("尚未同步")
        else:
            parts.append("在线" if self.online else "离线")
        parts.append(
            f"上次同步 {self.last_success[:16].replace('T', ' ')}" if self.last_success else "从未同步成功"
        )
        parts.append(f"待上传 {self.pending} 条")
        if self.clock_warning:
            parts.append("时钟异常")
        if self.blocked:
            parts.append("上传已暂停")
        return "，".join(parts)

    def text(self) -> str:
        lines = [self.message]
        if self.enrolled:
            lines.append(f"县中心：{self.county}  {self.url}")
            lines.append(f"县中心密钥指纹：{self.county_fingerprint}")
        if self.pending_relay:
            lines.append(f"其中转交下级站的记录 {self.pending_relay} 条")
        if self.offset_ms is not None:
            lines.append(f"本机时钟与县中心相差 {_minutes(self.offset_ms)}")
        if self.clock_warning:
            lines.append(self.clock_warning)
        if self.blocked:
            lines.append("上传已暂停：" + self.blocked)
        for r in self.relay_refused:
            lines.append(f"下级站 {r['station'][:8]} 第{r['first']}–{r['last']}条被拒收：{r['reason']}")
        if self.set_aside:
            lines.append(f"收到的记录中有 {self.set_aside} 条未采用（已搁置，不影响其他记录），最近的：")
            for r in self.set_aside_recent:
                lines.append(f"  工作站 {r['station'][:8]} 第{r['seq']}条：{r['reason']}")
        if self.last_error:
            lines.append("上次同步的问题：" + self.last_error)
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "enrolled": self.enrolled,
            "county": self.county,
            "url": self.url,
            "county_fingerprint": self.county_fingerprint,
            "online": self.online,
            "last_attempt": self.last_attempt,
            "last_success": self.last_success,
            "pending": self.pending,
            "pending_own": self.pending_own,
            "pending_relay": self.pending_relay,
            "offset_ms": self.offset_ms,
            "clock_warning": self.clock_warning,
            "clock_suspect": self.clock_suspect,
            "revoked": self.revoked,
            "revoked_reason": self.revoked_reason,
            "blocked": self.blocked,
            "last_error": self.last_error,
            "relay_refused": self.relay_refused,
            "set_aside": self.set_aside,
            "set_aside_recent": self.set_aside_recent,
            "message": self.message,
        }


def _minutes(ms: int) -> str:
    sec = abs(ms) / 1000
    ahead = "快" if ms < 0 else "慢"  # offset = county − local: negative means this PC runs ahead
    if sec < 60:
        return f"{sec:.0f} 秒（本机{ahead}）"
    return f"{sec / 60:.0f} 分钟（本机{ahead}）"


def clock_suspect(session) -> int:
    flagged = session.db.execute_sql("SELECT coalesce(sum(last - first + 1), 0) FROM clock_flag").fetchone()[
        0
    ]
    offset = session.store.meta(I.OFFSET)
    if offset is not None and abs(int(offset)) > CLOCK_LIMIT_MS:
        head = session.store.head()[0]
        flagged += max(0, head - I.int_meta(session, I.CLOCK_HEAD, 0))
    return int(flagged)


def clock_warning(offset_ms: int | None, suspect: int) -> str:
    if offset_ms is not None and abs(offset_ms) > CLOCK_LIMIT_MS:
        text = f"本机时钟与县中心相差 {_minutes(offset_ms)}，请校正电脑的日期和时间"
        if suspect:
            text += f"；期间登记的 {suspect} 条记录时间可能不准"
        return text
    if suspect:
        return f"有 {suspect} 条记录是在本机时钟不准时登记的，时间可能不准"
    return ""


def sync_status(session) -> SyncStatus:
    county = I.county(session)
    rev = I.revoked(session) or {}
    blocked = I.blocked(session) or {}
    own = pending_own(session)
    rel = relay.pending_events(session)
    online_raw = session.store.meta(I.ONLINE)
    offset_raw = session.store.meta(I.OFFSET)
    offset = int(offset_raw) if offset_raw is not None else None
    suspect = clock_suspect(session)
    return SyncStatus(
        enrolled=county is not None and I.keypair(session) is not None,
        county=(county.name or county.code) if county else "",
        url=I.county_url(session),
        county_fingerprint=county.fingerprint if county else "",
        online=None if online_raw is None else online_raw == "1",
        last_attempt=session.store.meta(I.LAST_ATTEMPT),
        last_success=session.store.meta(I.LAST_OK),
        pending=own + rel,
        pending_own=own,
        pending_relay=rel,
        offset_ms=offset,
        clock_warning=clock_warning(offset, suspect),
        clock_suspect=suspect,
        revoked=bool(rev),
        revoked_reason=str(rev.get("reason", "")),
        blocked=str(blocked.get("reason", "")),
        last_error=session.store.meta(I.LAST_ERROR) or "",
        relay_refused=relay.refused_rows(session),
        set_aside=session.store.set_aside_count(),
        set_aside_recent=session.store.set_aside_recent(),
    )
