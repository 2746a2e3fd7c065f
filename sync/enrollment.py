"""Enrollment with a one-time code that never crosses a wire (DESIGN.md §6; docs/security.md).

The county admin issues a code (12 characters of a 30-letter alphabet, about 59 bits) and
gives it to whoever sets up the station, by hand or phone — never over the sync link. Both
sides stretch it with Argon2id (:data:`CODE_KDF`, salted with the county code) into 48 bytes:

* ``code_id`` (the first 16): names the code to the county, which stores no plaintext code;
* the confirmation key ``K`` (the last 32).

The exchange is one request and one answer, online or as two files on a USB stick:

* **request** (``t: enroll``): code id, station id, org, name, time, a fresh nonce and the
  station's new public keys; signed with the new key (proof of possession) and carrying
  ``m = HMAC-SHA256(K, "…|request|" + header)``. The county stores the keys only if ``m``
  verifies, so nobody without the code can enroll, and nothing in a real request can be
  changed on the way (another key, another station, another org).
* **answer** (``t: enrolled``): the SHA-256 of the exact request, the county's keys (signing,
  encryption and RECOVERY), its chain id and URL, the station, org and level; signed by the
  county key and carrying ``m = HMAC-SHA256(K, "…|answer|" + header)``. The station accepts
  the county's keys only if ``m`` verifies and the answer names its own request.

Someone who records both messages learns the code id, two MACs and public keys. To learn
anything about the code they must run Argon2id once per guess over ~2^59 codes: ~5·10^8
CPU-years at the fastest derivation measured here (``bench/enroll.py``), while a code is valid
for at most 90 days and is worthless once used. A relay that changes a request or answers in the county's place
is refused by the other side and learns nothing. What remains is the code's own secrecy (read
it over a channel the attacker does not hold) and the fingerprint check (:func:`fingerprint`,
printed by ``county-center enroll`` and shown by the station) for anyone who may have seen it.

The county keeps ``K`` sealed to its own X25519 key (:func:`seal_key`): a copy of the county
database alone does not let anyone answer for a pending code.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

from schema import canonical
from schema.errors import ValidationError
from sync.crypto import KeyPair, PublicKeys, b64, unb64, verify, x25519_public_key
from sync.errors import ProtocolError
from sync.messages import VERSION, doc_header, sign_doc

CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"  # no 0/O, 1/I/L, U: read aloud without mistakes
CODE_LENGTH = 12
# Argon2id at OWASP's minimum (19 MiB, 2 passes): tens of ms per guess here. The code's entropy
# (59 bits) is what makes offline guessing hopeless; the stretch multiplies it by Argon2id's
# memory-hard cost. Fixed by the protocol: both sides must derive the same key.
CODE_KDF = {"iterations": 2, "memory_cost": 19 * 1024, "lanes": 1}
_LABEL = b"station-enroll/1|"
_SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)
_NOT_CODE = re.compile(r"[^0-9A-Z]")
_HEX32 = re.compile(r"[0-9a-f]{32}")


# -- the code --------------------------------------------------------------------------------------


def normalize_code(code: str) -> str:
    """``k7qx m2pd 9trw`` → ``K7QXM2PD9TRW``; a Chinese error when it cannot be a code."""
    compact = _NOT_CODE.sub("", (code or "").upper())
    if len(compact) != CODE_LENGTH or any(c not in CODE_ALPHABET for c in compact):
        raise ValidationError(
            "登记码应为12位字母和数字（如 K7QX-M2PD-9TRW，不含 0、1、I、L、O、U），请核对县中心给出的登记码",
            field="code",
        )
    return compact


def format_code(compact: str) -> str:
    return "-".join(compact[i : i + 4] for i in range(0, len(compact), 4))


@dataclass(frozen=True)
class CodeSecret:
    code_id: str  # 32 hex: names the code to the county
    key: bytes  # 32 bytes: the confirmation key K

    def __repr__(self) -> str:  # never in a log or a traceback
        return f"CodeSecret(code_id={self.code_id!r})"


def derive(code: str, county_code: str) -> CodeSecret:
    """Stretch a one-time code (any spelling :func:`normalize_code` accepts) for ``county_code``."""
    out = Argon2id(salt=_LABEL + county_code.encode("ascii"), length=48, **CODE_KDF).derive(
        normalize_code(code).encode("ascii")
    )
    return CodeSecret(out[:16].hex(), out[16:])


def _mac(key: bytes, part: bytes, header: str) -> bytes:
    return hmac.new(key, _LABEL + part + b"|" + header.encode("utf-8"), hashlib.sha256).digest()


def _check_mac(wire: dict, key: bytes, part: bytes) -> bool:
    try:
        given = unb64(wire.get("m"), "m")
    except ProtocolError:
        return False
    return hmac.compare_digest(given, _mac(key, part, wire["h"]))


# -- the request (station → county) ------------------------------------------------------------------


def make_request(
    key: KeyPair, secret: CodeSecret, *, station: str, org: str, name: str, at: str
) -> dict[str, str]:
    wire = sign_doc(
        {
            "t": "enroll",
            "v": VERSION,
            "code_id": secret.code_id,
            "station": station,
            "org": org,
            "name": name,
            "at": at,
            "nonce": os.urandom(16).hex(),
            **key.public.to_dict(),
        },
        key,
    )
    return {**wire, "m": b64(_mac(secret.key, b"request", wire["h"]))}


@dataclass(frozen=True)
class Request:
    """A request whose signature (proof of possession) has been checked — not yet its code."""

    code_id: str
    station: str
    org: str
    name: str
    keys: PublicKeys
    wire: dict[str, Any]


def _text(doc: dict, key: str, what: str, max_len: int) -> str:
    value = doc.get(key)
    if not isinstance(value, str) or len(value) > max_len or "\x00" in value:
        raise ProtocolError("malformed", f"登记请求的{what}（{key}）无效")
    return value


def read_request(wire: Any) -> Request:
    """Parse a request and verify it is signed by the key it enrolls (cheap checks only)."""
    doc = doc_header(wire, "enroll")
    code_id = doc.get("code_id")
    if not isinstance(code_id, str) or not _HEX32.fullmatch(code_id):
        raise ProtocolError("malformed", "登记请求缺少登记码校验信息（可能来自旧版本程序，请升级工作站程序）")
    if not isinstance(wire.get("m"), str):
        raise ProtocolError("malformed", "登记请求缺少登记码校验值")
    try:
        keys = PublicKeys.from_dict(doc)
    except (ProtocolError, AttributeError):
        raise ProtocolError("malformed", "登记请求中的公钥无效") from None
    verify(keys.sign, unb64(wire["s"], "签名"), wire["h"].encode("utf-8"), who="登记请求")
    for field, what in (("at", "时间"), ("nonce", "随机数")):
        _text(doc, field, what, 64)
    return Request(
        code_id=code_id,
        station=_text(doc, "station", "工作站编号", 64),
        org=_text(doc, "org", "单位代码", 12),
        name=_text(doc, "name", "工作站名称", 100).strip(),
        keys=keys,
        wire={"h": wire["h"], "s": wire["s"], "m": wire["m"]},
    )


def check_request(request: Request, key: bytes) -> None:
    """The request proves knowledge of the code, and nothing in it was changed."""
    if not _check_mac(request.wire, key, b"request"):
        raise ProtocolError(
            "code",
            "登记请求未通过登记码校验：请求在传输中被改动过，或不是用县中心发给本站的登记码生成的。"
            "登记码未被占用，请在可信的网络上重新登记",
        )


def request_digest(wire: dict[str, Any]) -> str:
    return canonical.sha256_hex(wire["h"].encode("utf-8"))


# -- the answer (county → station) --------------------------------------------------------------------


def make_answer(
    county_key: KeyPair, key: bytes, request: Request, *, county: dict[str, Any], level: str
) -> dict[str, str]:
    """``county``: code, name, sign_pub, enc_pub, recovery_pub, station (its chain id), url."""
    wire = sign_doc(
        {
            "t": "enrolled",
            "v": VERSION,
            "request": request_digest(request.wire),
            "county": county,
            "station": request.station,
            "org": request.org,
            "level": level,
        },
        county_key,
    )
    return {**wire, "m": b64(_mac(key, b"answer", wire["h"]))}


@dataclass(frozen=True)
class Answer:
    county: dict[str, Any]  # as sent; its keys checked (32 bytes each)
    sign_pub: bytes
    enc_pub: bytes
    recovery_pub: bytes
    station: str
    org: str
    level: str


def _refused(message: str) -> ProtocolError:
    return ProtocolError("enroll", message)


def open_answer(wire: Any, key: bytes, request: dict[str, Any]) -> Answer:
    """The county's answer to ``request`` (the wire we sent), or a Chinese refusal.

    The code-keyed MAC is checked first: until it verifies, nothing in the answer (not even the
    key it is signed with) is trusted.
    """
    try:
        doc = doc_header(wire, "enrolled")
    except ProtocolError as e:
        raise _refused(f"登记答复无效：{e.message}") from None
    if not _check_mac(wire, key, b"answer"):
        raise _refused(
            "登记答复未通过登记码校验：不是县中心用发给本站的登记码签发的（可能被冒充或改动过，"
            "或是另一次登记申请的答复）。本站没有保存其中任何内容"
        )
    raw = doc.get("county")
    try:
        county = raw if isinstance(raw, dict) else {}
        sign_pub, enc_pub, recovery_pub = (
            unb64(county.get(k), k) for k in ("sign_pub", "enc_pub", "recovery_pub")
        )
        if not all(len(k) == 32 for k in (sign_pub, enc_pub, recovery_pub)):
            raise ValueError
        if not isinstance(county.get("code"), str) or not isinstance(county.get("station"), str):
            raise ValueError
    except (ProtocolError, ValueError):
        raise _refused("登记答复缺少县中心的信息或公钥，不是有效的县中心答复") from None
    try:
        verify(sign_pub, unb64(wire["s"], "签名"), wire["h"].encode("utf-8"), who="县中心登记答复")
    except ProtocolError:
        raise _refused("登记答复的签名校验失败：文件被改动过，或不是县中心签发的") from None
    asked = json.loads(request["h"])
    if doc.get("request") != request_digest(request) or doc.get("station") != asked.get("station"):
        raise _refused("这份登记答复不是对本站这次登记申请的答复（可能是给另一台工作站或旧申请的），不能使用")
    if doc.get("org") != asked.get("org"):
        raise _refused(f"登记答复中的单位（{doc.get('org')}）与本站（{asked.get('org')}）不符，请联系县中心")
    return Answer(
        county=county,
        sign_pub=sign_pub,
        enc_pub=enc_pub,
        recovery_pub=recovery_pub,
        station=str(doc["station"]),
        org=str(doc["org"]),
        level=str(doc.get("level") or ""),
    )


# -- what the county keeps per code, and what people compare --------------------------------------------


def seal_key(key: bytes, county_enc_pub: bytes, code_id: str) -> str:
    """``K`` encrypted to the county's own X25519 key (needs only the public half: no passphrase)."""
    return b64(_SUITE.encrypt(key, x25519_public_key(county_enc_pub), info=_LABEL + code_id.encode()))


def open_key(sealed: str, county_enc_key: X25519PrivateKey, code_id: str) -> bytes:
    return _SUITE.decrypt(unb64(sealed, "sealed key"), county_enc_key, info=_LABEL + code_id.encode())


def fingerprint(sign_pub: bytes, enc_pub: bytes, recovery_pub: bytes) -> str:
    """The county's three public keys as 20 characters in groups of 4 (80 bits), to compare by eye or phone."""
    digest = hashlib.sha256(b"county-keys/1|" + sign_pub + enc_pub + recovery_pub).hexdigest()[:20].upper()
    return " ".join(digest[i : i + 4] for i in range(0, 20, 4))
