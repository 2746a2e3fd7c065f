"""Enrollment: the station gets its keys and learns the county's, with a one-time code.

Online: ``enroll_online`` posts the signed request to ``/v1/enroll``. Offline: ``write_request``
writes the same signed request to a file (carried on USB to the county admin, who answers with
``county-center enroll --request-file F --response-file R``), and ``apply_response_file`` applies
the answer. Either way the answer must be signed by the county key it names AND carry the
``code_check`` only someone who knows our one-time code can compute — so a forged answer (or one
meant for another station) is refused before anything is stored.

On success, in one transaction: the key pair, the county info and the enrollment are stored in
``meta``; then the county URL goes into ``station.json`` and the county's recovery key into the
key-slot file's recovery slot.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from schema.errors import UserError, ValidationError
from schema.org import Level, OrgCode
from station import clock
from station.replication import identity as I
from station.store.atomicfile import atomic_write
from sync import api, bounded
from sync.client import Client, check_url
from sync.crypto import KeyPair, b64
from sync.errors import ProtocolError
from sync.messages import doc_header, open_doc

MAX_FILE = 1024 * 1024
_CODE_CHARS = re.compile(r"[^0-9A-Z]")


@dataclass(frozen=True)
class EnrollResult:
    county_code: str
    county_name: str
    level: str
    url: str
    reenrolled: bool

    def text(self) -> str:
        again = "（已重新登记，旧密钥作废）" if self.reenrolled else ""
        where = f"，县中心地址 {self.url}" if self.url else ""
        return f"已登记到{self.county_name or self.county_code}（{self.county_code}）{again}{where}。现在可以同步了"

    def to_dict(self) -> dict[str, Any]:
        return {
            "county": self.county_code,
            "county_name": self.county_name,
            "level": self.level,
            "url": self.url,
            "reenrolled": self.reenrolled,
        }


def normalize_code(code: str) -> str:
    """``k7qx m2pd 9trw`` → ``K7QX-M2PD-9TRW``; the county normalises the same way."""
    compact = _CODE_CHARS.sub("", (code or "").upper())
    if len(compact) != 12:
        raise ValidationError(
            "登记码应为12位字母和数字（如 K7QX-M2PD-9TRW），请核对县中心给出的登记码", field="code"
        )
    return "-".join(compact[i : i + 4] for i in (0, 4, 8))


def _request(session, key: KeyPair, code: str) -> dict[str, str]:
    cfg = session.config
    return api.enroll_request(
        key, code=code, station=cfg.station_id, org=cfg.org, name=cfg.name, at=clock.iso(clock.now())
    )


def enroll_online(session, url: str, code: str, *, client: Client | None = None) -> EnrollResult:
    url = check_url(url)
    code = normalize_code(code)
    key = KeyPair.generate()
    own = client is None
    client = client or Client(url, retries=2)
    try:
        answer = client.enroll(_request(session, key, code))
    finally:
        if own:
            client.close()
    return apply_response(session, answer, key, code, url=url)


def write_request(session, path: str | Path, code: str) -> Path:
    """Write the signed request for the county admin; keep the new key until the answer comes."""
    code = normalize_code(code)
    pending = I.pending_enrollment(session)
    if pending and pending.get("code") == code:
        # Written again with the same code: the same key, so whichever copy the county answers fits.
        key = KeyPair.from_bytes(bytes.fromhex(pending["keypair"]))
    else:
        key = KeyPair.generate()
    wire = _request(session, key, code)
    path = Path(path)
    if path.is_dir():
        path = path / f"enroll-{session.config.station_id[:8]}.json"
    with session.store.writing():
        I.set_json(
            session, I.PENDING, {"keypair": key.to_bytes().hex(), "code": code, "at": clock.iso(clock.now())}
        )
    try:
        atomic_write(path, json.dumps(wire, ensure_ascii=False, indent=1).encode("utf-8"))
    except OSError as e:
        raise UserError(
            f"无法写入登记申请文件 {path}：{e.strerror or e}。请检查U盘或文件夹是否可写"
        ) from None
    return path


def apply_response_file(session, path: str | Path) -> EnrollResult:
    pending = I.pending_enrollment(session)
    if not pending:
        raise UserError("本工作站没有待处理的离线登记申请。请先用 station enroll --request-file 生成申请文件")
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
        wire = bounded.loads(raw, "登记答复文件")
    except ProtocolError:
        raise UserError(f"{path.name} 不是有效的登记答复文件（内容已损坏或不是县中心生成的）") from None
    key = KeyPair.from_bytes(bytes.fromhex(pending["keypair"]))
    return apply_response(session, wire, key, pending["code"], url="")


def _bad(message: str) -> ProtocolError:
    return ProtocolError("enroll", message)


def apply_response(session, wire: Any, key: KeyPair, code: str, *, url: str) -> EnrollResult:
    """Verify the county's answer and store everything it gives us."""
    cfg = session.config
    try:
        doc = doc_header(wire, "enrolled")
    except ProtocolError as e:
        raise _bad(f"登记答复无效：{e.message}") from None
    raw_county = doc.get("county")
    try:
        county = I.County.from_dict(raw_county if isinstance(raw_county, dict) else {})
    except (KeyError, TypeError, ValueError, ProtocolError):
        raise _bad("登记答复缺少县中心的信息或公钥，不是有效的县中心答复") from None
    if len(county.sign_pub) != 32 or len(county.enc_pub) != 32 or len(county.recovery_pub) != 32:
        raise _bad("登记答复中的县中心公钥无效")
    try:
        open_doc(wire, county.sign_pub, "enrolled", who="县中心登记答复")
    except ProtocolError:
        raise _bad("登记答复的签名校验失败：文件被改动过，或不是县中心签发的") from None
    if doc.get("station") != cfg.station_id:
        raise _bad("这份登记答复是给另一台工作站的，不能用于本站")
    if doc.get("code_check") != api.code_check(code, cfg.station_id):
        raise _bad("登记答复与本站使用的登记码不符（可能是旧申请的答复，或登记码有误）。请重新申请登记")
    if doc.get("org") != cfg.org:
        raise _bad(f"登记答复中的区划（{doc.get('org')}）与本站（{cfg.org}）不符，请联系县中心")
    if OrgCode(cfg.org).county != county.code:
        raise _bad(f"登记答复来自另一个县（{county.code}），本站属于 {OrgCode(cfg.org).county}")
    level = str(doc.get("level") or OrgCode(cfg.org).level.value)
    if level not in {lv.value for lv in Level}:
        raise _bad("登记答复中的层级无效")
    old = I.county(session)
    reenrolled = I.keypair(session) is not None
    url = url or county.url
    stored = I.County(
        county.code,
        county.name,
        county.sign_pub,
        county.enc_pub,
        county.recovery_pub,
        county.station,
        url or county.url,
    )
    with session.store.writing():
        session.store.set_meta(I.KEYPAIR, key.to_bytes().hex())
        I.set_json(session, I.KEYPAIR_PUB, key.public.to_dict())
        I.set_json(session, I.COUNTY, stored.to_dict())
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
    ensure_recovery(session, county.recovery_pub)
    return EnrollResult(county.code, county.name, level, url, reenrolled)


def ensure_recovery(session, recovery_pub: bytes) -> None:
    """Put the county's recovery key in the recovery slot (idempotent)."""
    current = session.slots._doc.get("recovery") or {}
    if current.get("public_key") == b64(recovery_pub):
        return
    session.slots.set_recovery(recovery_pub, session.data_key())
