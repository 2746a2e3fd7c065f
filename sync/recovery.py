"""County recovery of a locked-out (or forgetful) station user: the messages both sides exchange.

The station cannot open its database, so it cannot use its own signing key (that key lives in the
database). While it still could (at enrollment and every sync) it made a *requester* key and
signed a certificate for it with the station key::

    cert  = signed by the station key  {"t": "recovery-key", "v": 1, "station": id, "key": b64}

A request is signed by the requester key and carries that certificate; the county checks the
certificate against the station key in its registry, then the request::

    request = signed by the requester  {"t": "recovery-request", "v": 1, "id": 32 hex, "station",
              "org", "station_name", "county", "user": {"user_id", "login", "name", "role"}, "at",
              "eph": b64 X25519 public key, "slot": b64 recovery slot (K sealed to the county), "cert"}

``eph`` is an ephemeral key whose private half the station keeps wrapped under the NEW PIN the user
chose when asking. The county opens the recovery slot with its recovery key and seals K to ``eph``::

    answer  = signed by the county key {"t": "recovery-answer", "v": 1, "id", "station", "user_id",
              "at", "key": b64 HPKE(eph, K)}

So the answer is useless without the new PIN (and this PC's device secret, where there is one),
whoever carries it; the county's recovery private key never leaves the county. Both sides show
the same ``check_code`` of a request, which the county admin compares over the phone with the
person at the station before approving.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from schema.errors import UserError
from schema.org import OrgCode, Role
from sync.crypto import KeyPair, b64, unb64, verify, x25519_public_key
from sync.errors import ProtocolError, malformed
from sync.messages import VERSION, doc_header, open_doc, sign_doc

REQUEST, ANSWER, CERT = "recovery-request", "recovery-answer", "recovery-key"
MAX_BYTES = 32 * 1024  # a request or an answer is ~2 KB
_SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)
_ANSWER_INFO = b"station-recovery-answer/v1/"
_SLOT_INFO = b"station-recovery/v1/"  # the recovery slot in keyslots.json (since format 1)
_ID = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True)
class Request:
    id: str
    station: str
    org: str
    station_name: str
    county: str
    user_id: str
    login: str
    name: str
    role: Role
    at: str
    eph: bytes
    slot: bytes
    check_code: str


@dataclass(frozen=True)
class Answer:
    id: str
    station: str
    user_id: str
    at: str
    sealed: bytes


def new_request_id() -> str:
    return os.urandom(16).hex()


def check_id(text: Any) -> str:
    if not isinstance(text, str) or not _ID.fullmatch(text):
        raise malformed("恢复申请编号应为32位十六进制")
    return text


def requester_cert(station_key: KeyPair, station: str, requester_public: bytes) -> dict[str, str]:
    return sign_doc({"t": CERT, "v": VERSION, "station": station, "key": b64(requester_public)}, station_key)


def cert_key(cert: Any, station: str, station_sign_pub: bytes) -> bytes:
    """The requester key a certificate vouches for; ProtocolError unless the station key signed it."""
    doc = open_doc(cert, station_sign_pub, CERT, who="恢复申请密钥证书")
    if doc.get("station") != station:
        raise ProtocolError("signature", "恢复申请密钥证书属于另一台工作站")
    key = unb64(doc.get("key"), "恢复申请公钥")
    if len(key) != 32:
        raise malformed("恢复申请公钥")
    return key


def make_request(
    requester: Ed25519PrivateKey,
    cert: dict[str, str],
    *,
    request_id: str,
    station: str,
    org: str,
    station_name: str,
    county: str,
    user_id: str,
    login: str,
    name: str,
    role: str,
    at: str,
    eph: bytes,
    slot: bytes,
) -> dict[str, str]:
    doc = {
        "t": REQUEST,
        "v": VERSION,
        "id": check_id(request_id),
        "station": station,
        "org": org,
        "station_name": station_name,
        "county": county,
        "user": {"user_id": user_id, "login": login, "name": name, "role": role},
        "at": at,
        "eph": b64(eph),
        "slot": b64(slot),
        "cert": cert,
    }
    return sign_doc(doc, requester)  # type: ignore[arg-type] - anything with .sign(bytes)


def check_code(wire: dict[str, str]) -> str:
    """Eight digits both sides derive from the signed request text: ``4821-0937``."""
    digest = hashlib.sha256(wire["h"].encode("utf-8")).digest()
    digits = f"{int.from_bytes(digest[:8], 'big') % 10**8:08d}"
    return f"{digits[:4]}-{digits[4:]}"


def parse_wire(raw: bytes, what: str) -> dict[str, str]:
    """A signed message from bytes (a file, a body), bounded before it is parsed."""
    if len(raw) > MAX_BYTES:
        raise ProtocolError("too_large", f"{what}过大（超过{MAX_BYTES // 1024} KB），不是本系统生成的文件")
    try:
        wire = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise malformed(f"{what}不是有效的JSON，可能已损坏") from None
    if not isinstance(wire, dict) or not isinstance(wire.get("h"), str) or not isinstance(wire.get("s"), str):
        raise malformed(f"{what}缺少签名或内容")
    return {"h": wire["h"], "s": wire["s"]}


def request_header(wire: dict[str, str]) -> dict[str, Any]:
    """The request's claims, NOT yet verified (to find the station's key in the registry)."""
    try:
        doc = doc_header(wire, REQUEST)
    except RecursionError:
        raise malformed("恢复申请") from None
    if not isinstance(doc.get("station"), str) or not doc["station"] or len(doc["station"]) > 64:
        raise malformed("恢复申请缺少工作站编号")
    return doc


def open_request(wire: dict[str, str], station_sign_pub: bytes) -> Request:
    """Verify a request (certificate by the station key, then the request by the requester key)."""
    doc = request_header(wire)
    key = cert_key(doc.get("cert"), doc["station"], station_sign_pub)
    verify(key, unb64(wire["s"], "签名"), wire["h"].encode("utf-8"), who="恢复申请")
    try:
        user = doc["user"]
        OrgCode(doc["org"])
        req = Request(
            id=check_id(doc["id"]),
            station=doc["station"],
            org=doc["org"],
            station_name=_text(doc["station_name"], 100),
            county=_text(doc["county"], 12),
            user_id=_text(user["user_id"], 200),
            login=_text(user["login"], 64),
            name=_text(user["name"], 64),
            role=Role(user["role"]),
            at=_text(doc["at"], 40),
            eph=unb64(doc["eph"], "临时公钥"),
            slot=unb64(doc["slot"], "恢复槽"),
            check_code=check_code(wire),
        )
    except (KeyError, TypeError, ValueError, UserError):
        raise malformed("恢复申请的内容不完整或无效") from None
    if len(req.eph) != 32 or len(req.slot) != 32 + 32 + 16:
        raise malformed("恢复申请中的密钥长度不对")
    return req


def seal_slot(data_key: bytes | bytearray, county_recovery_pub: bytes, station: str) -> bytes:
    """The station's recovery slot: K sealed to the county's recovery key, bound to the station."""
    return _SUITE.encrypt(bytes(data_key), x25519_public_key(county_recovery_pub), info=_SLOT_INFO + station.encode())


def open_slot(sealed: bytes, station: str, county_recovery_key: X25519PrivateKey) -> bytearray:
    """K from a recovery slot (county side); ProtocolError if it was not sealed to this key for this station."""
    try:
        return bytearray(_SUITE.decrypt(sealed, county_recovery_key, info=_SLOT_INFO + station.encode()))
    except (InvalidTag, ValueError):
        raise ProtocolError("signature", "恢复槽无法用本县中心的恢复密钥打开：该工作站的恢复槽属于别的县中心密钥") from None


def make_answer(county_key: KeyPair, req: Request, data_key: bytes | bytearray, *, at: str) -> dict[str, str]:
    sealed = _SUITE.encrypt(bytes(data_key), x25519_public_key(req.eph), info=_info(req.id, req.station))
    doc = {"t": ANSWER, "v": VERSION, "id": req.id, "station": req.station, "user_id": req.user_id, "at": at,
           "key": b64(sealed)}
    return sign_doc(doc, county_key)


def open_answer(wire: dict[str, str], county_sign_pub: bytes) -> Answer:
    try:
        doc = open_doc(wire, county_sign_pub, ANSWER, who="县中心恢复答复")
    except RecursionError:
        raise malformed("县中心恢复答复") from None
    try:
        return Answer(check_id(doc["id"]), _text(doc["station"], 64), _text(doc["user_id"], 200),
                      _text(doc["at"], 40), unb64(doc["key"], "答复中的密钥"))
    except (KeyError, TypeError, ValueError):
        raise malformed("县中心恢复答复的内容不完整") from None


def unseal(answer: Answer, eph: X25519PrivateKey) -> bytes:
    try:
        return _SUITE.decrypt(answer.sealed, eph, info=_info(answer.id, answer.station))
    except (InvalidTag, ValueError):
        raise ProtocolError("signature", "县中心答复中的密钥无法解开：答复不是给这次申请的") from None


def _info(request_id: str, station: str) -> bytes:
    return _ANSWER_INFO + f"{request_id}/{station}".encode()


def _text(value: Any, limit: int) -> str:
    if not isinstance(value, str) or len(value) > limit:
        raise ValueError("bad text")
    return value
