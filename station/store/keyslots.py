"""LUKS-style key slots: one random data key K, wrapped once per user.

``<data_dir>/keyslots.json`` holds, per user, AES-256-GCM(KEK, K) with
KEK = Argon2id(PIN, salt) and the user id as associated data (a slot moved to
another user's entry won't open), plus an optional recovery slot: K encrypted
with HPKE to the county's X25519 recovery key. No PIN hash or verifier is
stored: a wrong PIN shows up only as a GCM tag failure, after the full KDF.
Adding, disabling and re-PINning users rewrites slots, never the database.
Who may do what is the caller's decision.

Limits, stated plainly:
* Failure counters, delays and lockout are enforced by this program, from this
  file. Whoever copies keyslots.json off the shared PC guesses PINs offline with
  no counter at all; then only the Argon2id cost protects K (a 6-digit PIN falls
  in days of CPU time). Long passphrases or a TPM/DPAPI secret would help.
* Disabling a user or resetting a PIN does not stop someone who kept an old copy
  of the file. After a suspected compromise, re-key the database (not done here).
* Each change re-reads the file first, so programs taking turns (UI, admin CLI)
  don't overwrite each other; two writing at the same instant could lose one update.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import math
import os
import re
import unicodedata
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

from schema.errors import NotFoundError, UserError, ValidationError
from schema.org import Role
from station.store.atomicfile import atomic_write

log = logging.getLogger(__name__)

FILE_NAME = "keyslots.json"
FORMAT = "station-keyslots"
VERSION = 1
MAX_FAILURES = 10  # consecutive failures that lock a slot
FREE_FAILURES = 3  # failures allowed before delays start
MAX_DELAY_S = 300
_SLOT_AAD = b"station-keyslot/v1/"
_RECOVERY_INFO = b"station-recovery/v1/"
_KEY_CHECK = b"station-keyslot/v1/key-check"
_SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)
_LOGIN_RE = re.compile(r"[A-Za-z0-9_.-]{1,32}")
_CORRUPT = "密钥文件损坏或缺失：{}，请联系县中心使用恢复密钥"
BACKUP_WARNING = "密钥文件已损坏，已改用备份文件；最近一次的用户变更可能已丢失，请管理员核对用户列表"


@dataclass(frozen=True, kw_only=True)
class KdfParams:
    alg: str = "argon2id"
    iterations: int
    memory_kib: int
    lanes: int

    def __post_init__(self) -> None:
        # Bounds also stop a tampered file from asking for terabytes of memory.
        ok = (
            self.alg == "argon2id"
            and all(type(v) is int for v in (self.iterations, self.memory_kib, self.lanes))
            and 1 <= self.iterations <= 64
            and 1 <= self.lanes <= 16
            and 8 * self.lanes <= self.memory_kib <= 4 * 1024 * 1024
        )
        if not ok:
            raise ValueError(f"unsupported KDF parameters: {self!r}")


# Measured on the 2-vCPU dev VM: one unlock takes ~0.23 s (median of 5), ~0.37 s
# if the two lanes don't run in parallel. Two lanes let the defender use both
# cores; the attacker's cost (128 MiB x 4 passes per guess) is the same.
PRODUCTION = KdfParams(iterations=4, memory_kib=128 * 1024, lanes=2)
LOW = KdfParams(iterations=1, memory_kib=8, lanes=1)  # tests and benchmarks only


def kdf_params_from_env() -> KdfParams:
    return LOW if os.environ.get("STATION_KDF_COST", "").strip().lower() == "low" else PRODUCTION


class SlotFileError(UserError):
    """keyslots.json missing, corrupt, unwritable or from a newer program."""


class SlotFileTooNew(SlotFileError):
    pass


class WrongPin(UserError):
    def __init__(self, remaining: int) -> None:
        super().__init__(f"PIN不正确，还可尝试{remaining}次", field="pin")
        self.remaining = remaining


class UnlockDelayed(UserError):
    def __init__(self, seconds: int) -> None:
        super().__init__(f"PIN错误次数过多，请等待{seconds}秒后再试")
        self.seconds = seconds


class LockedOut(UserError):
    def __init__(self) -> None:
        super().__init__(f"该用户已连续输错{MAX_FAILURES}次，已被锁定，请联系上级人员重置PIN")


class UserDisabled(UserError):
    pass


class RecoveryError(UserError):
    pass


@dataclass(frozen=True)
class SlotInfo:
    user_id: str
    login: str
    name: str
    role: Role
    disabled: bool
    failures: int
    locked: bool


def new_data_key() -> bytearray:
    return bytearray(os.urandom(32))


def validate_pin(pin: str) -> None:
    """Raise ValidationError unless ``pin`` is acceptable as a new PIN."""
    p = _normalize(pin)
    if len(p) < 6:
        raise ValidationError("PIN至少需要6位", field="pin")
    if len(p) > 32:
        raise ValidationError("PIN不能超过32个字符", field="pin")
    if any(c.isspace() or unicodedata.category(c).startswith("C") for c in p):
        raise ValidationError("PIN不能包含空格或控制字符", field="pin")
    if all(c in "0123456789" for c in p):
        steps = {(int(b) - int(a)) % 10 for a, b in zip(p, p[1:], strict=False)}
        if steps in ({0}, {1}, {9}):  # 000000, 123456 / 567890, 654321
            raise ValidationError("PIN过于简单，请不要使用相同或连续的数字", field="pin")


class KeySlots:
    def __init__(self, path: Path, doc: dict[str, Any], *, restored_from_backup: bool = False) -> None:
        self.path = path
        self._doc = doc
        # True when the main file was unreadable and the .bak was used; show BACKUP_WARNING.
        self.restored_from_backup = restored_from_backup

    @classmethod
    def create(cls, path: str | os.PathLike[str], station_id: str) -> KeySlots:
        path = Path(path)
        if not station_id.strip():
            raise ValidationError("站点编号不能为空", field="station_id")
        if path.exists() or _backup_of(path).exists():
            raise SlotFileError(f"密钥文件已存在：{path}，不能重新创建，否则现有用户将无法登录")
        doc = dict(
            format=FORMAT, version=VERSION, station_id=station_id, key_check=None, recovery=None, users=[]
        )
        slots = cls(path, doc)
        slots._commit()
        return slots

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> KeySlots:
        path = Path(path)
        doc, from_backup = _read(path)
        return cls(path, doc, restored_from_backup=from_backup)

    @property
    def station_id(self) -> str:
        return self._doc["station_id"]

    @property
    def has_recovery(self) -> bool:
        return self._doc["recovery"] is not None

    def users(self) -> list[SlotInfo]:
        return [_info(u) for u in self._doc["users"]]

    def find(self, login: str) -> SlotInfo:
        return _info(self._user(login))

    def add_user(
        self,
        *,
        user_id: str,
        login: str,
        name: str,
        role: Role,
        pin: str,
        data_key: bytes | bytearray,
        params: KdfParams | None = None,
    ) -> None:
        role = Role(role)
        if not _LOGIN_RE.fullmatch(login):
            raise ValidationError(
                "登录名须为1–32个字符，只能使用英文字母、数字、下划线、点和连字符", field="login"
            )
        if not name.strip() or len(name) > 64:
            raise ValidationError("姓名不能为空，且不超过64个字符", field="name")
        if not user_id.strip():
            raise ValidationError("用户编号不能为空", field="user_id")
        validate_pin(pin)
        self._begin()
        for u in self._doc["users"]:
            if u["login"].lower() == login.lower():
                raise ValidationError(f"登录名“{login}”已被使用", field="login")
            if u["user_id"] == user_id:
                raise ValidationError(f"用户编号“{user_id}”已存在", field="user_id")
        self._check_data_key(data_key)
        user = dict(user_id=user_id, login=login, name=name, role=role.value, disabled=False)
        self._doc["users"].append(user | _fresh_slot(pin, user_id, data_key, params))
        self._commit()

    def unlock(self, login: str, pin: str, *, now: datetime | None = None) -> tuple[SlotInfo, bytearray]:
        """Return the user and the data key, or raise WrongPin/UnlockDelayed/LockedOut/UserDisabled."""
        now = now.astimezone(UTC) if now else datetime.now(UTC)
        self._begin()  # the counters on disk are the truth, not what we loaded earlier
        u = self._user(login)
        # These checks reveal nothing the user list doesn't already show.
        if u["disabled"]:
            raise UserDisabled("该用户已停用，请联系上级人员")
        if u["failures"] >= MAX_FAILURES:
            raise LockedOut()
        wait = _wait_seconds(u, now)
        if wait > 0:
            raise UnlockDelayed(wait)
        # Count the attempt before trying it, so cutting the power mid-attempt
        # doesn't give a free guess (smart cards do the same).
        u["failures"] += 1
        u["last_failure_at"] = now.isoformat()
        self._commit()
        try:
            key = _unwrap(pin, u["user_id"], u["slot"])
        except InvalidTag:
            if u["failures"] >= MAX_FAILURES:
                raise LockedOut() from None
            raise WrongPin(MAX_FAILURES - u["failures"]) from None
        u["failures"], u["last_failure_at"] = 0, None
        try:
            self._commit()
        except BaseException:
            _wipe(key)
            raise
        return _info(u), key

    def reset_pin(
        self, login: str, new_pin: str, data_key: bytes | bytearray, *, params: KdfParams | None = None
    ) -> None:
        validate_pin(new_pin)
        self._begin()
        u = self._user(login)
        if u["disabled"]:
            raise UserDisabled("该用户已停用，不能重置PIN")
        self._check_data_key(data_key)
        u.update(_fresh_slot(new_pin, u["user_id"], data_key, params))
        self._commit(revoke=True)

    def disable(self, login: str) -> None:
        self._begin()
        u = self._user(login)
        if not u["disabled"]:
            u["disabled"], u["slot"] = True, None
            self._commit(revoke=True)

    def set_recovery(self, county_public_key: bytes, data_key: bytes | bytearray) -> None:
        try:
            pub = X25519PublicKey.from_public_bytes(bytes(county_public_key))
        except (ValueError, TypeError):
            raise ValidationError(
                "县中心恢复公钥无效（应为32字节的X25519公钥）", field="county_key"
            ) from None
        self._begin()
        self._check_data_key(data_key)
        enc = _SUITE.encrypt(data_key, pub, info=_RECOVERY_INFO + self.station_id.encode())
        suite = "X25519/HKDF-SHA256/AES-256-GCM"
        self._doc["recovery"] = dict(suite=suite, public_key=_b64(bytes(county_public_key)), enc=_b64(enc))
        self._commit(revoke=True)  # a replaced county key must not live on in the .bak

    # -- internals ---------------------------------------------------------

    def _user(self, login: str) -> dict[str, Any]:
        for u in self._doc["users"]:
            if u["login"].lower() == str(login).lower():
                return u
        raise NotFoundError(f"没有用户“{login}”", field="login")

    def _check_data_key(self, data_key: bytes | bytearray) -> None:
        # A keyed hash of K (not of any PIN) catches a caller wrapping the wrong
        # key, which would otherwise lock users out of the database. K is 256
        # random bits, so this gives an attacker nothing to guess against.
        if len(data_key) != 32:
            raise ValueError("data key must be 32 bytes")
        check = _key_check(data_key)
        stored = self._doc["key_check"]
        if stored is None:
            self._doc["key_check"] = _b64(check)
        elif not hmac.compare_digest(_unb64(stored), check):
            raise ValueError("data key does not belong to this station's key slots")

    def _begin(self) -> None:
        """Re-read the file so changes another program made since load are kept."""
        doc, from_backup = _read(self.path)
        if doc["station_id"] != self.station_id:
            raise SlotFileError(f"密钥文件 {self.path} 已被替换为其他站点的文件，请联系县中心")
        self._doc, self.restored_from_backup = doc, from_backup

    def _commit(self, *, revoke: bool = False) -> None:
        data = json.dumps(self._doc, ensure_ascii=False, indent=1).encode("utf-8")
        bak = _backup_of(self.path)
        try:
            if revoke:
                # A revoked PIN, user or county key must not come back through the backup.
                atomic_write(self.path, data)
                atomic_write(bak, data)
            elif self.restored_from_backup:
                atomic_write(self.path, data)  # don't rotate the broken main file over the good backup
            else:
                atomic_write(self.path, data, backup=bak)
        except OSError as e:
            raise SlotFileError(
                f"无法保存密钥文件 {self.path}（{e.strerror}），请检查磁盘空间和文件权限"
            ) from e
        self.restored_from_backup = False


def recover_data_key(
    slots: KeySlots | dict[str, Any], county_private_key: bytes | X25519PrivateKey
) -> bytearray:
    """County side, offline: decrypt K from a station's recovery slot."""
    doc = slots._doc if isinstance(slots, KeySlots) else _validated(slots, "恢复数据")
    rec = doc["recovery"]
    if rec is None:
        raise RecoveryError("该站点的密钥文件中没有恢复槽（站点尚未登记县中心恢复公钥），无法恢复")
    priv = county_private_key
    if not isinstance(priv, X25519PrivateKey):
        try:
            priv = X25519PrivateKey.from_private_bytes(bytes(priv))
        except (ValueError, TypeError):
            raise RecoveryError("恢复私钥格式无效（应为32字节的X25519私钥）") from None
    info = _RECOVERY_INFO + doc["station_id"].encode()
    try:
        return bytearray(_SUITE.decrypt(_unb64(rec["enc"]), priv, info=info))
    except InvalidTag:
        raise RecoveryError("恢复私钥与该站点不匹配，无法恢复数据密钥") from None


