"""Enrollment: the station gets its keys and learns the county's, with a one-time code.

The protocol is :mod:`sync.enrollment`: the code never leaves this PC; the request carries a MAC
keyed from it, and the county's answer is accepted only if it carries the county's MAC keyed
from the same code, names exactly our request, and is signed by the county key it names — so a
relay on the network can neither enroll a key of its own under our station id nor slip us its
own county or recovery key. The county's key fingerprint is shown after enrolling, for the
person to compare with the one ``county-center enroll`` printed beside the code.

Online: ``enroll_online`` posts the request to ``/v1/enroll``. Offline: ``write_request`` writes
the same request to a file (carried on USB to the county admin, who answers with
``county-center enroll --request-file F --response-file R``), and ``apply_response_file`` applies
the answer. Either way the request under way (new key pair, code id, confirmation key, the
request itself) is kept in ``meta`` until an answer fits it, so a lost answer can be fetched
again with the same code; nothing else is stored before the answer has been verified.

On success, in one transaction: the key pair, the county info and the enrollment are stored in
``meta``; then the county URL goes into ``station.json``, the county CA file (if one was given)
into the data directory, and the county's recovery key into the key-slot file's recovery slot.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from schema.errors import UserError
from schema.org import Level, OrgCode
from station import clock
from station.replication import identity as I
from station.replication import transport
from station.store.atomicfile import atomic_write
from sync import enrollment
from sync.client import Client, check_url
from sync.crypto import KeyPair, b64
from sync.errors import ProtocolError

MAX_FILE = 1024 * 1024


@dataclass(frozen=True)
class EnrollResult:
    county_code: str
    county_name: str
    level: str
    url: str
    reenrolled: bool
    fingerprint: str  # of the county's keys: compare with what county-center enroll printed
    notice: str = ""  # the one-time plain-http notice, "" if none

    def text(self) -> str:
        again = "（已重新登记，旧密钥作废）" if self.reenrolled else ""
        where = f"，县中心地址 {self.url}" if self.url else ""
        return (
            f"已登记到{self.county_name or self.county_code}（{self.county_code}）{again}{where}。现在可以同步了\n"
            f"县中心密钥指纹：{self.fingerprint}（应与县中心管理员给出登记码时显示的指纹一致；不一致请立即联系县中心）"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "county": self.county_code,
            "county_name": self.county_name,
            "level": self.level,
            "url": self.url,
            "reenrolled": self.reenrolled,
            "fingerprint": self.fingerprint,
            "notice": self.notice,
        }


def normalize_code(code: str) -> str:
    """``k7qx m2pd 9trw`` → ``K7QX-M2PD-9TRW`` (the form's own check, before anything is sent)."""
    return enrollment.format_code(enrollment.normalize_code(code))


@dataclass(frozen=True)
class _Pending:
    key: KeyPair
    confirm: bytes
    request: dict[str, str]


def _pending(session) -> _Pending | None:
    p = I.pending_enrollment(session)
    try:
        return _Pending(
            KeyPair.from_bytes(bytes.fromhex(p["keypair"])), bytes.fromhex(p["confirm"]), p["request"]
        )
    except (TypeError, KeyError, ValueError):
        return None  # none, or one written by an older version (its answer cannot be verified)


def _prepare(session, code: str) -> _Pending:
    """The request for ``code``: the one under way if it is for the same code, else a new one."""
    cfg = session.config
    secret = enrollment.derive(code, OrgCode(cfg.org).county)
    pending = _pending(session)
    if pending is not None and json.loads(pending.request["h"]).get("code_id") == secret.code_id:
        # The same code again (a lost answer, a second copy of the file): the same key and request,
        # so whichever copy the county answers fits.
        return pending
    key = KeyPair.generate()
    wire = enrollment.make_request(
        key, secret, station=cfg.station_id, org=cfg.org, name=cfg.name, at=clock.iso(clock.now())
    )
    with session.store.writing():
        I.set_json(
            session,
            I.PENDING,
            {
                "keypair": key.to_bytes().hex(),
                "confirm": secret.key.hex(),
                "request": wire,
                "at": clock.iso(clock.now()),
            },
        )
    return _Pending(key, secret.key, wire)


def enroll_online(
    session, url: str, code: str, *, ca_file: str | Path | None = None, client: Client | None = None
) -> EnrollResult:
    url = check_url(url)
    enrollment.normalize_code(code)  # a mistyped code fails before the slow key derivation
    ca = transport.read_ca_file(ca_file) if ca_file else None
    pending = _prepare(session, code)
    own = client is None
    client = client or transport.client_for(session, url, ca_file=ca_file, retries=2)
    try:
        answer = client.enroll(pending.request)
    finally:
        if own:
            client.close()
    result = apply_response(session, answer, pending, url=url, ca=ca)
    return replace(result, notice=transport.plain_http_notice(session, result.url))


def write_request(session, path: str | Path, code: str) -> Path:
    """Write the request for the county admin; keep the new key until the answer comes."""
    pending = _prepare(session, code)
    path = Path(path)
    if path.is_dir():
        path = path / f"enroll-{session.config.station_id[:8]}.json"
    try:
        atomic_write(path, json.dumps(pending.request, ensure_ascii=False, indent=1).encode("utf-8"))
    except OSError as e:
        raise UserError(
            f"无法写入登记申请文件 {path}：{e.strerror or e}。请检查U盘或文件夹是否可写"
        ) from None
    with session.store.writing():  # what the screens show: a request is out, its answer awaited
        I.set_json(session, I.PENDING, {**I.pending_enrollment(session), "written_at": clock.iso(clock.now())})
    return path


def apply_response_file(session, path: str | Path, *, ca_file: str | Path | None = None) -> EnrollResult:
    pending = _pending(session)
    if pending is None:
        raise UserError("本工作站没有待处理的离线登记申请。请先用 station enroll --request-file 生成申请文件")
    ca = transport.read_ca_file(ca_file) if ca_file else None
    path = Path(path)
    try:
        if path.stat().st_size > MAX_FILE:
            raise UserError(f"{path.name} 不是登记答复文件（文件过大）")
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"找不到登记答复文件 {path}") from None
    except OSError as e:
        raise UserError(f"无法读取登记答复文件 {path}：{e.strerror or e}") from None
    try:
        wire = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise UserError(f"{path.name} 不是有效的登记答复文件（内容已损坏或不是县中心生成的）") from None
    return apply_response(session, wire, pending, url="", ca=ca)


