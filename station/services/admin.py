"""Administration of one station: its identity, its users, its settings, the ID-number audit.

Plain functions the admin screen (and the first-run enrollment) call on the session thread. The
rules live here, not in the widgets:

* who may manage which account is :func:`station.services.users.check_can_manage`; a user who
  outranks nobody (a village agent) gets a read-only view;
* the station's settings (county URL, idle lock) may be changed by anyone who may manage the
  station's own accounts, i.e. by a role above the station's lowest one — a village agent may
  not switch off its own idle lock;
* the audit lists every ``case.id_viewed`` event this station holds (its own and those that came
  down from the county), newest first, with who, when, which case and at which station.
"""

from __future__ import annotations

from dataclasses import dataclass

from schema import events as K
from schema.authority import roles_at
from schema.errors import TransitionError, UserError, ValidationError
from schema.org import OrgCode, Role
from station.config import StationConfig
from station.services import users as users_service
from station.session import Session
from station.store.keyslots import Protection, SlotInfo, WrongPin, validate_pin

IDLE_MIN, IDLE_MAX = 1, 120
AUDIT_LIMIT = 500


# -- the station ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class StationInfo:
    station_id: str
    org: str
    level: str  # 村级 / 乡镇级 / 县级
    name: str
    station_no: int
    created_at: str
    idle_lock_minutes: int
    enrolled: bool
    enrolled_at: str  # "" when not enrolled
    county_code: str
    county_name: str
    county_url: str  # the URL syncs use (settings first, else the one learnt at enrollment)
    key_fingerprint: str  # this station's signing key (as the county admin sees it), "" if not enrolled
    county_fingerprint: str  # the county's keys (sync.enrollment.fingerprint), "" if not enrolled
    revoked: bool
    revoked_reason: str
    request_pending: bool  # an offline enrollment request was written; its answer is awaited
    request_at: str

    @property
    def enrollment_text(self) -> str:
        if self.revoked:
            return "已被县中心注销：" + self.revoked_reason
        if self.enrolled:
            return f"已登记（{self.enrolled_at[:16].replace('T', ' ')}）"
        if self.request_pending:
            return f"已写出离线登记申请（{self.request_at[:16].replace('T', ' ')}），等待县中心答复"
        return "未登记到县中心"


def station_info(session: Session) -> StationInfo:
    from station.replication import identity as I
    from sync.crypto import key_id

    cfg = session.config
    county = I.county(session)
    keypair = I.keypair(session)
    enrolled = county is not None and keypair is not None
    enrollment = I.enrollment(session) or {}
    revoked = I.revoked(session) or {}
    pending = I.pending_enrollment(session) or {}
    return StationInfo(
        station_id=cfg.station_id,
        org=cfg.org,
        level=OrgCode(cfg.org).level.label,
        name=cfg.name,
        station_no=cfg.station_no,
        created_at=cfg.created_at,
        idle_lock_minutes=cfg.idle_lock_minutes,
        enrolled=enrolled,
        enrolled_at=str(enrollment.get("at", "")) if enrolled else "",
        county_code=county.code if county else OrgCode(cfg.org).county,
        county_name=county.name if county else "",
        county_url=I.county_url(session),
        key_fingerprint=fingerprint(key_id(keypair.public.sign)) if keypair is not None and enrolled else "",
        county_fingerprint=county.fingerprint if county is not None else "",
        revoked=bool(revoked),
        revoked_reason=str(revoked.get("reason", "")),
        request_pending=bool(pending.get("written_at")) and not enrolled,
        request_at=str(pending.get("written_at", "")),
    )


def fingerprint(key_hex: str) -> str:
    """``3f2a9c0d11e4b7a8`` → ``3F2A 9C0D 11E4 B7A8``: read aloud over the phone to the county admin."""
    text = key_hex.upper()
    return " ".join(text[i : i + 4] for i in range(0, len(text), 4))