# -- slot crypto -------------------------------------------------------------


def _normalize(pin: str) -> str:
    # NFKC turns full-width digits from a Chinese IME (１２３) into ASCII, so the
    # same keys give the same PIN whatever input mode was on.
    return unicodedata.normalize("NFKC", pin)


def _derive(pin: str, salt: bytes, p: KdfParams) -> bytearray:
    kek = bytearray(32)
    kdf = Argon2id(salt=salt, length=32, iterations=p.iterations, lanes=p.lanes, memory_cost=p.memory_kib)
    kdf.derive_into(_normalize(pin).encode("utf-8"), kek)
    return kek


def _fresh_slot(
    pin: str, user_id: str, data_key: bytes | bytearray, params: KdfParams | None
) -> dict[str, Any]:
    """A new slot (new salt and nonce) with cleared failure counters."""
    params = params or kdf_params_from_env()
    salt, nonce = os.urandom(16), os.urandom(12)
    kek = _derive(pin, salt, params)
    try:
        ct = AESGCM(kek).encrypt(nonce, data_key, _SLOT_AAD + user_id.encode())
    finally:
        _wipe(kek)
    slot = {"kdf": asdict(params), "salt": _b64(salt), "nonce": _b64(nonce), "ct": _b64(ct)}
    return {"slot": slot, "failures": 0, "last_failure_at": None}


