"""Who this station is to the county: its key pair, the county it enrolled with, its state.

All of it lives in the encrypted database's ``meta`` table (never in a plain file):

=========================  =====================================================================
``sync.keypair``           the station's Ed25519 + X25519 private keys (hex, 64 bytes)
``sync.keypair_pub``       their public halves (JSON ``sign_pub``/``enc_pub``)
``sync.county``            the county: code, name, sign_pub, enc_pub, recovery_pub, station, url
``sync.enrolled``          org, level, at (when this station enrolled)
``sync.revoked``           reason, at, source — set when the county revoked this station
``sync.acked``             the last own seq the county acknowledged with a verified receipt
``sync.receipt``           that receipt, exactly as signed
``sync.push_from``         the next own seq to send (below ``acked`` + 1 after a ``gap`` answer)
``sync.blocked``           why pushing the own chain stopped (fork or refusal), until retried
``sync.cursor``            the county log position pulled up to
``sync.clock_offset_ms``   county time − station time at the last sync
``sync.enroll_pending``    an enrollment under way: key pair, code id, confirmation key, request
``sync.http_notice``       the plain-http county address the user was told about (once)
=========================  =====================================================================
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from schema.errors import UserError
from sync.crypto import KeyPair, b64, unb64
from sync.enrollment import fingerprint

KEYPAIR = "sync.keypair"
KEYPAIR_PUB = "sync.keypair_pub"
COUNTY = "sync.county"
ENROLLED = "sync.enrolled"
PENDING = "sync.enroll_pending"
REVOKED = "sync.revoked"
ACKED = "sync.acked"
RECEIPT = "sync.receipt"
PUSH_FROM = "sync.push_from"
BLOCKED = "sync.blocked"
CURSOR = "sync.cursor"
OFFSET = "sync.clock_offset_ms"
OFFSET_AT = "sync.clock_at"
BATCH = "sync.batch"
PULL_LIMIT = "sync.pull_limit"
LAST_ATTEMPT = "sync.last_attempt"
LAST_OK = "sync.last_ok"
LAST_ERROR = "sync.last_error"
ONLINE = "sync.online"
HTTP_NOTICE = "sync.http_notice"
CLOCK_HEAD = "sync.clock_head"  # own head seq at the last clock measurement


class NotEnrolled(UserError):
    code = "not_enrolled"

    def __init__(self) -> None:
        super().__init__(
            "本工作站尚未登记到县中心。请向县中心管理员索取登记码，然后运行 station enroll（或在同步页面登记）"
        )


class Revoked(UserError):
    code = "revoked"

    def __init__(self, reason: str) -> None:
        super().__init__(
            f"县中心已注销本工作站，不能再同步（{reason}）。本机数据仍完整保存；如需恢复，请联系县中心重新登记"
        )
        self.reason = reason


@dataclass(frozen=True)
class County:
    code: str
    name: str
    sign_pub: bytes
    enc_pub: bytes
    recovery_pub: bytes
    station: str  # the county's own chain id: only it may publish catalog, calendar, registry
    url: str

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> County:
        return cls(
            code=str(d["code"]),
            name=str(d.get("name", "")),
            sign_pub=unb64(d["sign_pub"], "sign_pub"),
            enc_pub=unb64(d["enc_pub"], "enc_pub"),
            recovery_pub=unb64(d.get("recovery_pub", ""), "recovery_pub") if d.get("recovery_pub") else b"",
            station=str(d["station"]),
            url=str(d.get("url", "") or ""),
        )

    @property
    def fingerprint(self) -> str:
        """The county's keys as the admin's ``county-center enroll`` printed them, to compare."""
        return fingerprint(self.sign_pub, self.enc_pub, self.recovery_pub) if self.recovery_pub else ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "name": self.name,
            "sign_pub": b64(self.sign_pub),
            "enc_pub": b64(self.enc_pub),
            "recovery_pub": b64(self.recovery_pub),
            "station": self.station,
            "url": self.url,
        }


def _json(session, key: str) -> Any:
    raw = session.store.meta(key)
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


def set_json(session, key: str, value: Any) -> None:
    session.store.set_meta(key, json.dumps(value, ensure_ascii=False, sort_keys=True))


def delete(session, *keys: str) -> None:
    for key in keys:
        session.db.execute_sql("DELETE FROM meta WHERE key = ?", (key,))


def keypair(session) -> KeyPair | None:
    raw = session.store.meta(KEYPAIR)
    return KeyPair.from_bytes(bytes.fromhex(raw)) if raw else None


def county(session) -> County | None:
    d = _json(session, COUNTY)
    return County.from_dict(d) if d else None


def enrolled(session) -> bool:
    return keypair(session) is not None and county(session) is not None


def enrollment(session) -> dict[str, Any] | None:
    return _json(session, ENROLLED)


def require(session) -> tuple[KeyPair, County]:
    """The key pair and county, or a Chinese error telling how to enroll."""
    kp, c = keypair(session), county(session)
    if kp is None or c is None:
        raise NotEnrolled()
    return kp, c


def revoked(session) -> dict[str, Any] | None:
    return _json(session, REVOKED)


def set_revoked(session, reason: str, *, source: str, at: str) -> None:
    with session.store.writing():
        set_json(session, REVOKED, {"reason": reason, "at": at, "source": source})


def county_url(session) -> str:
    c = county(session)
    return session.config.county_url or (c.url if c else "")


def int_meta(session, key: str, default: int) -> int:
    raw = session.store.meta(key)
    try:
        return int(raw) if raw is not None else default
    except ValueError:
        return default


def acked(session) -> int:
    return int_meta(session, ACKED, 0)


def cursor(session) -> int:
    return int_meta(session, CURSOR, 0)


def blocked(session) -> dict[str, Any] | None:
    return _json(session, BLOCKED)


def pending_enrollment(session) -> dict[str, Any] | None:
    return _json(session, PENDING)


def get_json(session, key: str) -> Any:
    return _json(session, key)
