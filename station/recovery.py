"""County recovery of a user who is locked out or forgot the PIN — the station's side.

Works on a locked station (no database): everything needed is in ``station.json`` and the key
slot file. The user chooses a NEW PIN when asking; the request goes to the county as a file (USB)
or over HTTP; the county admin checks by phone that the person asking is who the request names
(both sides show the same check code) and answers; the station applies the answer with that new
PIN, which re-makes the user's slot, and records the recovery as a ``user.pin_reset`` event
(``how: recovered``). The messages are in :mod:`sync.recovery`. The CLI (``station recover``) and
the unlock screen call these functions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from schema import events as K
from schema.errors import UserError, ValidationError
from schema.org import OrgCode
from station import clock
from station.config import DataDir
from station.session import Session, open_session
from station.store.atomicfile import atomic_write
from station.store.keyslots import KeySlots, RecoveryError
from sync import recovery as wire_format
from sync.client import Client, check_url
from sync.crypto import unb64
from sync.errors import ProtocolError


@dataclass(frozen=True)
class Started:
    """A recovery request made: what the person at the station reads to the county admin."""

    request_id: str
    check_code: str
    login: str
    name: str
    station_name: str
    station_id: str
    org: str
    path: Path | None = None  # the request file (by USB)
    url: str = ""  # the county it was sent to (online)

    def text(self) -> str:
        how = (
            f"恢复申请已写入 {self.path}。请把它交给县中心管理员（U盘）"
            if self.path
            else f"恢复申请已发送到县中心（{self.url}）"
        )
        then = (
            "拿回答复文件后，用刚才设置的新PIN导入答复"
            if self.path
            else "县中心批准后，用刚才设置的新PIN获取答复"
        )
        return (
            f"{how}。\n请打电话给县中心管理员，报出：工作站“{self.station_name}”（{self.org}），"
            f"用户 {self.name}（{self.login}），核对码 {self.check_code}。\n"
            f"管理员核对无误后才会批准；{then}。"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "check_code": self.check_code,
            "login": self.login,
            "station": self.station_id,
            "file": str(self.path) if self.path else None,
            "url": self.url,
        }


def pending(root: str | Path, login: str) -> dict[str, Any] | None:
    """The user's open request (``id``, ``at``), or None."""
    return KeySlots.load(DataDir(root).slots).pending_recovery(login)


def request_file(root: str | Path, login: str, new_pin: str, path: str | Path) -> Started:
    """Write a request for the county admin (``county-center recover FILE --response-file R``)."""
    _, wire, started = _prepare(root, login, new_pin)
    target = Path(path)
    if target.is_dir():
        day = clock.now().strftime("%Y%m%d")
        target = target / f"恢复申请-{started.org}-{started.login}-{day}.json"
    try:
        atomic_write(target, _encode(wire))
    except OSError as e:
        raise UserError(f"无法写入恢复申请文件 {target}：{e.strerror or e}。请检查U盘是否插好、是否可写") from None
    return replace(started, path=target)


def request_online(
    root: str | Path, login: str, new_pin: str, *, url: str | None = None, client: Client | None = None
) -> Started:
    """Send the request to the county over HTTP; the answer is fetched later (``fetch``)."""
    data = DataDir(root)
    base = _county_url(data, url)
    _, wire, started = _prepare(root, login, new_pin)
    with _client(base, client) as c:
        c.recovery_request(wire)
    return replace(started, url=base)


def fetch(root: str | Path, login: str, *, url: str | None = None, client: Client | None = None) -> dict | None:
    """The county's answer to the user's online request; None while it is not yet approved."""
    data = DataDir(root)
    open_request = pending(root, login)
    if not open_request:
        raise RecoveryError("该用户没有待处理的恢复申请，请先申请恢复")
    with _client(_county_url(data, url), client) as c:
        doc = c.recovery_answer(open_request["id"])
    if doc["status"] == "refused":
        reason = doc.get("reason") if isinstance(doc.get("reason"), str) else ""
        raise RecoveryError(f"县中心拒绝了这次恢复申请{('：' + reason) if reason else ''}。如有疑问请联系县中心")
    if doc["status"] == "pending":
        return None
    answer = doc.get("answer")
    if not isinstance(answer, dict):
        raise RecoveryError("县中心的答复无法识别，请稍后再试或改用U盘")
    return answer