def _unwrap(pin: str, user_id: str, slot: dict[str, Any]) -> bytearray:
    kek = _derive(pin, _unb64(slot["salt"]), KdfParams(**slot["kdf"]))
    key = bytearray(32)
    try:
        AESGCM(kek).decrypt_into(_unb64(slot["nonce"]), _unb64(slot["ct"]), _SLOT_AAD + user_id.encode(), key)
    finally:
        _wipe(kek)
    return key


def _key_check(data_key: bytes | bytearray) -> bytes:
    return hmac.new(data_key, _KEY_CHECK, hashlib.sha256).digest()[:16]


def _wipe(buf: bytearray) -> None:
    buf[:] = bytes(len(buf))  # best effort: Python may have made copies elsewhere


def _wait_seconds(u: dict[str, Any], now: datetime) -> int:
    n = u["failures"]
    if n < FREE_FAILURES or u["last_failure_at"] is None:
        return 0
    delay = min(2 ** (n - FREE_FAILURES), MAX_DELAY_S)
    elapsed = (now - datetime.fromisoformat(u["last_failure_at"])).total_seconds()
    left = delay - max(elapsed, 0.0)  # a clock turned back never waits longer than one delay
    return math.ceil(left) if left > 0 else 0


def _info(u: dict[str, Any]) -> SlotInfo:
    fields = {k: u[k] for k in ("user_id", "login", "name", "disabled", "failures")}
    return SlotInfo(**fields, role=Role(u["role"]), locked=u["failures"] >= MAX_FAILURES)


