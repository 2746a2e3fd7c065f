"""Keys, signatures and passphrase-wrapped secrets for sync (DESIGN.md §5–§6).

Stations and the county each hold an Ed25519 signing key and an X25519
encryption key; the county also has an X25519 recovery key whose public half
goes into every station's recovery key slot. Signatures are always over exact
canonical bytes that travel unchanged, so nothing is re-serialised before it
is verified.
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

from schema import canonical
from sync.errors import ProtocolError, malformed

_RAW = serialization.Encoding.Raw
_RAW_PUB = serialization.PublicFormat.Raw
_RAW_PRIV = serialization.PrivateFormat.Raw
_NOENC = serialization.NoEncryption()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: object, what: str = "base64") -> bytes:
    if not isinstance(text, str):
        raise malformed(what)
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError):
        raise malformed(what) from None


def key_id(public: bytes) -> str:
    """Short, stable name of a public key (shown to admins, used to pick a recipient)."""
    return hashlib.sha256(public).hexdigest()[:16]


@dataclass(frozen=True)
class PublicKeys:
    sign: bytes  # Ed25519, 32 bytes
    enc: bytes  # X25519, 32 bytes

    def to_dict(self) -> dict[str, str]:
        return {"sign_pub": b64(self.sign), "enc_pub": b64(self.enc)}

    @classmethod
    def from_dict(cls, d: dict) -> PublicKeys:
        sign, enc = unb64(d.get("sign_pub"), "sign_pub"), unb64(d.get("enc_pub"), "enc_pub")
        if len(sign) != 32 or len(enc) != 32:
            raise malformed("公钥长度应为32字节")
        return cls(sign, enc)


class KeyPair:
    """A party's private keys: Ed25519 for signing, X25519 for receiving sealed data."""

    def __init__(self, sign: Ed25519PrivateKey, enc: X25519PrivateKey) -> None:
        self.sign_key = sign
        self.enc_key = enc

    @classmethod
    def generate(cls) -> KeyPair:
        return cls(Ed25519PrivateKey.generate(), X25519PrivateKey.generate())

    @classmethod
    def from_bytes(cls, data: bytes) -> KeyPair:
        if len(data) != 64:
            raise ValueError("a key pair is 64 bytes (Ed25519 seed + X25519 scalar)")
        return cls(
            Ed25519PrivateKey.from_private_bytes(data[:32]), X25519PrivateKey.from_private_bytes(data[32:])
        )

    def to_bytes(self) -> bytes:
        return self.sign_key.private_bytes(_RAW, _RAW_PRIV, _NOENC) + self.enc_key.private_bytes(
            _RAW, _RAW_PRIV, _NOENC
        )

    @property
    def public(self) -> PublicKeys:
        return PublicKeys(
            self.sign_key.public_key().public_bytes(_RAW, _RAW_PUB),
            self.enc_key.public_key().public_bytes(_RAW, _RAW_PUB),
        )

    def sign(self, data: bytes) -> bytes:
        return self.sign_key.sign(data)


def x25519_public(private: X25519PrivateKey) -> bytes:
    return private.public_key().public_bytes(_RAW, _RAW_PUB)


def verify(public: bytes, signature: bytes, data: bytes, *, who: str = "") -> None:
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, data)
    except (InvalidSignature, ValueError):
        raise ProtocolError("signature", f"{who}签名校验失败：数据被改动过，或不是由登记的密钥签发") from None


def x25519_public_key(data: bytes) -> X25519PublicKey:
    try:
        return X25519PublicKey.from_public_bytes(data)
    except ValueError:
        raise malformed("X25519公钥") from None


# -- secrets wrapped under a passphrase (the county's private keys) ---------------------------------


@dataclass(frozen=True)
class KdfCost:
    iterations: int
    memory_kib: int
    lanes: int


PASSPHRASE_COST = KdfCost(iterations=3, memory_kib=256 * 1024, lanes=2)
LOW_COST = KdfCost(iterations=1, memory_kib=8, lanes=1)  # tests only


def _cost() -> KdfCost:
    return LOW_COST if os.environ.get("COUNTY_KDF_COST", "").lower() == "low" else PASSPHRASE_COST


def _kek(passphrase: str, salt: bytes, cost: KdfCost) -> bytes:
    kdf = Argon2id(
        salt=salt, length=32, iterations=cost.iterations, lanes=cost.lanes, memory_cost=cost.memory_kib
    )
    return kdf.derive(passphrase.encode("utf-8"))


def wrap_secret(secret: bytes, passphrase: str, *, label: str) -> dict:
    """Encrypt ``secret`` under a passphrase (Argon2id + AES-GCM, ``label`` bound as AAD)."""
    if len(passphrase) < 8:
        raise ProtocolError("passphrase", "管理口令至少8个字符")
    cost = _cost()
    salt, nonce = os.urandom(16), os.urandom(12)
    ct = AESGCM(_kek(passphrase, salt, cost)).encrypt(nonce, secret, label.encode())
    return {
        "kdf": "argon2id",
        "t": cost.iterations,
        "m": cost.memory_kib,
        "p": cost.lanes,
        "salt": b64(salt),
        "nonce": b64(nonce),
        "ct": b64(ct),
    }


def unwrap_secret(doc: dict, passphrase: str, *, label: str) -> bytes:
    try:
        cost = KdfCost(int(doc["t"]), int(doc["m"]), int(doc["p"]))
        kek = _kek(passphrase, unb64(doc["salt"]), cost)
        return AESGCM(kek).decrypt(unb64(doc["nonce"]), unb64(doc["ct"]), label.encode())
    except InvalidTag:
        raise ProtocolError("passphrase", "管理口令不正确") from None
    except (KeyError, TypeError, ValueError):
        raise malformed("加密的密钥记录") from None


def digest(data: bytes) -> str:
    return canonical.sha256_hex(data)