# -- users ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UserRow:
    login: str
    name: str
    role: Role
    disabled: bool
    locked: bool  # too many wrong PINs: only a PIN reset opens it again
    failures: int
    is_self: bool
    manageable: bool  # the signed-in user may disable it / reset its PIN

    @property
    def state_label(self) -> str:
        if self.disabled:
            return "已停用"
        if self.locked:
            return "PIN错误次数过多，已锁定"
        if self.failures:
            return f"PIN输错{self.failures}次"
        return "正常"


def manageable_roles(session: Session) -> list[Role]:
    """Roles the signed-in user may add at this station (lower roles that may work here)."""
    return [r for r in roles_at(OrgCode(session.config.org).level) if session.user.role.outranks(r)]


def can_manage_users(session: Session) -> bool:
    return bool(manageable_roles(session))


def user_rows(session: Session) -> list[UserRow]:
    me = session.user.user_id
    rows = []
    for u in users_service.list_users(session):
        rows.append(
            UserRow(
                u.login,
                u.name,
                u.role,
                u.disabled,
                u.locked,
                u.failures,
                u.user_id == me,
                u.user_id != me and session.user.role.outranks(u.role),
            )
        )
    rows.sort(key=lambda r: (r.disabled, -r.role.level.rank, r.login.lower()))
    return rows


def check_pins(pin: str, pin2: str) -> None:
    validate_pin(pin)
    if pin != pin2:
        raise ValidationError("两次输入的PIN不一致", field="pin2")


def add_user(
    session: Session, *, login: str, role: Role | str, pin: str, pin2: str, name: str = ""
) -> SlotInfo:
    login = (login or "").strip()
    if not login:
        raise ValidationError("请填写登录名", field="login")
    try:
        role = Role(role)
    except ValueError:
        raise ValidationError("请选择角色", field="role") from None
    check_pins(pin, pin2)
    return users_service.add_user(session, login, role, pin, name.strip() or None)


def disable_user(session: Session, login: str) -> None:
    users_service.disable_user(session, login)


def reset_pin(session: Session, login: str, *, pin: str, pin2: str) -> None:
    check_pins(pin, pin2)
    users_service.reset_pin(session, login, pin)


def change_own_pin(session: Session, *, old: str, pin: str, pin2: str) -> None:
    if not old:
        raise ValidationError("请输入原PIN", field="old")
    check_pins(pin, pin2)
    try:
        users_service.change_pin(session, old, pin)
    except UserError as exc:
        if exc.field == "pin" and isinstance(exc, WrongPin):
            raise ValidationError("原" + exc.message, field="old") from None
        raise


def key_protection(session: Session) -> Protection:
    """How this station's PINs are protected (a warning when a copied data directory could be guessed)."""
    return session.slots.protection()


# -- settings ------------------------------------------------------------------------------------


def can_change_settings(session: Session) -> bool:
    return can_manage_users(session)


def check_can_change_settings(session: Session) -> None:
    if not can_change_settings(session):
        raise TransitionError(f"{session.user.role.label}不能修改工作站设置，请由上级人员操作")


def check_idle_minutes(value: int | str) -> int:
    text = str(value).strip()
    if not text.isdigit() or not IDLE_MIN <= int(text) <= IDLE_MAX:
        raise ValidationError(f"自动锁定时间应为{IDLE_MIN}到{IDLE_MAX}分钟", field="idle_lock_minutes")
    return int(text)


def check_county_url(url: str) -> str:
    """The empty string (use the address learnt at enrollment) or a normalised http(s) URL."""
    from sync.client import check_url

    text = (url or "").strip()
    if not text:
        return ""
    try:
        return check_url(text)
    except UserError as exc:
        raise ValidationError(exc.message, field="county_url") from None


