"""LUKS-style key slots: one random data key K, wrapped once per user.

``<data_dir>/keyslots.json`` holds, per user, AES-256-GCM(KEK, K) with the user id as associated
data (a slot moved to another user's entry won't open). KEK = Argon2id(PIN, salt), and where this
computer has a credential store (Windows Credential Manager, the Secret Service, …) a random
device secret kept there is mixed in: KEK = HKDF-SHA256(Argon2id(PIN, salt) ‖ device secret). A
copy of the data directory then cannot be guessed offline without the PC's store
(``station.store.devicesecret``). Slots made before the store was available (or by an older
program) are re-wrapped at their user's next unlock. The file also holds the recovery slot (K
sealed with HPKE to the county's X25519 recovery key), what a locked-out user needs to ask the
county for recovery (``station.recovery``), and the failure counters. A backup restored on a new PC
opens through that recovery; the file is then bound to the new PC's secret.

No PIN hash or verifier is stored: a wrong PIN shows up only as a GCM tag failure, after the full KDF.
Adding, disabling and re-PINning users rewrites slots, never the database. Who may do what is the
caller's decision.

Failures: 3 free, then delays doubling from 1 s to 5 min, and from the 10th consecutive failure a
lock of 15 minutes, then 1, 4 and 24 hours per further failure (never permanent: the last agent of
a village PC must not be shut out for good; a higher role or the county can reset earlier). Every
read-modify-write of the file holds an exclusive lock on ``keyslots.json.lock``, so parallel
attempts (UI and CLI at once) are counted one by one. An attempt is counted on disk before it is
tried. When the counter cannot be written (a full or read-only disk), the attempt still goes ahead
for a user with fewer than 3 recorded failures (the right PIN always opens, for reading and
exporting), up to 3 such unrecorded attempts per program run; otherwise it is refused with the
real cause. ``docs/security.md`` ("Key slots and PINs") states what remains.

Limits, stated plainly:
* Counters and delays are enforced by this program, from this file. Whoever can run code as the
  PC's Windows user can read the device secret, copy the file and guess offline; then only the
  Argon2id cost and the PIN's length protect K. Passphrases (``validate_pin``) help there.
* Disabling a user or resetting a PIN does not stop someone who kept an old copy of the file (and,
  where there is one, the device secret). After a suspected compromise, re-key the database.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import os
import re
import unicodedata
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from schema.errors import NotFoundError, UserError, ValidationError
from schema.org import Role
from station.clock import CST
from station.store import slotfile
from station.store.slotfile import (  # noqa: F401 - re-exported: the key slots' public names
    RESERVE_BYTES,
    VERSION,
    KdfParams,
    SlotFileError,
    SlotFileTooNew,
    file_lock,
    release_reserve,
)
from station.store.slotfile import b64 as _b64
from station.store.slotfile import unb64 as _unb64
from sync import recovery as recovery_format

log = logging.getLogger(__name__)

FILE_NAME = "keyslots.json"
MAX_FAILURES = 10  # consecutive failures that lock a slot (for a while)
FREE_FAILURES = 3  # failures allowed before delays start
MAX_DELAY_S = 300
LOCK_STEPS_S = (15 * 60, 60 * 60, 4 * 60 * 60, 24 * 60 * 60)  # 10th failure, 11th, 12th, 13th and later
MAX_RECOVERY_FAILURES = 5  # wrong new PINs when applying a county answer before the request is void
_SLOT_AAD = b"station-keyslot/v1/"
_PENDING_AAD = b"station-recovery-pending/v1/"
_DEVICE_INFO = b"station-keyslot/v2/device/"
_DEVICE_CHECK = b"station-keyslot/v2/device-check"
_KEY_CHECK = b"station-keyslot/v1/key-check"
_LOGIN_RE = re.compile(r"[A-Za-z0-9_.-]{1,32}")
BACKUP_WARNING = "密钥文件已损坏，已改用备份文件；最近一次的用户变更可能已丢失，请管理员核对用户列表"
LOW_DISK_NOTICE = "磁盘空间已满：已动用预留空间，现在可以查看和导出，但新的办理可能无法保存。请尽快删除不需要的文件"
MIN_PIN, MIN_PASSPHRASE, MAX_SECRET = 6, 8, 64
PASSPHRASE_RULE = "口令至少8个字符，并须包含字母、数字、符号、汉字中的至少两类（全用汉字时至少6个字）"

# Attempts this process let through although their counter could not be written, per slot file
# and user: a full disk must not hand someone at the keyboard unlimited guesses.
_UNCOUNTED: dict[tuple[str, str], int] = {}


# Measured on the 2-vCPU dev VM: one unlock takes ~0.23 s (median of 5), ~0.37 s
# if the two lanes don't run in parallel. Two lanes let the defender use both
# cores; the attacker's cost (128 MiB x 4 passes per guess) is the same.
PRODUCTION = KdfParams(iterations=4, memory_kib=128 * 1024, lanes=2)
LOW = KdfParams(iterations=1, memory_kib=8, lanes=1)  # tests and benchmarks only


def kdf_params_from_env() -> KdfParams:
    return LOW if os.environ.get("STATION_KDF_COST", "").strip().lower() == "low" else PRODUCTION


class WrongPin(UserError):
    def __init__(self, remaining: int, *, uncounted: bool = False) -> None:
        text = f"PIN不正确，还可尝试{remaining}次"
        if uncounted:
            text = "PIN不正确（磁盘已满或不可写，本次错误未能记录；请尽快清理磁盘）"
        super().__init__(text, field="pin")
        self.remaining = remaining


class UnlockDelayed(UserError):
    def __init__(self, seconds: int) -> None:
        super().__init__(f"PIN错误次数过多，请等待{seconds}秒后再试")
        self.seconds = seconds


class LockedOut(UserError):
    """Locked for a while (growing with each further failure), never for good."""

    def __init__(self, seconds: int, failures: int = MAX_FAILURES, *, now: datetime | None = None) -> None:
        until = (now or datetime.now(UTC)) + timedelta(seconds=seconds)
        local = until.astimezone(CST).strftime("%H:%M")
        super().__init__(
            f"该用户已连续输错{failures}次，已被锁定{_duration(seconds)}，请于{local}以后再试；"
            "忘记PIN可请上级人员重置，或向县中心申请恢复"
        )
        self.seconds = seconds
        self.failures = failures


class UserDisabled(UserError):
    pass


class RecoveryError(UserError):
    pass


class DeviceSecretMissing(UserError):
    """A device-bound slot on a computer that lacks (or has another) device secret."""


class CounterUnwritable(UserError):
    """The failure counter cannot be saved and the policy refuses an uncounted attempt."""


@dataclass(frozen=True)
class SlotInfo:
    user_id: str
    login: str
    name: str
    role: Role
    disabled: bool
    failures: int
    locked: bool
    device_bound: bool = False
    recovery_pending: bool = False


@dataclass(frozen=True)
class Protection:
    """How the slots are protected, for the admin screen and the CLI."""

    store: str | None  # the credential store's name, None when this computer has none usable
    bound: int  # active users whose slot uses the device secret
    active: int

    @property
    def file_only(self) -> bool:
        return self.bound < self.active

    def text(self) -> str:
        if self.active and self.bound == self.active:
            return f"PIN + 本机设备密钥（{self.store or '系统凭据'}）：复制走的数据目录无法离线猜测PIN"
        if self.store is None:
            return (
                "警告：本机没有可用的系统凭据库，PIN只受密钥文件保护：拿到数据目录副本的人可以离线猜测PIN。"
                "请使用长口令，并妥善保管电脑和备份"
            )
        return (
            f"{self.active - self.bound}个用户的PIN尚未绑定本机设备密钥（{self.store}），"
            "这些用户下次登录时自动绑定"
        )


def new_data_key() -> bytearray:
    return bytearray(os.urandom(32))


def validate_pin(pin: str) -> None:
    """Raise ValidationError unless ``pin`` is acceptable as a new PIN or passphrase.

    A PIN is 6 or more digits, not all the same nor a run. Anything with a letter, symbol or 汉字
    is a passphrase (口令) and must be at least 8 characters of two kinds (6 汉字 alone will do):
    it is what makes an offline guess expensive once the file is copied.
    """
    p = _normalize(pin)
    if len(p) < MIN_PIN:
        raise ValidationError("PIN至少需要6位", field="pin")
    if len(p) > MAX_SECRET:
        raise ValidationError(f"PIN或口令不能超过{MAX_SECRET}个字符", field="pin")
    if any(c.isspace() or unicodedata.category(c).startswith("C") for c in p):
        raise ValidationError("PIN不能包含空格或控制字符", field="pin")
    if all(c in "0123456789" for c in p):
        steps = {(int(b) - int(a)) % 10 for a, b in zip(p, p[1:], strict=False)}
        if steps in ({0}, {1}, {9}):  # 000000, 123456 / 567890, 654321
            raise ValidationError("PIN过于简单，请不要使用相同或连续的数字", field="pin")
        return
    kinds = {_kind(c) for c in p}
    if "han" in kinds and kinds == {"han"} and len(p) >= 6:
        return
    if len(p) < MIN_PASSPHRASE or len(kinds) < 2:
        raise ValidationError(PASSPHRASE_RULE, field="pin")


def _kind(c: str) -> str:
    if c in "0123456789":
        return "digit"
    if c.isascii() and c.isalpha():
        return "letter"
    if unicodedata.category(c) == "Lo":
        return "han"
    if c.isalpha():
        return "letter"
    return "symbol"


class KeySlots:
    def __init__(self, path: Path, doc: dict[str, Any], *, restored_from_backup: bool = False) -> None:
        self.path = path
        self._doc = doc
        # True when the main file was unreadable and the .bak was used; show BACKUP_WARNING.
        self.restored_from_backup = restored_from_backup
        # What the last unlock wants the user to know (a counter that could not be saved …).
        self.notices: list[str] = []

    @classmethod
    def create(cls, path: str | os.PathLike[str], station_id: str) -> KeySlots:
        path = Path(path)
        if not station_id.strip():
            raise ValidationError("站点编号不能为空", field="station_id")
        if path.exists() or slotfile.backup_of(path).exists():
            raise SlotFileError(f"密钥文件已存在：{path}，不能重新创建，否则现有用户将无法登录")
        slots = cls(path, slotfile.new_doc(station_id))
        with file_lock(path):
            slots._commit()
        return slots

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> KeySlots:
        path = Path(path)
        with file_lock(path, reading=True):
            doc, from_backup = slotfile.read(path)
        return cls(path, doc, restored_from_backup=from_backup)

    @property
    def station_id(self) -> str:
        return self._doc["station_id"]

    @property
    def has_recovery(self) -> bool:
        return self._doc["recovery"] is not None

    @property
    def recovery(self) -> dict[str, Any] | None:
        """The recovery section (county keys, the requester key), as stored; None before enrollment."""
        return self._doc["recovery"]

    def users(self) -> list[SlotInfo]:
        return [_info(u) for u in self._doc["users"]]

    def find(self, login: str) -> SlotInfo:
        return _info(self._user(login))

    def protection(self) -> Protection:
        from station.store import devicesecret

        active = [u for u in self._doc["users"] if not u["disabled"]]
        bound = sum(1 for u in active if u["slot"].get("device"))
        return Protection(devicesecret.store_name(), bound, len(active))

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
        with file_lock(self.path):
            self._begin()
            for u in self._doc["users"]:
                if u["login"].lower() == login.lower():
                    raise ValidationError(f"登录名“{login}”已被使用", field="login")
                if u["user_id"] == user_id:
                    raise ValidationError(f"用户编号“{user_id}”已存在", field="user_id")
            self._check_data_key(data_key)
            device = self._device_for_new_slot()
            user = dict(user_id=user_id, login=login, name=name, role=role.value, disabled=False,
                        recovery_pending=None)
            self._doc["users"].append(user | _fresh_slot(pin, user_id, data_key, params, device))
            self._commit()

    def unlock(self, login: str, pin: str, *, now: datetime | None = None) -> tuple[SlotInfo, bytearray]:
        """Return the user and the data key, or raise WrongPin/UnlockDelayed/LockedOut/UserDisabled/…

        ``notices`` then holds what the user should be told (e.g. the counter could not be saved).
        """
        now = now.astimezone(UTC) if now else datetime.now(UTC)
        self.notices = []
        user_id, slot, device, failures, problem = self._count_attempt(login, now)
        try:
            key, stretched = _unwrap(pin, user_id, slot, device)
        except InvalidTag:
            if problem is not None:
                raise WrongPin(MAX_FAILURES - failures, uncounted=True) from None
            if failures >= MAX_FAILURES:
                raise LockedOut(_delay(failures), failures, now=now) from None
            raise WrongPin(MAX_FAILURES - failures) from None
        try:
            if problem is not None:
                self.notices.append(problem + "。本次登录可以查看和导出，但新的办理可能无法保存，请尽快处理")
            self._after_success(login, slot, stretched, key)
        except BaseException:
            _wipe(key)
            raise
        finally:
            _wipe(stretched)
        return self.find(login), key

    def check_pin(self, login: str, pin: str, *, now: datetime | None = None) -> None:
        """Verify ``login``'s current PIN (counted like an unlock); raise as ``unlock`` does."""
        _, key = self.unlock(login, pin, now=now)
        _wipe(key)

    def reset_pin(
        self, login: str, new_pin: str, data_key: bytes | bytearray, *, params: KdfParams | None = None
    ) -> None:
        validate_pin(new_pin)
        with file_lock(self.path):
            self._begin()
            u = self._user(login)
            if u["disabled"]:
                raise UserDisabled("该用户已停用，不能重置PIN")
            self._check_data_key(data_key)
            u.update(_fresh_slot(new_pin, u["user_id"], data_key, params, self._device_for_new_slot(u["user_id"])))
            u["recovery_pending"] = None
            self._commit(revoke=True)

    def disable(self, login: str) -> None:
        with file_lock(self.path):
            self._begin()
            u = self._user(login)
            if not u["disabled"]:
                u["disabled"], u["slot"], u["recovery_pending"] = True, None, None
                self._commit(revoke=True)

    def set_recovery(
        self, county_public_key: bytes, data_key: bytes | bytearray, *, county_sign_pub: bytes | None = None
    ) -> None:
        try:
            pub = X25519PublicKey.from_public_bytes(bytes(county_public_key))
        except (ValueError, TypeError):
            raise ValidationError(
                "县中心恢复公钥无效（应为32字节的X25519公钥）", field="county_key"
            ) from None
        if county_sign_pub is not None and len(county_sign_pub) != 32:
            raise ValidationError("县中心签名公钥无效（应为32字节）", field="county_key")
        with file_lock(self.path):
            self._begin()
            self._check_data_key(data_key)
            enc = recovery_format.seal_slot(data_key, pub.public_bytes_raw(), self.station_id)
            old = self._doc["recovery"] or {}
            same_county = old.get("public_key") == _b64(bytes(county_public_key))
            self._doc["recovery"] = dict(
                suite="X25519/HKDF-SHA256/AES-256-GCM",
                public_key=_b64(bytes(county_public_key)),
                enc=_b64(enc),
                county_sign_pub=_b64(county_sign_pub) if county_sign_pub else None,
                # A requester certified for another county key is of no use with the new one.
                requester=old.get("requester") if same_county else None,
            )
            self._commit(revoke=True)  # a replaced county key must not live on in the .bak

    def set_requester(self, private_key: bytes, cert: dict[str, str]) -> None:
        """Store the key that signs recovery requests, in the clear: it must still work when the
        database is locked, and on a new PC after a backup was restored there. It can only ask;
        the county admin's phone call decides (``docs/security.md``)."""
        with file_lock(self.path):
            self._begin()
            rec = self._doc["recovery"]
            if rec is None:
                raise RecoveryError("尚未登记县中心恢复公钥，不能设置恢复申请密钥")
            public = Ed25519PrivateKey.from_private_bytes(private_key).public_key().public_bytes_raw()
            rec["requester"] = dict(public=_b64(public), secret=_b64(bytes(private_key)), cert=dict(cert))
            self._commit()

    def requester(self) -> tuple[Ed25519PrivateKey, dict[str, str]]:
        """The recovery-request signing key and its certificate; RecoveryError if there is none yet."""
        rec = self._doc["recovery"]
        req = rec.get("requester") if rec else None
        if req is None:
            raise RecoveryError(
                "本工作站还不能向县中心申请恢复：请先登记到县中心并同步一次（由能登录的用户操作）"
            )
        return Ed25519PrivateKey.from_private_bytes(_unb64(req["secret"])), dict(req["cert"])

    # -- recovery by the county ------------------------------------------------------------------

    def start_recovery(
        self, login: str, new_pin: str, request_id: str, *, at: str, params: KdfParams | None = None
    ) -> bytes:
        """Prepare ``login``'s recovery: an ephemeral X25519 key wrapped under the NEW PIN.

        Returns its public half, which goes into the request; the county seals K to it. Whoever
        holds the county's answer (a USB stick) still needs the new PIN — and this computer's
        device secret, where there is one — to use it. A new request replaces an older one.
        """
        validate_pin(new_pin)
        eph = X25519PrivateKey.generate()
        with file_lock(self.path):
            self._begin()
            u = self._user(login)
            if u["disabled"]:
                raise UserDisabled("该用户已停用，不能申请恢复；请联系上级人员")
            if self._doc["recovery"] is None:
                raise RecoveryError("本工作站没有恢复槽（尚未登记到县中心），无法由县中心恢复")
            device = self._device_for_new_slot(u["user_id"])
            aad = _PENDING_AAD + f"{u['user_id']}/{request_id}".encode()
            slot = _wrap(new_pin, eph.private_bytes_raw(), aad, params, device)
            u["recovery_pending"] = dict(id=request_id, at=at, slot=slot, failures=0)
            self._commit()
        return eph.public_key().public_bytes_raw()

    def note_check_code(self, login: str, request_id: str, code: str) -> None:
        """Keep the request's check code with it, to show again while the county decides."""
        with file_lock(self.path):
            self._begin()
            pending = self._user(login).get("recovery_pending")
            if pending and pending["id"] == request_id:
                pending["check"] = code
                self._commit()

    def pending_recovery(self, login: str) -> dict[str, Any] | None:
        pending = self._user(login).get("recovery_pending")
        return dict(pending) if pending else None

    def finish_recovery(
        self, login: str, new_pin: str, request_id: str, open_answer: Callable[[X25519PrivateKey], bytes]
    ) -> tuple[SlotInfo, bytearray]:
        """Apply the county's answer: the new PIN opens the ephemeral key, which opens K.

        ``open_answer`` gets the ephemeral private key and returns K (it verifies the county's
        signature first). The user's slot is re-made under the new PIN, counters cleared.
        """
        with file_lock(self.path):
            self._begin()
            u = self._user(login)
            pending = u.get("recovery_pending")
            if not pending or pending["id"] != request_id:
                raise RecoveryError("这份县中心答复不是本工作站该用户当前的恢复申请（可能已重新申请），请用最近一次申请的答复")
            slot = dict(pending["slot"])
            device = self._device_secret_for(slot)
            pending["failures"] += 1  # counted before trying, like an unlock
            self._commit()
            tries = pending["failures"]
            user_id = u["user_id"]
        aad = _PENDING_AAD + f"{user_id}/{request_id}".encode()
        try:
            raw, stretched = _unwrap_with(new_pin, aad, slot, device)
        except InvalidTag:
            with file_lock(self.path):
                self._begin()
                u = self._user(login)
                if tries >= MAX_RECOVERY_FAILURES and u.get("recovery_pending"):
                    u["recovery_pending"] = None
                    self._commit(revoke=True)
                    raise RecoveryError("新PIN连续输错，本次恢复申请已作废，请重新申请") from None
            raise RecoveryError(
                f"新PIN不正确（应为申请恢复时设置的新PIN），还可尝试{MAX_RECOVERY_FAILURES - tries}次"
            ) from None
        try:
            eph = X25519PrivateKey.from_private_bytes(bytes(raw))
            key = bytearray(open_answer(eph))
            with file_lock(self.path):
                self._begin()
                u = self._user(login)
                if len(key) != 32 or not hmac.compare_digest(_key_check(key), _unb64(self._doc["key_check"] or "")):
                    raise RecoveryError("县中心答复中的密钥与本工作站不符，无法恢复。请联系县中心")
                device = self._device_for_new_slot(u["user_id"])
                u.update(_slot_from(stretched, slot, user_id, key, device))
                u["recovery_pending"] = None
                self._commit(revoke=True)
            return self.find(login), key
        finally:
            _wipe(raw)
            _wipe(stretched)

    # -- internals ---------------------------------------------------------------------------------

    def _count_attempt(self, login: str, now: datetime):
        """Under the lock: refuse or count one attempt. Returns what the KDF outside the lock needs."""
        with file_lock(self.path):
            self._begin()  # the counters on disk are the truth, not what we loaded earlier
            u = self._user(login)
            # These checks reveal nothing the user list doesn't already show.
            if u["disabled"]:
                raise UserDisabled("该用户已停用，请联系上级人员")
            device = self._device_secret_for(u["slot"])
            wait = _wait_seconds(u, now)
            if wait > 0:
                if u["failures"] >= MAX_FAILURES:
                    raise LockedOut(wait, u["failures"], now=now)
                raise UnlockDelayed(wait)
            before = u["failures"]
            # Count the attempt before trying it, so cutting the power mid-attempt
            # doesn't give a free guess (smart cards do the same).
            u["failures"] += 1
            u["last_failure_at"] = now.isoformat()
            problem = None
            try:
                self._commit()
            except SlotFileError as e:
                problem = e.message
                key = (str(self.path.resolve()), u["user_id"])
                if before >= FREE_FAILURES or _UNCOUNTED.get(key, 0) >= FREE_FAILURES:
                    raise CounterUnwritable(
                        f"{problem}。PIN错误次数无法记录，为安全起见暂不能再尝试；请清理磁盘或检查权限后再试"
                    ) from None
                _UNCOUNTED[key] = _UNCOUNTED.get(key, 0) + 1
            return u["user_id"], dict(u["slot"]), device, u["failures"], problem

    def _after_success(self, login: str, used: dict[str, Any], stretched: bytearray, key: bytearray) -> None:
        """Clear the counter and bind the slot to this computer if it isn't yet. A failed write
        here never stops the unlock (a full disk must not lock anyone out of reading)."""
        _UNCOUNTED.pop((str(self.path.resolve()), self._user(login)["user_id"]), None)
        try:
            with file_lock(self.path):
                self._begin()
                u = self._user(login)
                if u["disabled"] or not u["slot"] or u["slot"]["salt"] != used["salt"]:
                    return  # reset or disabled meanwhile: leave the new state alone
                changed = bool(u["failures"]) or u["last_failure_at"] is not None
                u["failures"], u["last_failure_at"] = 0, None
                if not u["slot"].get("device"):
                    device = self._device_secret(create=True)
                    if device is not None:
                        u.update(_slot_from(stretched, u["slot"], u["user_id"], key, device))
                        changed = True
                if changed:
                    self._commit()
        except UserError as e:
            log.warning("after a good PIN, the key slot file could not be updated: %s", e.message)
            if not self.notices:
                self.notices.append(e.message)

    def _device_secret(self, *, create: bool, replacing: str | None = None) -> bytes | None:
        """This computer's device secret for this file (created on first use when ``create``).

        On a PC that lacks the secret the file names (a backup restored on a new PC), slots bound
        to it cannot open here anyway; once none is left (``replacing`` is the user whose slot is
        being re-made), the file is bound to this PC's secret instead.
        """
        from station.store import devicesecret

        info = self._doc.get("device")
        if info is not None:
            try:
                secret = devicesecret.load(info["name"])
            except devicesecret.DeviceSecretError:
                secret = None
            if secret is not None and hmac.compare_digest(_device_check(secret), _unb64(info["check"])):
                return secret
            still_bound = any(
                u["slot"] and u["slot"].get("device") and u["user_id"] != replacing for u in self._doc["users"]
            )
            if not create or still_bound:
                return None
        if not create:
            return None
        secret = devicesecret.load_or_create(self.station_id)
        if secret is None:
            return None
        self._doc["device"] = dict(name=self.station_id, check=_b64(_device_check(secret)))
        return secret

    def _device_secret_for(self, slot: dict[str, Any]) -> bytes | None:
        """The device secret a slot needs (None for a file-only slot); DeviceSecretMissing if absent."""
        if not slot.get("device"):
            return None
        secret = self._device_secret(create=False)
        if secret is None:
            raise DeviceSecretMissing(_DEVICE_MISSING)
        return secret

    def _device_for_new_slot(self, replacing: str | None = None) -> bytes | None:
        secret = self._device_secret(create=True, replacing=replacing)
        if secret is None and self._doc.get("device") is not None:
            log.warning("device secret unavailable: new slot is file-only")
        return secret

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
        """Re-read the file (under the lock) so changes another program made since load are kept."""
        doc, from_backup = slotfile.read(self.path)
        if doc["station_id"] != self.station_id:
            raise SlotFileError(f"密钥文件 {self.path} 已被替换为其他站点的文件，请联系县中心")
        self._doc, self.restored_from_backup = doc, from_backup

    def _commit(self, *, revoke: bool = False) -> None:
        """Write the file (the caller holds the lock)."""
        if slotfile.save(self.path, self._doc, revoke=revoke, restored_from_backup=self.restored_from_backup):
            self.notices.append(LOW_DISK_NOTICE)
        self.restored_from_backup = False