def _bad(message: str) -> ProtocolError:
    return ProtocolError("enroll", message)


def apply_response(
    session, wire: Any, pending: _Pending, *, url: str, ca: bytes | None = None
) -> EnrollResult:
    """Verify the county's answer to our pending request and store everything it gives us."""
    cfg = session.config
    answer = enrollment.open_answer(wire, pending.confirm, pending.request)
    try:
        county = I.County.from_dict(answer.county)
    except (KeyError, TypeError, ValueError, ProtocolError):
        raise _bad("登记答复缺少县中心的信息或公钥，不是有效的县中心答复") from None
    if OrgCode(cfg.org).county != county.code:
        raise _bad(f"登记答复来自另一个县（{county.code}），本站属于 {OrgCode(cfg.org).county}")
    level = answer.level or OrgCode(cfg.org).level.value
    if level not in {lv.value for lv in Level}:
        raise _bad("登记答复中的层级无效")
    old = I.county(session)
    reenrolled = I.keypair(session) is not None
    url = url or county.url
    key = pending.key
    with session.store.writing():
        session.store.set_meta(I.KEYPAIR, key.to_bytes().hex())
        I.set_json(session, I.KEYPAIR_PUB, key.public.to_dict())
        I.set_json(session, I.COUNTY, {**county.to_dict(), "url": url})
        I.set_json(
            session,
            I.ENROLLED,
            {"org": cfg.org, "level": level, "at": clock.iso(clock.now()), "sign_pub": b64(key.public.sign)},
        )
        I.delete(session, I.REVOKED, I.BLOCKED, I.PENDING)
        if old is not None and (old.sign_pub != county.sign_pub or old.station != county.station):
            # A different county key (the center was reinstalled): its log positions mean nothing
            # to us any more. Start the pull over; ingesting is idempotent.
            I.delete(session, I.CURSOR)
    if url and cfg.county_url != url:
        cfg.county_url = url
        session.data.save_config(cfg)
    if ca is not None:
        transport.save_ca(session, ca)
    ensure_recovery(session, county.recovery_pub)
    return EnrollResult(county.code, county.name, level, url, reenrolled, county.fingerprint)


def ensure_recovery(session, recovery_pub: bytes) -> None:
    """Put the county's recovery key in the recovery slot, with what a locked-out user needs to
    ask the county for recovery (the county's signing key, a certified requester key). Idempotent;
    cheap when nothing changed."""
    from sync import recovery

    county = I.county(session)
    station_key = I.keypair(session)
    sign_pub = b64(county.sign_pub) if county is not None else None
    current = session.slots.recovery or {}
    if current.get("public_key") != b64(recovery_pub) or (sign_pub and current.get("county_sign_pub") != sign_pub):
        session.slots.set_recovery(recovery_pub, session.data_key(),
                                   county_sign_pub=county.sign_pub if county is not None else None)
    if station_key is None:
        return
    requester = (session.slots.recovery or {}).get("requester")
    try:
        if requester is not None:
            recovery.cert_key(requester["cert"], session.config.station_id, station_key.public.sign)
            return
    except ProtocolError:
        pass  # certified by an older station key (re-enrolled): make a new one
    private = Ed25519PrivateKey.generate()
    public = private.public_key().public_bytes_raw()
    cert = recovery.requester_cert(station_key, session.config.station_id, public)
    session.slots.set_requester(private.private_bytes_raw(), cert)
