"""The station registry: one-time enrollment codes, enrollment, revocation, listings.

A code (``K7QX-M2PD-9TRW``: 12 characters from an alphabet without 0/O, 1/I/L or U) is shown
once, bound to an org and a level, valid for 7 days, used once. The county keeps no plaintext
code: only its id and the confirmation key derived from it (:mod:`sync.enrollment`), the key
sealed to the county's own encryption key. Enrolling checks the request's code-keyed MAC,
stores the station's public keys and appends a county ``station.enrolled`` event in the same
transaction, and answers with the county's keys under the same code-keyed MAC.
Re-enrolling the same station with a fresh code replaces its keys (the old key stops working at
once). Revoking appends ``station.revoked``; a revoked station's pushes and pulls are refused
(and raised as an alarm), its events already stored stay.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

from cryptography.exceptions import InvalidTag

from schema import events as K
from schema.errors import UserError, ValidationError
from schema.org import Level, OrgCode
from sync import enrollment
from sync.crypto import PublicKeys, b64
from sync.errors import ProtocolError, malformed
from sync.server import county_chain
from sync.server.audit import alarm_hourly
from sync.server.config import now_iso, now_ms
from sync.server.db import CountyDB
from sync.server.keystore import County

CODE_DAYS = 7
STATION_ID_RE = re.compile(r"[0-9A-Za-z][0-9A-Za-z._:-]{0,63}")
LEVELS = {"village": Level.VILLAGE, "township": Level.TOWNSHIP, "county": Level.COUNTY}
LEVEL_LABELS = {"village": "村级", "township": "乡镇级", "county": "县级"}


# -- codes -----------------------------------------------------------------------------------------


def parse_level(text: str) -> Level:
    try:
        return LEVELS[text.strip().lower()]
    except (KeyError, AttributeError):
        for key, label in LEVEL_LABELS.items():
            if text.strip() in (label, label.removesuffix("级")):
                return LEVELS[key]
        raise UserError(
            f"未知的工作站层级“{text}”：应为 village（村级）、township（乡镇级）或 county（县级）"
        ) from None


def check_org(county: County, org: str) -> OrgCode:
    try:
        code = OrgCode(org)
    except ValidationError as e:
        raise ProtocolError("malformed", e.message) from None
    if code.county != county.code:
        raise ProtocolError("wrong_county", f"单位“{org}”不属于本县（{county.name}，{county.code}）")
    return code


def make_code(
    cdb: CountyDB, county: County, *, org: str, level: str, name: str = "", days: int = CODE_DAYS
) -> str:
    """Create a one-time enrollment code for a station of ``org`` at ``level``; returns it (shown once).

    Needs no passphrase: the confirmation key is sealed to the county's public encryption key.
    """
    try:
        code_org = check_org(county, org)
    except ProtocolError as e:
        raise UserError(e.message) from None
    lv = parse_level(level)
    if code_org.level is not lv:
        raise UserError(
            f"区划代码 {org} 是{code_org.level.label}单位，与层级“{LEVEL_LABELS[lv.value]}”不符；"
            "村级工作站用村的代码，乡镇级用乡镇的代码（后3位000），县级用县的代码"
        )
    if len(name) > 100:
        raise UserError("工作站名称最多100个字")
    raw = "".join(secrets.choice(enrollment.CODE_ALPHABET) for _ in range(enrollment.CODE_LENGTH))
    secret = enrollment.derive(raw, county.code)
    ms = now_ms()
    with cdb.write():
        cdb.m.EnrollCode.create(
            code_id=secret.code_id,
            sealed_key=enrollment.seal_key(secret.key, county.public.enc, secret.code_id),
            org=org,
            level=lv.value,
            name=name.strip(),
            created_at=ms,
            expires_at=ms + days * 86_400_000,
        )
    return enrollment.format_code(raw)


# -- enrollment --------------------------------------------------------------------------------------


def check_station_id(value: Any) -> str:
    if not isinstance(value, str) or not STATION_ID_RE.fullmatch(value):
        raise malformed("工作站编号格式不对")
    return value


def _confirm_key(county: County, row) -> bytes:
    try:
        return enrollment.open_key(row.sealed_key, county.unlocked.enc_key, row.code_id)
    except (InvalidTag, ValueError, ProtocolError):
        # Sealed to another county key (the database was copied between counties?): unusable.
        raise ProtocolError("code", "此登记码在县中心的记录已损坏，请向县中心管理员申请新的登记码") from None


def enroll(cdb: CountyDB, county: County, wire: Any, *, url: str = "") -> dict[str, str]:
    """Answer an enrollment request (online or from a request file); returns the answer (signed + MAC)."""
    request = enrollment.read_request(wire)  # proof of possession of the key it enrolls
    station = check_station_id(request.station)
    org, name = request.org, request.name
    org_code = check_org(county, org)
    if station == county.station:
        raise ProtocolError("code", "工作站编号与县中心自身的编号相同，不能登记")
    C, S = cdb.m.EnrollCode, cdb.m.Station
    ms = now_ms()
    level = org_code.level.value
    keys = request.keys
    with cdb.write():
        q = C.select().where(C.code_id == request.code_id)
        row = (q.for_update() if cdb.is_pg else q).get_or_none()
        if row is None:
            raise ProtocolError("code", "登记码不正确，请核对后重新输入（登记码由县中心管理员提供）")
        confirm = _confirm_key(county, row)
        # Before anything else is looked at: a request that does not prove the code changes nothing.
        enrollment.check_request(request, confirm)
        existing = cdb.lock_station(station)
        same_answer = (
            row.used_at is not None
            and row.used_by == station
            and existing is not None
            and existing.sign_pub == b64(keys.sign)
            and existing.enc_pub == b64(keys.enc)
        )
        if not same_answer:  # a retry of an enrollment that already succeeded gets the same answer
            if row.used_at is not None:
                raise ProtocolError("code", "此登记码已经用过，请向县中心管理员申请新的登记码")
            if row.expires_at < ms:
                raise ProtocolError("code", "登记码已过期（有效期7天），请向县中心管理员申请新的登记码")
            if row.org != org or row.level != level:
                raise ProtocolError(
                    "code", f"此登记码是为单位 {row.org} 生成的，与本工作站的单位 {org} 不符，请核对"
                )
            if existing is not None and existing.org != org:
                raise ProtocolError(
                    "code", f"工作站 {station} 已登记为单位 {existing.org}，不能改登记为 {org}"
                )
            name = name or row.name or org
            values = dict(
                org=org,
                level=level,
                name=name,
                sign_pub=b64(keys.sign),
                enc_pub=b64(keys.enc),
                status="active",
                enrolled_at=now_iso(ms),
                revoked_at=None,
                revoke_reason="",
            )
            if existing is None:
                S.create(id=station, **values)
            else:
                S.update(**values).where(S.id == station).execute()
            C.update(used_at=ms, used_by=station).where(C.code_id == row.code_id).execute()
            county_chain.append(
                cdb,
                county,
                K.STATION_ENROLLED,
                station,
                {"station": station, "org": org, "level": level, "name": name, **keys.to_dict()},
            )
    return enrollment.make_answer(county.unlocked, confirm, request, county=county.info(url), level=level)


# -- revocation ----------------------------------------------------------------------------------


def revoke(cdb: CountyDB, county: County, station: str, reason: str = "") -> dict[str, Any]:
    reason = (reason or "").strip()
    if len(reason) > 200:
        raise UserError("吊销原因最多200个字")
    S = cdb.m.Station
    with cdb.write():
        row = cdb.lock_station(station)
        if row is None:
            raise UserError(f"找不到工作站 {station}，请用 county-center stations 查看编号")
        if row.status == "county":
            raise UserError("不能吊销县中心自身")
        if row.status == "revoked":
            raise UserError(f"工作站 {station}（{row.name}）已于 {row.revoked_at} 吊销")
        S.update(status="revoked", revoked_at=now_iso(), revoke_reason=reason).where(
            S.id == station
        ).execute()
        ev = county_chain.append(
            cdb, county, K.STATION_REVOKED, station, {"station": station, "reason": reason}
        )
    return {"station": station, "name": row.name, "event": ev.id}


# -- lookups used by push and pull ----------------------------------------------------------------


def refusal(row, station: str) -> ProtocolError | None:
    """Why ``row`` (a station row or None) may not sync, without side effects."""
    if row is None or row.status == "county":
        return ProtocolError(
            "unknown_station", f"工作站 {station[:64]} 尚未在本县中心登记，请先用登记码登记（station enroll）"
        )
    if row.status == "revoked":
        reason = f"（原因：{row.revoke_reason}）" if row.revoke_reason else ""
        return ProtocolError(
            "revoked",
            f"本工作站已于 {row.revoked_at} 被县中心吊销{reason}，不能再同步；本机数据仍保留，请联系县中心管理员",
        )
    return None


def active_station(cdb: CountyDB, station: str, *, endpoint: str):
    """The station's row if it may sync, else a refusal (a revoked station's attempt raises an alarm)."""
    row = cdb.m.Station.get_or_none(cdb.m.Station.id == station)
    error = refusal(row, station)
    if error is not None:
        if error.code == "revoked":
            _revoked_alarm(cdb, station, endpoint)
        raise error
    return row


def _revoked_alarm(cdb: CountyDB, station: str, endpoint: str) -> None:
    alarm_hourly(cdb, "revoked", station, endpoint=endpoint)


def station_keys(row) -> PublicKeys:
    return PublicKeys.from_dict({"sign_pub": row.sign_pub, "enc_pub": row.enc_pub})


def touch(
    cdb: CountyDB, station: str, *, cursor: int | None = None, at: int | None = None, seen: int | None = None
) -> None:
    """Record an authenticated contact, and the cursor the station says it holds.

    ``at``: the signed time of the request or USB file that names ``cursor`` (its envelope's
    ``at``); the cursor moves only for a request or file newer than the one that moved it last, so
    an old or copied USB file imported later moves nothing back. ``seen``: when the station was
    seen (default now; for a USB file, when it was made) — ``last_seen`` never goes back.
    """
    S = cdb.m.Station
    seen = now_ms() if seen is None else min(seen, now_ms())
    with cdb.write():
        S.update(last_seen=seen).where(
            (S.id == station) & (S.last_seen.is_null() | (S.last_seen < seen))
        ).execute()
        if cursor is not None:
            at = seen if at is None else at
            S.update(last_cursor=cursor, cursor_at=at).where((S.id == station) & (S.cursor_at < at)).execute()