_DEVICE_MISSING = (
    "本机缺少该数据目录的设备密钥（数据目录可能是从其他电脑复制来的，或系统凭据已被清除），"
    "PIN无法单独打开。请在原来的电脑上使用，或向县中心申请恢复"
)


def recover_data_key(
    slots: KeySlots | dict[str, Any], county_private_key: bytes | X25519PrivateKey
) -> bytearray:
    """County side, offline: decrypt K from a station's recovery slot."""
    doc = slots._doc if isinstance(slots, KeySlots) else slotfile.validated(slots, "恢复数据")
    rec = doc["recovery"]
    if rec is None:
        raise RecoveryError("该站点的密钥文件中没有恢复槽（站点尚未登记县中心恢复公钥），无法恢复")
    return open_recovery_slot(_unb64(rec["enc"]), doc["station_id"], county_private_key)


def open_recovery_slot(enc: bytes, station_id: str, county_private_key: bytes | X25519PrivateKey) -> bytearray:
    priv = county_private_key
    if not isinstance(priv, X25519PrivateKey):
        try:
            priv = X25519PrivateKey.from_private_bytes(bytes(priv))
        except (ValueError, TypeError):
            raise RecoveryError("恢复私钥格式无效（应为32字节的X25519私钥）") from None
    try:
        return recovery_format.open_slot(enc, station_id, priv)
    except UserError:
        raise RecoveryError("恢复私钥与该站点不匹配，无法恢复数据密钥") from None