# -- file format -------------------------------------------------------------


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode("ascii")


def _unb64(s: str, size: int | None = None) -> bytes:
    b = base64.b64decode(s, validate=True)
    if size is not None and len(b) != size:
        raise ValueError("wrong length")
    return b


def _backup_of(path: Path) -> Path:
    return path.with_name(path.name + ".bak")


def _read(path: Path) -> tuple[dict[str, Any], bool]:
    """Parse the file, falling back to the .bak if the main file is unreadable.

    Falling back is safe: every slot is authenticated by AES-GCM, so a stale or
    tampered backup can at worst fail to open, never yield a wrong key; and
    revocations are written to both files. The alternative, refusing to start,
    would stall the service room for days waiting for county recovery.
    """
    try:
        return _parse(path), False
    except SlotFileTooNew:
        raise  # never fall back to an older generation behind a newer program's back
    except SlotFileError as main_error:
        try:
            doc = _parse(_backup_of(path))
        except SlotFileError:
            raise main_error from None
        log.warning("key slot file %s unreadable (%s); using its .bak", path, main_error.message)
        return doc, True


def _parse(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise SlotFileError(_CORRUPT.format(f"找不到 {path}")) from None
    except OSError as e:
        raise SlotFileError(f"密钥文件无法读取：{path}（{e.strerror}），请检查文件权限") from None
    try:
        doc = json.loads(raw.decode("utf-8"))
    except ValueError:
        raise SlotFileError(_CORRUPT.format(f"{path} 内容不完整或格式错误")) from None
    return _validated(doc, str(path))


def _validated(doc: Any, where: str) -> dict[str, Any]:
    """Check every field's type up front so later code can trust the structure."""
    if isinstance(doc, dict) and doc.get("format") == FORMAT and type(doc.get("version")) is int:
        if doc["version"] > VERSION:
            raise SlotFileTooNew(
                f"密钥文件 {where} 来自更新版本的程序（格式版本{doc['version']}），请升级本程序后再试"
            )
    try:
        _check_doc(doc)
    except (ValueError, TypeError, KeyError, AttributeError):
        raise SlotFileError(_CORRUPT.format(f"{where} 内容不完整或格式错误")) from None
    return doc


def _check_doc(doc: Any) -> None:
    def field(d: dict[str, Any], key: str, *types: type) -> Any:
        if type(d[key]) not in types:
            raise ValueError(f"bad field {key!r}")
        return d[key]

    if field(doc, "format", str) != FORMAT or field(doc, "version", int) != VERSION:
        raise ValueError("not a key slot file")
    if not field(doc, "station_id", str):
        raise ValueError("empty station id")
    if field(doc, "key_check", str, type(None)) is not None:
        _unb64(doc["key_check"], 16)
    if (rec := field(doc, "recovery", dict, type(None))) is not None:
        _unb64(field(rec, "public_key", str), 32)
        _unb64(field(rec, "enc", str), 32 + 32 + 16)  # X25519 enc || AES-GCM(K)
    for u in field(doc, "users", list):
        for key in ("user_id", "login", "name"):
            field(u, key, str)
        Role(field(u, "role", str))
        if field(u, "failures", int) < 0:
            raise ValueError("negative failures")
        t = field(u, "last_failure_at", str, type(None))
        if t is not None and datetime.fromisoformat(t).tzinfo is None:
            raise ValueError("naive timestamp")
        slot = field(u, "slot", dict, type(None))
        if field(u, "disabled", bool) != (slot is None):
            raise ValueError("enabled user without slot, or disabled user with one")
        if slot is not None:
            KdfParams(**field(slot, "kdf", dict))
            _unb64(field(slot, "salt", str), 16)
            _unb64(field(slot, "nonce", str), 12)
            _unb64(field(slot, "ct", str), 32 + 16)
