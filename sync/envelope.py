"""Sealed envelopes: compressed, encrypted to one or more recipients (HPKE, RFC 9180), then signed.

The same envelope carries a push over HTTP, a pull page back, and a bundle file
on a USB stick (DESIGN.md §5.6). Layout (format version 2)::

    MAGIC (6 bytes) | version (1 byte) | header length (4 bytes, big endian)
    | header (canonical JSON) | nonce (12 bytes) | AES-256-GCM ciphertext
    | Ed25519 signature of the sender over everything before it (64 bytes)

A fresh content key encrypts the compressed payload; the key itself is sealed
with HPKE (X25519, HKDF-SHA256, AES-256-GCM) to every recipient. The header
(type, sender, time, nonce, sizes, recipients) is the AEAD's associated
data. HPKE base mode hides the sender, so the sender signs the finished
envelope (encrypt-then-sign): a receiver checks that signature against the key
it has registered for the named sender BEFORE it decrypts, decompresses or parses
anything, so nobody who merely knows a recipient's public key can make it expand
a payload. The header's ``at`` (the sender's idea of county time, epoch ms) and
random ``nonce`` let the county refuse replayed requests. Nothing in an envelope
is readable without a recipient's private key; a lost stick shows only the
file's size.

Version 1 (no signature) is refused: nothing was deployed with it.
"""

from __future__ import annotations

import os
import struct
import time
import zlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from schema import canonical
from sync import bounded
from sync.crypto import KeyPair, b64, key_id, unb64, verify, x25519_public, x25519_public_key
from sync.errors import ProtocolError, malformed

MAGIC = b"CVSYNC"
VERSION = 2
_SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)
_PREFIX = struct.Struct(">6sBI")
SIGNATURE = 64
MAX_HEADER = 16 * 1024
HEADER_DEPTH = 3  # {"to": [{"kid", "enc"}]}
TYPES = ("push", "pull", "page", "bundle", "return")


@dataclass(frozen=True)
class Opened:
    type: str
    sender: str
    header: dict
    payload: bytes


def _info(kind: str) -> bytes:
    return b"cvsync/2|" + kind.encode()


def seal(
    payload: bytes,
    *,
    kind: str,
    sender: str,
    recipients: list[bytes],
    signer: KeyPair,
    at_ms: int | None = None,
    level: int = 6,
) -> bytes:
    """Encrypt ``payload`` for every X25519 public key in ``recipients``; sign as ``sender`` with ``signer``.

    ``at_ms``: the sender's best idea of county time (the county refuses requests far from its own);
    default this machine's clock.
    """
    if kind not in TYPES:
        raise ValueError(f"unknown envelope type {kind}")
    cek = AESGCM.generate_key(bit_length=256)
    wrapped = [
        {"kid": key_id(pub), "enc": b64(_SUITE.encrypt(cek, x25519_public_key(pub), info=_info(kind)))}
        for pub in recipients
    ]
    compressed = zlib.compress(payload, level)
    header = canonical.encode(
        {
            "v": VERSION,
            "type": kind,
            "from": sender,
            "at": int(time.time() * 1000) if at_ms is None else at_ms,
            "nonce": os.urandom(16).hex(),
            "comp": "zlib",
            "size": len(compressed) + 16,  # the ciphertext: a file cut short is told apart from a forged one
            "to": wrapped,
        }
    )
    nonce = os.urandom(12)
    body = AESGCM(cek).encrypt(nonce, compressed, header)
    signed = _PREFIX.pack(MAGIC, VERSION, len(header)) + header + nonce + body
    return signed + signer.sign(signed)