# -- locking and writing ---------------------------------------------------------------------


# -- slot crypto -------------------------------------------------------------------------------


def _normalize(pin: str) -> str:
    # NFKC turns full-width digits from a Chinese IME (１２３) into ASCII, so the
    # same keys give the same PIN whatever input mode was on.
    return unicodedata.normalize("NFKC", pin)


def _derive(pin: str, salt: bytes, p: KdfParams) -> bytearray:
    out = bytearray(32)
    kdf = Argon2id(salt=salt, length=32, iterations=p.iterations, lanes=p.lanes, memory_cost=p.memory_kib)
    kdf.derive_into(_normalize(pin).encode("utf-8"), out)
    return out


def _hkdf(ikm: bytes | bytearray, info: bytes) -> bytearray:
    out = bytearray(32)
    HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive_into(bytes(ikm), out)
    return out


def _kek(stretched: bytearray, context: bytes, device: bytes | None) -> bytearray:
    """Argon2id's output alone (file-only slots, as in version 1), or mixed with the device secret."""
    if device is None:
        return bytearray(stretched)
    return _hkdf(bytes(stretched) + device, _DEVICE_INFO + context)


def _wrap(
    pin: str, secret: bytes | bytearray, aad: bytes, params: KdfParams | None, device: bytes | None,
    *, salt: bytes | None = None, stretched: bytearray | None = None,
) -> dict[str, Any]:
    params = params or kdf_params_from_env()
    salt = salt or os.urandom(16)
    own = stretched is None
    stretched = _derive(pin, salt, params) if stretched is None else stretched
    nonce = os.urandom(12)
    kek = _kek(stretched, aad, device)
    try:
        ct = AESGCM(kek).encrypt(nonce, bytes(secret), aad)
    finally:
        _wipe(kek)
        if own:
            _wipe(stretched)
    return {"kdf": asdict(params), "salt": _b64(salt), "nonce": _b64(nonce), "ct": _b64(ct), "device": device is not None}


