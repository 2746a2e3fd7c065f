"""Sealed envelopes: compressed, encrypted to one or more recipients (HPKE, RFC 9180).

The same envelope carries a push over HTTP, a pull page back, and a bundle file
on a USB stick (DESIGN.md §5.6). Layout::

    MAGIC (6 bytes) | version (1 byte) | header length (4 bytes, big endian)
    | header (canonical JSON) | nonce (12 bytes) | AES-256-GCM ciphertext

A fresh content key encrypts the compressed payload; the key itself is sealed
with HPKE (X25519, HKDF-SHA256, AES-256-GCM) to every recipient. The header
(type, sender, recipients, compression) is the AEAD's associated data, so none
of it can be changed. HPKE base mode hides the sender, which is why everything
inside is also signed. Nothing in an envelope is readable without a recipient's
private key; a lost stick shows only the file's size.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from schema import canonical
from sync.crypto import b64, key_id, unb64, x25519_public, x25519_public_key
from sync.errors import ProtocolError, malformed

MAGIC = b"CVSYNC"
VERSION = 1
_SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)
_PREFIX = struct.Struct(">6sBI")
MAX_HEADER = 16 * 1024
# Decompressed payloads larger than this are refused (a small file must not expand into gigabytes).
MAX_PAYLOAD = 256 * 1024 * 1024
TYPES = ("push", "pull", "page", "bundle", "return")


@dataclass(frozen=True)
class Opened:
    type: str
    sender: str
    header: dict
    payload: bytes


def _info(kind: str) -> bytes:
    return b"cvsync/1|" + kind.encode()


def seal(payload: bytes, *, kind: str, sender: str, recipients: list[bytes], level: int = 6) -> bytes:
    """Encrypt ``payload`` for every X25519 public key in ``recipients``."""
    if kind not in TYPES:
        raise ValueError(f"unknown envelope type {kind}")
    cek = AESGCM.generate_key(bit_length=256)
    wrapped = [
        {"kid": key_id(pub), "enc": b64(_SUITE.encrypt(cek, x25519_public_key(pub), info=_info(kind)))}
        for pub in recipients
    ]
    header = canonical.encode({"v": VERSION, "type": kind, "from": sender, "comp": "zlib", "to": wrapped})
    nonce = os.urandom(12)
    body = AESGCM(cek).encrypt(nonce, zlib.compress(payload, level), header)
    return _PREFIX.pack(MAGIC, VERSION, len(header)) + header + nonce + body


def peek(blob: bytes) -> dict:
    """The header of an envelope, without decrypting (type, sender, recipient key ids)."""
    if len(blob) < _PREFIX.size or blob[:6] != MAGIC:
        raise malformed("不是同步数据文件（文件头不符），可能不是本系统导出的文件或已损坏")
    _, version, n = _PREFIX.unpack_from(blob)
    if version != VERSION:
        raise ProtocolError("version", f"同步数据格式版本为{version}，本程序只支持版本{VERSION}，请升级程序")
    if n > MAX_HEADER or len(blob) < _PREFIX.size + n + 12 + 16:
        raise malformed("同步数据文件不完整（可能拷贝未完成或已损坏）")
    try:
        header = json.loads(blob[_PREFIX.size : _PREFIX.size + n])
        if (
            not isinstance(header, dict)
            or header.get("type") not in TYPES
            or not isinstance(header.get("to"), list)
        ):
            raise ValueError
    except ValueError:
        raise malformed("同步数据文件头已损坏") from None
    return header


def open_sealed(blob: bytes, private: X25519PrivateKey, *, expect: tuple[str, ...] | None = None) -> Opened:
    header = peek(blob)
    kind = header["type"]
    if expect and kind not in expect:
        raise malformed(f"收到的是“{kind}”类型的数据，此处需要{'/'.join(expect)}")
    start = _PREFIX.size + len(canonical.encode(header))
    header_bytes = blob[_PREFIX.size : start]
    if header_bytes != canonical.encode(header):
        raise malformed("同步数据文件头不是规范格式")
    mine = key_id(x25519_public(private))
    slot = next((r for r in header["to"] if isinstance(r, dict) and r.get("kid") == mine), None)
    if slot is None:
        raise ProtocolError(
            "wrong_county", "这份同步数据不是发给本单位的（收件人密钥不符），请确认县中心或上级工作站"
        )
    try:
        cek = _SUITE.decrypt(unb64(slot.get("enc"), "enc"), private, info=_info(kind))
        nonce, body = blob[start : start + 12], blob[start + 12 :]
        compressed = AESGCM(cek).decrypt(nonce, body, header_bytes)
    except (InvalidTag, ValueError):
        raise malformed("同步数据无法解密：文件已损坏或被改动") from None
    d = zlib.decompressobj()
    try:
        payload = d.decompress(compressed, MAX_PAYLOAD)
    except zlib.error:
        raise malformed("同步数据解压失败") from None
    if d.unconsumed_tail or not d.eof:
        raise ProtocolError("too_large", "同步数据解压后过大或不完整，已拒收")
    return Opened(kind, str(header.get("from", "")), header, payload)