def peek(blob: bytes) -> dict:
    """The header of an envelope, checked for shape but NOT authenticated: type, sender (``from``),
    ``at``, ``nonce``, recipient key ids (``to``)."""
    if len(blob) < _PREFIX.size or blob[:6] != MAGIC:
        raise malformed("不是同步数据文件（文件头不符），可能不是本系统导出的文件或已损坏")
    _, version, n = _PREFIX.unpack_from(blob)
    if version != VERSION:
        raise ProtocolError(
            "version", f"同步数据格式版本为{version}，本程序只支持版本{VERSION}：请把两端的程序升级到同一版本"
        )
    if n > MAX_HEADER or len(blob) < _PREFIX.size + n + 12 + 16 + SIGNATURE:
        raise malformed("同步数据文件不完整（可能拷贝未完成或已损坏）")
    text = blob[_PREFIX.size : _PREFIX.size + n]
    header = bounded.loads(text, "同步数据文件头", max_depth=HEADER_DEPTH)
    if (
        not isinstance(header, dict)
        or header.get("type") not in TYPES
        or not isinstance(header.get("from"), str)
        or type(header.get("at")) is not int
        or not isinstance(header.get("nonce"), str)
        or not isinstance(header.get("to"), list)
        or type(header.get("size")) is not int
    ):
        raise malformed("同步数据文件头已损坏")
    if len(blob) != _PREFIX.size + n + 12 + header["size"] + SIGNATURE:
        raise malformed("同步数据文件不完整（可能拷贝未完成或已损坏）")
    try:
        canonical_text = canonical.encode(header)
    except (TypeError, ValueError):
        canonical_text = b""
    if canonical_text != text:
        raise malformed("同步数据文件头不是规范格式")
    return header


def addressed_to(header: dict, public: bytes) -> bool:
    """Whether the envelope whose header this is was sealed to the X25519 key ``public``."""
    mine = key_id(public)
    return any(isinstance(r, dict) and r.get("kid") == mine for r in header["to"])


def check_signature(blob: bytes, sender_public: bytes) -> None:
    """The sender's signature over the envelope, or a ``signature`` refusal."""
    verify(sender_public, blob[-SIGNATURE:], blob[:-SIGNATURE], who="同步数据的发送方")


def open_sealed(
    blob: bytes,
    private: X25519PrivateKey,
    sender_public: bytes,
    *,
    expect: tuple[str, ...],
    max_payload: int,
) -> Opened:
    """Check the sender's signature with ``sender_public`` (the key registered for the sender the
    header names), then decrypt and decompress at most ``max_payload`` bytes."""
    _expected(blob, expect)
    check_signature(blob, sender_public)
    return decrypt(blob, private, expect=expect, max_payload=max_payload)


def decrypt(blob: bytes, private: X25519PrivateKey, *, expect: tuple[str, ...], max_payload: int) -> Opened:
    """Decrypt and decompress WITHOUT checking the sender: call :func:`check_signature` first. The one
    exception is a township taking a bundle from a village whose key it does not know yet (all
    inside is signed and verified later), within small bounds (:mod:`sync.bounded`)."""
    header = _expected(blob, expect)
    kind = header["type"]
    mine = key_id(x25519_public(private))
    slot = next((r for r in header["to"] if isinstance(r, dict) and r.get("kid") == mine), None)
    if slot is None:
        raise ProtocolError(
            "wrong_county", "这份同步数据不是发给本单位的（收件人密钥不符），请确认县中心或上级工作站"
        )
    start = _PREFIX.size + _PREFIX.unpack_from(blob)[2]
    header_bytes = blob[_PREFIX.size : start]
    try:
        cek = _SUITE.decrypt(unb64(slot.get("enc"), "enc"), private, info=_info(kind))
        nonce, body = blob[start : start + 12], blob[start + 12 : -SIGNATURE]
        compressed = AESGCM(cek).decrypt(nonce, body, header_bytes)
    except (InvalidTag, ValueError, ProtocolError):
        raise malformed("同步数据无法解密：文件已损坏或被改动") from None
    return Opened(kind, header["from"], header, inflate(compressed, max_payload))


def _expected(blob: bytes, expect: tuple[str, ...]) -> dict:
    header = peek(blob)
    if header["type"] not in expect:
        raise malformed(f"收到的是“{header['type']}”类型的数据，此处需要{'/'.join(expect)}")
    return header


def inflate(compressed: bytes, max_payload: int) -> bytes:
    """zlib-decompress in a stream that stops at ``max_payload`` bytes (a bomb is refused, not expanded)."""
    d = zlib.decompressobj()
    try:
        payload = d.decompress(compressed, max_payload)
    except zlib.error:
        raise malformed("同步数据解压失败") from None
    if d.unconsumed_tail or not d.eof:
        raise ProtocolError(
            "too_large", f"同步数据解压后超过{max_payload // 1024} KB 或不完整，已拒收", limit=max_payload
        )
    return payload
