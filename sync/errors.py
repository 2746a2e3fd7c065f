"""Why the sync protocol refuses something, in words a village agent can act on.

Every refusal has a stable ``code`` (machine-readable, used by clients and the
county's audit log) and a Chinese ``message``. ``detail`` carries what the
other side needs to continue, e.g. ``send_from`` after a gap.
"""

from __future__ import annotations

from typing import Any

from schema.errors import UserError

# code -> HTTP status the county answers with
STATUS = {
    "malformed": 400,
    "version": 400,
    "wrong_county": 400,
    "signature": 403,
    "unknown_station": 403,
    "revoked": 403,
    "scope": 403,
    "code": 403,
    "kind": 403,
    "clock": 403,
    "skew": 403,
    "authority": 403,
    "gap": 409,
    "replay": 409,
    "fork": 409,
    "conflict": 409,
    "too_large": 413,
    "rate": 429,
}


class ProtocolError(UserError):
    """Something the sync protocol refuses; raised on both sides."""

    def __init__(self, code: str, message: str, **detail: Any) -> None:
        super().__init__(message)
        self.code = code
        self.detail = detail

    @property
    def http_status(self) -> int:
        return STATUS.get(self.code, 400)

    def to_dict(self) -> dict[str, Any]:
        return {"error": self.code, "reason": self.message, **self.detail}


def malformed(what: str) -> ProtocolError:
    return ProtocolError("malformed", f"数据格式不正确：{what}")