def _fresh_slot(
    pin: str, user_id: str, data_key: bytes | bytearray, params: KdfParams | None, device: bytes | None
) -> dict[str, Any]:
    """A new slot (new salt and nonce) with cleared failure counters."""
    slot = _wrap(pin, data_key, _SLOT_AAD + user_id.encode(), params, device)
    return {"slot": slot, "failures": 0, "last_failure_at": None}


def _slot_from(
    stretched: bytearray, like: dict[str, Any], user_id: str, data_key: bytes | bytearray, device: bytes | None
) -> dict[str, Any]:
    """A slot for K from an Argon2id output already computed (same PIN, salt and cost as ``like``)."""
    slot = _wrap("", data_key, _SLOT_AAD + user_id.encode(), KdfParams(**like["kdf"]), device,
                 salt=_unb64(like["salt"]), stretched=stretched)
    return {"slot": slot, "failures": 0, "last_failure_at": None}


def _unwrap_with(pin: str, aad: bytes, slot: dict[str, Any], device: bytes | None) -> tuple[bytearray, bytearray]:
    """(secret, Argon2id output); InvalidTag for a wrong PIN. The caller wipes both."""
    stretched = _derive(pin, _unb64(slot["salt"]), KdfParams(**slot["kdf"]))
    try:
        return _open(stretched, aad, slot, device, size=len(_unb64(slot["ct"])) - 16), stretched
    except BaseException:
        _wipe(stretched)
        raise


