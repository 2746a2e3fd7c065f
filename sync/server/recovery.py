"""Recovery requests at the county: checked against the registry, approved by the admin by hand.

A request (:mod:`sync.recovery`) arrives as a file (``county-center recover FILE``) or over HTTP
(``POST /v1/recovery``, kept in ``recovery_request`` until the admin decides). Before anything is
shown to the admin it is verified: the station must be enrolled and not revoked, its registered
key must have certified the requester key, the request must be signed by that key, and the
recovery slot must open with the county's recovery key for that station. The admin then compares
the check code with the person at the station over the phone (the station's known number, not
one from the request) and approves with that code; only then is the data key sealed to the
request's ephemeral key and the answer signed. The recovery private key never leaves this
machine. Every step is an audit row (``county-center audit``): ``recovery_requested``,
``recovery_approved``, ``recovery_refused``, and refusals of bad requests.

``recovery_request`` is owned by this module and created on first use (databases made before
recovery existed get it then).
"""

from __future__ import annotations

import json
import threading
import weakref
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from peewee import BigIntegerField, CharField, Model, TextField

from schema.errors import UserError
from sync import recovery as wire_format
from sync.crypto import unb64
from sync.errors import ProtocolError
from sync.server.audit import clean_text, record_refusal
from sync.server.config import now_iso, now_ms
from sync.server.db import CountyDB
from sync.server.keystore import County

MAX_PENDING_PER_STATION = 5
_models: weakref.WeakKeyDictionary[CountyDB, type[Model]] = weakref.WeakKeyDictionary()
_models_lock = threading.Lock()


@dataclass(frozen=True)
class Review:
    """A verified request, as the admin sees it before deciding."""

    request: wire_format.Request
    station_name: str  # as registered at the county
    station_level: str
    staff_known: bool  # the county has the user from the station's synced user.added events
    wire: dict[str, str]

    def text(self) -> str:
        r = self.request
        staff = "" if self.staff_known else "\n  注意：县中心还没有该用户的记录（该工作站可能尚未同步），请格外仔细核对身份"
        return (
            f"恢复申请 {r.id}\n"
            f"  工作站：{self.station_name or r.station_name}（{r.org}，编号 {r.station}）\n"
            f"  用户：{r.name}（{r.login}，{r.role.label}）\n"
            f"  申请时间：{r.at[:16].replace('T', ' ')}\n"
            f"  核对码：{r.check_code}{staff}\n"
            "请用县中心登记的电话（不要用申请人提供的号码）联系该工作站，请对方读出屏幕上的核对码；一致才可批准。"
        )

    def to_dict(self) -> dict[str, Any]:
        r = self.request
        return {
            "id": r.id,
            "station": r.station,
            "station_name": self.station_name or r.station_name,
            "org": r.org,
            "user_id": r.user_id,
            "login": r.login,
            "name": r.name,
            "role": r.role.value,
            "at": r.at,
            "check_code": r.check_code,
            "staff_known": self.staff_known,
        }


def review(cdb: CountyDB, county: County, wire: Any) -> Review:
    """Verify a request against the registry; ProtocolError with a Chinese reason otherwise."""
    if not isinstance(wire, dict):
        raise ProtocolError("malformed", "恢复申请缺少签名或内容")
    header = wire_format.request_header(wire)
    S = cdb.m.Station
    row = S.get_or_none(S.id == header["station"])
    if row is None or row.status == "county" or not row.sign_pub:
        raise ProtocolError("unknown_station", "申请恢复的工作站没有在本县中心登记")
    if row.status == "revoked":
        raise ProtocolError("revoked", "申请恢复的工作站已被注销，不能恢复；请重新登记后再处理")
    req = wire_format.open_request(wire, unb64(row.sign_pub))
    if req.org != row.org:
        raise ProtocolError("scope", f"恢复申请中的单位（{req.org}）与该工作站登记的单位（{row.org}）不符")
    if req.county != county.code:
        raise ProtocolError("wrong_county", f"这份恢复申请是发给另一个县（{req.county}）的")
    St = cdb.m.Staff
    staff = St.get_or_none(St.user_id == req.user_id)
    if staff is not None and (staff.station != req.station or staff.disabled):
        raise ProtocolError("scope", "申请恢复的用户不属于该工作站，或已被停用")
    return Review(req, row.name, row.level, staff is not None, {"h": wire["h"], "s": wire["s"]})


def answer(
    cdb: CountyDB, county: County, recovery_key: X25519PrivateKey, item: Review, *, check: str, remote: str = ""
) -> dict[str, str]:
    """Approve ``item``: the admin compared ``check`` with the station by phone. The signed answer."""
    if _digits(check) != _digits(item.request.check_code):
        raise UserError("核对码不一致：请再与工作站核对（对方屏幕上的核对码），不一致不能批准")
    req = item.request
    data_key = wire_format.open_slot(req.slot, req.station, recovery_key)
    try:
        signed = wire_format.make_answer(county.unlocked, req, data_key, at=now_iso())
    finally:
        data_key[:] = bytes(len(data_key))
    _audit(cdb, remote, req.station, 200, "recovery_approved", f"批准恢复用户 {req.login}（申请 {req.id}）")
    return signed