def apply_file(root: str | Path, login: str, new_pin: str, path: str | Path) -> Session:
    path = Path(path)
    try:
        if path.stat().st_size > wire_format.MAX_BYTES:
            raise UserError(f"{path.name} 不是恢复答复文件（文件过大）")
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"找不到恢复答复文件 {path}") from None
    except OSError as e:
        raise UserError(f"无法读取恢复答复文件 {path}：{e.strerror or e}") from None
    return apply(root, login, new_pin, wire_format.parse_wire(raw, "恢复答复文件"))


def apply(root: str | Path, login: str, new_pin: str, wire: Any) -> Session:
    """Check the county's answer, open the data key with the new PIN, and sign the user in."""
    data = DataDir(root)
    cfg = data.load_config()
    slots = KeySlots.load(data.slots)
    user = slots.find(login)
    open_request = slots.pending_recovery(login)
    if not open_request:
        raise RecoveryError("该用户没有待处理的恢复申请（可能已经恢复过了），请直接用新PIN登录或重新申请")
    county_pub = (slots.recovery or {}).get("county_sign_pub")
    if not county_pub:
        raise RecoveryError("本机没有县中心的签名公钥，无法核验答复。请先同步一次，或联系县中心")
    try:
        answer = wire_format.open_answer(wire, unb64(county_pub))
    except ProtocolError as e:
        raise RecoveryError(f"恢复答复无效：{e.message}") from None
    if answer.station != cfg.station_id or answer.user_id != user.user_id:
        raise RecoveryError("这份恢复答复是给另一台工作站或另一个用户的，不能用于本站的该用户")
    if answer.id != open_request["id"]:
        raise RecoveryError("这份恢复答复不是该用户最近一次申请的答复（可能已重新申请），请用最新申请的答复")
    info, key = slots.finish_recovery(login, new_pin, answer.id, lambda eph: wire_format.unseal(answer, eph))
    session = open_session(data, cfg, slots, info, key)
    try:
        with session.store.writing():
            session.store.record(
                session.actor,
                K.USER_PIN_RESET,
                info.user_id,
                {"user_id": info.user_id, "how": "recovered", "request": answer.id,
                 "requested_at": open_request["at"], "approved_at": answer.at},
            )
    except BaseException:
        session.close()
        raise
    return session


# -- internals -----------------------------------------------------------------------------------


def _prepare(root: str | Path, login: str, new_pin: str) -> tuple[DataDir, dict[str, str], Started]:
    data = DataDir(root)
    cfg = data.load_config()
    slots = KeySlots.load(data.slots)
    user = slots.find(login)
    if user.disabled:
        raise ValidationError("该用户已停用，不能申请恢复；请联系上级人员", field="login")
    requester, cert = slots.requester()
    rec = slots.recovery or {}
    request_id = wire_format.new_request_id()
    at = clock.iso(clock.now())
    eph = slots.start_recovery(login, new_pin, request_id, at=at)
    wire = wire_format.make_request(
        requester, cert, request_id=request_id, station=cfg.station_id, org=cfg.org, station_name=cfg.name,
        county=OrgCode(cfg.org).county, user_id=user.user_id, login=user.login, name=user.name,
        role=user.role.value, at=at, eph=eph, slot=unb64(rec["enc"]),
    )
    started = Started(request_id, wire_format.check_code(wire), user.login, user.name, cfg.name,
                      cfg.station_id, cfg.org)
    slots.note_check_code(login, request_id, started.check_code)
    return data, wire, started


def _encode(wire: dict[str, str]) -> bytes:
    return json.dumps(wire, ensure_ascii=False, indent=1).encode("utf-8")


def _county_url(data: DataDir, url: str | None) -> str:
    chosen = (url or "").strip() or data.load_config().county_url
    if not chosen:
        raise ValidationError(
            "本工作站没有县中心地址：请用 --server 指定县中心地址，或改用U盘申请（--request-file）", field="url"
        )
    return check_url(chosen)


class _client:
    """The given client, or a new one closed afterwards."""

    def __init__(self, url: str, client: Client | None) -> None:
        self.own = client is None
        self.client = client or Client(url, retries=2)

    def __enter__(self) -> Client:
        return self.client

    def __exit__(self, *exc: object) -> None:
        if self.own:
            self.client.close()


def when(iso: str) -> str:
    """``2026-11-28T13:36:00+08:00`` → ``2026-11-28 13:36``."""
    try:
        return datetime.fromisoformat(iso).astimezone(clock.CST).strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return iso