def probe_county_url(county_code: str | None, url: str) -> str:
    """Ask the address who it is before it is saved (network: call it off the session thread).

    Returns "" when it answers as our county (or as any county, before enrollment) and a Chinese
    note when it cannot be reached (the caller may still save it: the network may just be down).
    Raises ValidationError (field ``county_url``) when it answers as another county or as
    something that is not a county center at all.
    """
    from sync.client import Client, Offline, ServerFault

    client = Client(check_county_url(url), retries=0, connect_timeout=5.0, read_timeout=10.0)
    try:
        health = client.health()
    except Offline as exc:
        return f"现在无法连接 {url}：{exc.message}"
    except ServerFault as exc:
        raise ValidationError(f"{url} 不是县中心：{exc.message}", field="county_url") from None
    finally:
        client.close()
    if county_code and health.get("county") != county_code:
        raise ValidationError(
            f"{url} 是另一个县的县中心（{health.get('county')}），本站登记在 {county_code}，请核对地址",
            field="county_url",
        )
    return ""


def reload_config(session: Session) -> StationConfig:
    """Take ``station.json`` as it is on disk into the open session (another connection — the
    sync or enrollment thread — may have saved it). Updated in place: the app holds this object."""
    disk = session.data.load_config()
    for name in StationConfig.__dataclass_fields__:
        setattr(session.config, name, getattr(disk, name))
    return session.config


def save_settings(session: Session, *, county_url: str, idle_lock_minutes: int | str) -> StationConfig:
    """Validate and save the settings; the open session uses them at once (the idle lock too)."""
    check_can_change_settings(session)
    url = check_county_url(county_url)
    minutes = check_idle_minutes(idle_lock_minutes)
    cfg = reload_config(session)
    cfg.county_url = url
    cfg.idle_lock_minutes = minutes
    session.data.save_config(cfg)
    return cfg


# -- who viewed a full ID number -----------------------------------------------------------------


@dataclass(frozen=True)
class IdView:
    at: str
    who: str  # the user's name (their login id's prefix when this station does not know them)
    role: str  # 代办员 …
    level: str  # 村级 …
    org: str
    case_no: str
    case_id: str
    station: str  # station name (or id prefix)
    own_station: bool


def id_views(session: Session, limit: int = AUDIT_LIMIT) -> list[IdView]:
    """Every full-ID-number viewing this station knows of, newest first."""
    import json

    from station.replication import registry

    names = dict(session.db.execute_sql("SELECT user_id, name FROM user").fetchall())
    case_nos = {}
    rows = session.db.execute_sql(
        "SELECT at, actor, role, org, subject, body, station FROM event WHERE kind = ? "
        "ORDER BY at DESC, hlc DESC LIMIT ?",
        (K.CASE_ID_VIEWED, limit),
    ).fetchall()
    stations: dict[str, tuple[str, bool]] = {}
    own = session.config.station_id
    out = []
    for at, actor, role, org, subject, body, station in rows:
        try:
            role_label = Role(role).label
            level_label = OrgCode(org).level.label
        except Exception:  # noqa: BLE001 - an odd foreign event still gets listed
            role_label, level_label = role, ""
        case_no = ""
        try:
            case_no = str(json.loads(body).get("case_no", ""))
        except ValueError:
            pass
        if not case_no:
            if subject not in case_nos:
                row = session.db.execute_sql(
                    "SELECT case_no FROM case_view WHERE case_id = ?", (subject,)
                ).fetchone()
                case_nos[subject] = row[0] if row else subject[:8]
            case_no = case_nos[subject]
        if station not in stations:
            if station == own:
                stations[station] = (session.config.name, True)
            else:
                entry = registry.lookup(session.db, station)
                stations[station] = ((entry.name if entry else "") or f"工作站 {station[:8]}", False)
        station_name, is_own = stations[station]
        out.append(
            IdView(
                at,
                names.get(actor, f"用户 {actor[:8]}"),
                role_label,
                level_label,
                org,
                case_no,
                subject,
                station_name,
                is_own,
            )
        )
    return out