# -- online requests ------------------------------------------------------------------------------


def submit(cdb: CountyDB, county: County, wire: Any, *, remote: str = "") -> Review:
    """Keep a verified request until the admin decides; a new one from the same user replaces older ones."""
    item = review(cdb, county, wire)
    R = _model(cdb)
    req = item.request
    with cdb.write():
        R.delete().where((R.station == req.station) & (R.user_id == req.user_id) & (R.status == "pending")).execute()
        waiting = R.select().where((R.station == req.station) & (R.status == "pending")).count()
        if waiting >= MAX_PENDING_PER_STATION:
            raise ProtocolError("rate", "该工作站待处理的恢复申请过多，请等县中心处理后再申请")
        R.insert(id=req.id, station=req.station, user_id=req.user_id, request=json.dumps(item.wire),
                 status="pending", received_at=now_ms(), remote=clean_text(remote, 64)).on_conflict_ignore().execute()
    _audit(cdb, remote, req.station, 200, "recovery_requested",
           f"收到用户 {req.login} 的恢复申请 {req.id}，核对码 {req.check_code}")
    return item


def pending(cdb: CountyDB, county: County) -> list[Review]:
    """Requests waiting for the admin, oldest first (re-verified: a station revoked since is left out)."""
    R = _model(cdb)
    out = []
    for row in R.select().where(R.status == "pending").order_by(R.received_at):
        try:
            out.append(review(cdb, county, json.loads(row.request)))
        except ProtocolError:
            continue
    return out


def stored(cdb: CountyDB, county: County, request_id: str) -> Review:
    R = _model(cdb)
    row = R.get_or_none(R.id == wire_format.check_id(request_id))
    if row is None:
        raise UserError(f"没有编号为 {request_id} 的恢复申请（county-center recover --list 查看待处理的申请）")
    if row.status != "pending":
        raise UserError(f"恢复申请 {request_id} 已处理过（{_STATUS_LABELS.get(row.status, row.status)}）")
    return review(cdb, county, json.loads(row.request))


def approve_stored(
    cdb: CountyDB, county: County, recovery_key: X25519PrivateKey, request_id: str, *, check: str
) -> Review:
    item = stored(cdb, county, request_id)
    signed = answer(cdb, county, recovery_key, item, check=check)
    R = _model(cdb)
    with cdb.write():
        R.update(status="approved", answer=json.dumps(signed), decided_at=now_ms()).where(R.id == item.request.id).execute()
    return item


def refuse_stored(cdb: CountyDB, county: County, request_id: str, *, reason: str = "") -> Review:
    item = stored(cdb, county, request_id)
    R = _model(cdb)
    with cdb.write():
        R.update(status="refused", reason=clean_text(reason, 200), decided_at=now_ms()).where(
            R.id == item.request.id
        ).execute()
    _audit(cdb, "", item.request.station, 200, "recovery_refused",
           f"拒绝用户 {item.request.login} 的恢复申请 {item.request.id}" + (f"：{reason}" if reason else ""))
    return item


def status(cdb: CountyDB, request_id: str) -> dict[str, Any]:
    """What the station fetches: pending, the signed answer once approved, or the refusal's reason.

    Anyone who knows the (random, 128-bit) id may fetch the answer: without the new PIN chosen at
    the station, on that station, it is of no use.
    """
    R = _model(cdb)
    row = R.get_or_none(R.id == wire_format.check_id(request_id))
    if row is None:
        raise ProtocolError("not_found", "县中心没有这份恢复申请（可能已被新的申请替换），请重新申请")
    if row.status == "approved":
        return {"status": "approved", "answer": json.loads(row.answer)}
    if row.status == "refused":
        return {"status": "refused", "reason": row.reason}
    return {"status": "pending"}


# -- internals --------------------------------------------------------------------------------------

_STATUS_LABELS = {"pending": "待处理", "approved": "已批准", "refused": "已拒绝"}


def _digits(text: str) -> str:
    return "".join(c for c in str(text or "") if c.isdigit())


def _audit(cdb: CountyDB, remote: str, station: str, status: int, code: str, reason: str) -> None:
    record_refusal(cdb, remote=remote, station=station, endpoint="recovery", status=status, code=code,
                   reason=reason)


def _model(cdb: CountyDB) -> type[Model]:
    with _models_lock:
        model = _models.get(cdb)
        if model is not None:
            return model

        class RecoveryRequest(Model):
            id = CharField(primary_key=True, max_length=32)
            station = CharField(max_length=64)
            user_id = CharField(max_length=200)
            request = TextField()  # the signed request as received (verified again when read)
            status = CharField(max_length=10)  # pending | approved | refused
            answer = TextField(default="")  # the signed answer, once approved
            reason = TextField(default="")
            received_at = BigIntegerField()
            decided_at = BigIntegerField(null=True)
            remote = CharField(max_length=64, default="")

            class Meta:
                database = cdb.database
                table_name = "recovery_request"
                indexes = ((("station", "status"), False),)

        with cdb.write():
            cdb.database.create_tables([RecoveryRequest], safe=True)
        _models[cdb] = RecoveryRequest
        return RecoveryRequest