def _open(
    stretched: bytearray, context: str | bytes, slot: dict[str, Any], device: bytes | None, *, size: int = 32
) -> bytearray:
    aad = context if isinstance(context, bytes) else _SLOT_AAD + context.encode()
    kek = _kek(stretched, aad, device)
    out = bytearray(size)
    try:
        AESGCM(kek).decrypt_into(_unb64(slot["nonce"]), _unb64(slot["ct"]), aad, out)
    finally:
        _wipe(kek)
    return out


def _unwrap(pin: str, user_id: str, slot: dict[str, Any], device: bytes | None) -> tuple[bytearray, bytearray]:
    return _unwrap_with(pin, _SLOT_AAD + user_id.encode(), slot, device)


def _key_check(data_key: bytes | bytearray) -> bytes:
    return hmac.new(data_key, _KEY_CHECK, hashlib.sha256).digest()[:16]


def _device_check(secret: bytes) -> bytes:
    return hmac.new(secret, _DEVICE_CHECK, hashlib.sha256).digest()[:16]


def _wipe(buf: bytearray) -> None:
    buf[:] = bytes(len(buf))  # best effort: Python may have made copies elsewhere


def _delay(failures: int) -> int:
    """Seconds to wait after ``failures`` consecutive failures."""
    if failures < FREE_FAILURES:
        return 0
    if failures < MAX_FAILURES:
        return min(2 ** (failures - FREE_FAILURES), MAX_DELAY_S)
    return LOCK_STEPS_S[min(failures - MAX_FAILURES, len(LOCK_STEPS_S) - 1)]


def _wait_seconds(u: dict[str, Any], now: datetime) -> int:
    if u["last_failure_at"] is None:
        return 0
    delay = _delay(u["failures"])
    elapsed = (now - datetime.fromisoformat(u["last_failure_at"])).total_seconds()
    left = delay - max(elapsed, 0.0)  # a clock turned back never waits longer than one delay
    return math.ceil(left) if left > 0 else 0


def _duration(seconds: int) -> str:
    if seconds >= 3600:
        return f"{round(seconds / 3600)}小时"
    return f"{max(1, round(seconds / 60))}分钟"


def _info(u: dict[str, Any]) -> SlotInfo:
    fields = {k: u[k] for k in ("user_id", "login", "name", "disabled", "failures")}
    return SlotInfo(
        **fields,
        role=Role(u["role"]),
        locked=u["failures"] >= MAX_FAILURES,
        device_bound=bool(u["slot"] and u["slot"].get("device")),
        recovery_pending=bool(u.get("recovery_pending")),
    )


