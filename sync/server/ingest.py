"""Push processing: verify signed segments and append them to the county log (DESIGN.md §5).

Per segment, in this order: the header names an enrolled, unrevoked station; the
signature verifies with that station's key; the header names this county; every hash
is recomputed and the chain ends at the signed head (:func:`sync.messages.open_segment`).
Then, in ONE write transaction with the station row locked, against the station's
stored head (``head_seq``/``head_hash``):

- ``last <= head``: the stored hash at ``last`` equal → ``duplicate`` with the same
  (deterministic) receipt; different → ``fork``;
- ``first > head + 1``: ``gap``, ``send_from = head + 1``;
- otherwise the overlap must be the stored chain (else ``fork``) and the new part is
  stored if every event's scope allows it (else ``scope``/``kind``), its clock is within
  the bound (``schema.hlc``: else ``clock``, a retry when it is only ahead of the county's
  time) and the station had the authority for what it claims (``schema.authority``: org,
  role and actor against the station row and the staff directory, else ``authority``) —
  the segment as a whole.

Business validity is not checked: an authentic event that breaks a case rule is stored.
Forks, forged signatures on enrolled stations, duplicate event ids (``conflict``), claims
beyond a station's authority and implausible clocks raise alarms; nothing of a refused
segment is stored. A receipt is made only after the commit.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from peewee import IntegrityError

from schema import events as K
from schema import hlc as HLC
from schema.authority import Account, Ledger, referenced_users
from schema.events import Event
from sync import bounded, envelope
from sync.crypto import unb64, verify
from sync.errors import ProtocolError, malformed
from sync.messages import _TYPES, VERSION, WIRE_FIELDS, SegmentHeader, make_receipt, segment_header
from sync.scope import CREATION_KINDS, GLOBAL, is_case, scope_of, township_of
from sync.server import registry
from sync.server.audit import alarm_hourly, alarm_now, blame, raise_alarm, record_refusal
from sync.server.config import CST, now_ms
from sync.server.db import CountyDB, insert_case_scopes, insert_events
from sync.server.keystore import County
from sync.server.sealed import Source

log = logging.getLogger("county_center")

MAX_SEQ = 2**62
# One event's canonical text (a registration with its item snapshot is ~2 KB). Its body's nesting is
# bounded by the push or bundle it came in (sync.bounded.MAX_DEPTH).
MAX_EVENT_BYTES = 256 * 1024
MAX_HLC = 2**63 - 1
CLOCK_FUTURE_MS = 10 * 60 * 1000
CLOCK_PAST_MS = 24 * 3600 * 1000
FLAG_CLOCK_FUTURE = 1
FLAG_CLOCK_PAST = 2
FLAG_CLOCK_UNREADABLE = 4
# What a client can send that makes parsing or verification blow up; each becomes "malformed".
DATA_ERRORS = (
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    AttributeError,
    UnicodeError,
    RecursionError,
    OverflowError,
)


@dataclass
class SegmentResult:
    station: str
    status: str  # stored | duplicate | refused
    receipt: dict[str, str] | None = None
    error: ProtocolError | None = None
    first: int = 0
    last: int = 0
    stored: int = 0  # events newly stored
    flags: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status in ("stored", "duplicate")

    @property
    def retry(self) -> bool:
        return self.error is not None and bool(self.error.detail.get("retry"))

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"station": self.station, "status": self.status, "receipt": self.receipt}
        if self.error is not None:
            d.update(self.error.to_dict())
        return d


# -- verifying a segment, fast ---------------------------------------------------------------------
#
# open_fast() is sync.messages.open_segment() with the same checks and results, minus the
# repeated work: client JSON is parsed with floats/NaN turned into BadNumber objects (so the
# canonical encoder's Python-level float walk is not needed: BadNumber fails the encoder's
# ``default`` hook), each event's canonical text is encoded once, and the stored text (with
# "hash") is spliced from it instead of being encoded again. tests/sync/test_server_ingest.py
# checks it against open_segment() on valid and damaged segments.


class BadNumber:
    """A float or NaN/Infinity in a client's JSON: never canonical, refused where it is used."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def loads_client_json(data: bytes | str, what: str = "上传数据") -> Any:
    """A client's JSON, nesting and size checked first (:mod:`sync.bounded`), floats kept as BadNumber."""
    return bounded.loads(data, what, parse_float=BadNumber, parse_constant=BadNumber)


def _not_canonical(value: Any) -> Any:
    raise TypeError(f"{type(value).__name__} is not allowed in canonical data")


# schema.canonical's encoder, plus a default hook that refuses anything not JSON-native
_STRICT = json.JSONEncoder(
    ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False, default=_not_canonical
)
_WIRE_SET = frozenset(WIRE_FIELDS)


class Incoming:
    """A verified event of a pushed segment (the fields of schema.events.Event) and its stored text."""

    __slots__ = (
        "id",
        "station",
        "seq",
        "prev",
        "at",
        "hlc",
        "actor",
        "role",
        "org",
        "kind",
        "subject",
        "body",
        "hash",
        "text",
    )

    def __init__(
        self, raw: dict[str, Any], station: str, seq: int, prev: str, digest: str, text: str
    ) -> None:
        self.id, self.at, self.hlc, self.actor = raw["id"], raw["at"], raw["hlc"], raw["actor"]
        self.role, self.org, self.kind, self.subject = raw["role"], raw["org"], raw["kind"], raw["subject"]
        self.body, self.station, self.seq, self.prev, self.hash, self.text = (
            raw["body"],
            station,
            seq,
            prev,
            digest,
            text,
        )

    def event(self) -> Event:
        return Event(**{k: getattr(self, k) for k in Event.__slots__})


def open_fast(wire: Any, public: bytes) -> tuple[SegmentHeader, list[Incoming]]:
    """Verify a segment's signature and chain (as ``open_segment``); return its events with their texts."""
    h = segment_header(wire)
    verify(public, unb64(wire["s"], "签名"), wire["h"].encode("utf-8"), who="工作站")
    events, prev, station = [], h.prev, h.station
    sha256 = hashlib.sha256
    for i, raw in enumerate(wire["e"]):
        if not isinstance(raw, dict) or raw.keys() != _WIRE_SET:
            raise malformed(f"同步段第{i + 1}条记录字段不全")
        for name, typ in _TYPES.items():
            v = raw[name]
            if not isinstance(v, typ) or (typ is int and type(v) is bool):
                raise malformed(f"同步段第{i + 1}条记录的字段 {name} 类型不对")
        seq = h.first + i
        unsigned = {
            "actor": raw["actor"],
            "at": raw["at"],
            "body": raw["body"],
            "hlc": raw["hlc"],
            "id": raw["id"],
            "kind": raw["kind"],
            "org": raw["org"],
            "prev": prev,
            "role": raw["role"],
            "seq": seq,
            "station": station,
            "subject": raw["subject"],
        }
        try:
            text = _STRICT.encode(unsigned)
            data = text.encode("utf-8")
        except (TypeError, ValueError):  # floats, NaN, non-JSON values; lone surrogates (UnicodeEncodeError)
            raise malformed(f"同步段第{i + 1}条记录含有不允许的数据类型") from None
        if len(data) > MAX_EVENT_BYTES:
            raise ProtocolError(
                "too_large",
                f"同步段第{i + 1}条记录过大（{len(data) // 1024} KB，上限{MAX_EVENT_BYTES // 1024} KB）",
            )
        digest = sha256(data).hexdigest()
        # The top-level "hlc" key is the last ',"hlc":' in the text: every top-level value after it is a
        # string or an int, and a quote inside a string is always escaped.
        j = text.rfind(',"hlc":')
        full = text[:j] + ',"hash":"' + digest + '"' + text[j:]
        events.append(Incoming(raw, station, seq, prev, digest, full))
        prev = digest
    if prev != h.head:
        raise ProtocolError("signature", "同步段内容与签名不符：记录在传输或保存中被改动过")
    return h, events


# -- one segment -------------------------------------------------------------------------------


def ingest_segment(
    cdb: CountyDB, county: County, wire: Any, *, source: Source | None = None
) -> SegmentResult:
    """Verify and store one segment; never raises for anything the client sent.

    ``source``: who delivered it (verified). A segment whose signature fails is blamed on the
    station only when that station delivered it itself; relayed by another (a township, a USB
    bundle), the alarm names the source and not the station the segment claims to be from.
    ``None``: delivered by the station it names (plain-function callers).
    """
    station = _claimed_station(wire)  # for the answer and the audit log, until verified
    first = last = 0
    try:
        try:
            h = segment_header(wire)
            station = registry.check_station_id(h.station)
            first, last = h.first, h.last
            if h.last >= MAX_SEQ:
                raise malformed("同步段的序号过大")
        except DATA_ERRORS:
            raise malformed("同步段格式不对") from None
        row = registry.active_station(cdb, station, endpoint="push")
        if h.county != county.code:
            raise ProtocolError(
                "wrong_county",
                f"同步段是发给县中心 {str(h.county)[:12]} 的，本县中心是 {county.name}（{county.code}）",
            )
        keys = registry.station_keys(row)
        try:
            h, events = open_fast(wire, keys.sign)
        except ProtocolError as e:
            if e.code == "signature":
                if source is None or source.station == station:
                    alarm_now(cdb, "signature", station, first=first, last=last)
                else:
                    blame(cdb, "signature", source.address, claimed=station, relayed_by=source.station)
            raise
        except DATA_ERRORS:
            raise malformed("同步段中的记录含有无法处理的数据") from None
        _check_events(events)
        return _store(cdb, county, row.sign_pub, h, events)
    except ProtocolError as e:
        if e.code in ("fork", "conflict", "authority", "clock"):
            alarm = alarm_hourly if e.detail.get("retry") else alarm_now  # a clock ahead retries every sync
            alarm(cdb, e.code, station, first=first, last=last, **_alarm_detail(e))
        return SegmentResult(station, "refused", error=e, first=first, last=last)


def _claimed_station(wire: Any) -> str:
    try:
        claimed = bounded.loads(wire["h"], "同步段").get("station")
        return registry.check_station_id(claimed)
    except (ProtocolError, *DATA_ERRORS):
        return ""


def _alarm_detail(e: ProtocolError) -> dict[str, Any]:
    return {k: v for k, v in e.detail.items() if k in ("seq", "stored", "received", "event")}


def _check_events(events: list[Incoming]) -> None:
    for ev in events:
        if not ev.id or len(ev.id) > 100 or "\x00" in ev.id:
            raise malformed(f"第{ev.seq}条记录的编号无效")
        if len(ev.subject) > 200 or "\x00" in ev.subject or len(ev.kind) > 64 or "\x00" in ev.kind:
            raise malformed(f"第{ev.seq}条记录的类型或对象编号无效")
        if not 0 <= ev.hlc <= MAX_HLC:
            raise malformed(f"第{ev.seq}条记录的逻辑时钟无效")


def _at_ms(at: str) -> int | None:
    try:
        dt = datetime.fromisoformat(at)
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=CST)
    try:
        return int(dt.timestamp() * 1000)
    except (OverflowError, ValueError, OSError):
        return None


def _clock_flags(events: list[Incoming], prev_at: str, now: int) -> list[int]:
    """Flags of plausible clocks; a clock beyond the bound (``schema.hlc``) refuses the segment."""
    flags, prev = [], _at_ms(prev_at) if prev_at else None
    for ev in events:
        ms, f = _at_ms(ev.at), 0
        problem = HLC.bound_problem(ev.hlc, ms, now)
        if problem is not None:
            raise _clock_refusal(ev.seq, problem)
        if ms is None:
            f = FLAG_CLOCK_UNREADABLE
        else:
            if ms > now + CLOCK_FUTURE_MS:
                f |= FLAG_CLOCK_FUTURE
            if prev is not None and ms < prev - CLOCK_PAST_MS:
                f |= FLAG_CLOCK_PAST
            prev = ms
        flags.append(f)
    return flags


def _clock_refusal(seq: int, problem: HLC.ClockProblem) -> ProtocolError:
    if problem.ahead:
        return ProtocolError(
            "clock",
            f"第{seq}条记录：{problem.reason}。本工作站的时钟可能不准：这些记录先留在本机，"
            "等县中心的时间赶上后会自动上传；请校正电脑的日期和时间",
            seq=seq,
            retry=True,
        )
    return ProtocolError("clock", f"第{seq}条记录：{problem.reason}，已拒收并报警", seq=seq)


def _check_authority(cdb: CountyDB, row, events: list[Incoming]) -> None:
    """Every new event's org, role and actor must be ones the station holds (schema.authority)."""
    St = cdb.m.Staff
    wanted = sorted(referenced_users(events))
    accounts = []
    for i in range(0, len(wanted), 500):
        q = St.select(St.user_id, St.station, St.role, St.added_seq, St.disabled_seq).where(
            St.user_id.in_(wanted[i : i + 500])
        )
        accounts += [Account(*r) for r in q.tuples()]
    ledger = Ledger(accounts)
    for ev in events:
        reason = ledger.admit(ev, row.org)
        if reason is not None:
            raise ProtocolError("authority", f"第{ev.seq}条记录：{reason}。整段已拒收并报警", seq=ev.seq)


def _scopes(cdb: CountyDB, events: list[Incoming], station_org: str) -> list[str]:
    """The scope of each event, or a refusal of the whole segment."""
    CS = cdb.m.CaseScope
    wanted = sorted({ev.subject for ev in events if is_case(ev.kind)})
    known: dict[str, str] = {}
    for i in range(0, len(wanted), 500):
        chunk = wanted[i : i + 500]
        known.update(
            {r.case_id: r.scope for r in CS.select(CS.case_id, CS.scope).where(CS.case_id.in_(chunk))}
        )
    out = []
    memo: dict[tuple[str, str | None], str] = {}  # scope_of depends on (kind, case scope) for one station
    for ev in events:
        case_scope = known.get(ev.subject)
        scope = memo.get((ev.kind, case_scope))
        if scope is None:
            try:
                scope = scope_of(ev.kind, ev.subject, station_org=station_org, case_scope=case_scope)
            except ProtocolError as e:
                raise ProtocolError(
                    e.code, f"第{ev.seq}条记录：{e.message}", seq=ev.seq, **e.detail
                ) from None
            memo[(ev.kind, case_scope)] = scope
        if ev.kind in CREATION_KINDS and ev.subject not in known:
            known[ev.subject] = scope  # later events in the same segment see it
        out.append(scope)
    return out


def _store(
    cdb: CountyDB, county: County, verified_key: str, h: SegmentHeader, events: list[Incoming]
) -> SegmentResult:
    E, S = cdb.m.Event, cdb.m.Station
    received = now_ms()
    result = SegmentResult(h.station, "stored", first=h.first, last=h.last)
    try:
        with cdb.write():
            row = cdb.lock_station(h.station)
            error = registry.refusal(row, h.station)
            if error is not None:  # revoked (or re-keyed) since it was verified
                raise error
            if row.sign_pub != verified_key:
                raise ProtocolError("signature", "工作站密钥已更换（重新登记过），请用新密钥重新签名后上传")
            head = row.head_seq
            if h.last <= head:
                stored = E.select(E.hash).where((E.station == h.station) & (E.seq == h.last)).scalar()
                if stored != h.head:
                    raise ProtocolError(
                        "fork",
                        f"工作站第{h.last}条记录与县中心已收到的不同（链分叉），已拒收并报警，请联系县中心",
                        seq=h.last,
                        stored=stored,
                        received=h.head,
                    )
                result.status = "duplicate"
            elif h.first > head + 1:
                raise ProtocolError(
                    "gap", f"县中心只收到第{head}条，请从第{head + 1}条开始上传", send_from=head + 1
                )
            else:
                link = h.prev if h.first == head + 1 else events[head - h.first].hash
                if link != row.head_hash:
                    raise ProtocolError(
                        "fork",
                        f"工作站第{head}条记录与县中心已收到的不同（链分叉），已拒收并报警，请联系县中心",
                        seq=head,
                        stored=row.head_hash,
                        received=link,
                    )
                new = events[head + 1 - h.first :]
                _append(cdb, row, new, received, result)
                S.update(
                    head_seq=h.last,
                    head_hash=h.head,
                    head_hlc=max(row.head_hlc, max(ev.hlc for ev in new)),
                    head_at=new[-1].at,
                    last_seen=received,
                ).where(S.id == h.station).execute()
    except IntegrityError:
        raise ProtocolError(
            "conflict", "同步段中有记录编号与县中心已有的其他记录重复，已拒收并报警，请联系县中心"
        ) from None
    if result.status == "duplicate":
        _touch_quietly(cdb, h.station)
    result.receipt = make_receipt(county.unlocked, county.code, h.station, h.last, h.head)
    return result


def _touch_quietly(cdb: CountyDB, station: str) -> None:
    try:
        registry.touch(cdb, station)
    except Exception:  # noqa: BLE001 - "last seen" is informational
        log.exception("could not update last_seen")


def _append(cdb: CountyDB, row, new: list[Incoming], received: int, result: SegmentResult) -> None:
    scopes = _scopes(cdb, new, row.org)
    flags = _clock_flags(new, row.head_at, received)
    _check_authority(cdb, row, new)
    townships: dict[str, str] = {}
    rows = []
    for ev, scope, f in zip(new, scopes, flags, strict=True):
        town = townships.get(scope)
        if town is None:
            town = townships[scope] = township_of(scope)
        rows.append(
            (
                ev.id,
                ev.station,
                ev.seq,
                ev.hash,
                ev.hlc,
                ev.kind,
                ev.subject,
                scope,
                town,
                ev.text,
                received,
                f,
            )
        )
    cdb.lock_log()
    insert_events(cdb, rows)
    registrations = [
        (ev.subject, scope) for ev, scope in zip(new, scopes, strict=True) if ev.kind in CREATION_KINDS
    ]
    if registrations:
        insert_case_scopes(cdb, registrations)
    for ev in new:
        if ev.kind in (K.USER_ADDED, K.USER_DISABLED):
            _fold_staff(cdb, ev)  # admitted by _check_authority: body.user_id is the subject
    flagged = [(ev.seq, f) for ev, f in zip(new, flags, strict=True) if f]
    if flagged:
        result.flags = {
            "future": sum(1 for _, f in flagged if f & FLAG_CLOCK_FUTURE),
            "past": sum(1 for _, f in flagged if f & FLAG_CLOCK_PAST),
            "unreadable": sum(1 for _, f in flagged if f & FLAG_CLOCK_UNREADABLE),
        }
        raise_alarm(cdb, "clock", row.id, first=flagged[0][0], last=flagged[-1][0], **result.flags)
    result.stored = len(new)


def _fold_staff(cdb: CountyDB, ev: Incoming) -> None:
    """The county's staff directory (``county-center users``) and the accounts authority checks use.

    A user belongs to the station that added it, once; a ``user.disabled`` from that station
    also records the seq from which its events are refused (a county admin's does not).
    """
    St = cdb.m.Staff
    b = ev.body
    uid = ev.subject
    if ev.kind == K.USER_DISABLED:
        existing = St.get(St.user_id == uid)
        values: dict[str, Any] = {"disabled": True}
        if existing.station == ev.station and (existing.disabled_seq is None or ev.seq < existing.disabled_seq):
            values["disabled_seq"] = ev.seq
        St.update(**values).where(St.user_id == uid).execute()
        return
    St.insert(
        user_id=uid,
        login=str(b.get("login", ""))[:200],
        name=str(b.get("name", ""))[:200],
        role=str(b.get("role", ""))[:32],
        org=str(b.get("org", ""))[:32],
        station=ev.station,
        added_hlc=ev.hlc,
        added_seq=ev.seq,
    ).on_conflict_ignore().execute()


# -- several segments (a push, a bundle) ---------------------------------------------------------------


def ingest_segments(
    cdb: CountyDB, county: County, segments: list[Any], *, source: Source | None = None
) -> list[SegmentResult]:
    """Results in the order given. Segments refused only because a case they act on has not
    arrived yet (``retry``) are tried again after the others, while that makes progress — a
    township relaying a village's registration after its own forward is not refused."""
    results = [ingest_segment(cdb, county, s, source=source) for s in segments]
    while True:
        again = [i for i, r in enumerate(results) if r.retry]
        if not again:
            break
        progress = False
        for i in again:
            r = ingest_segment(cdb, county, segments[i], source=source)
            progress |= r.ok
            results[i] = r
        if not progress:
            break
    return results


def open_push(opened: envelope.Opened, *, max_segments: int) -> list[Any]:
    """The segment wires of an authenticated push envelope (:mod:`sync.server.sealed`)."""
    payload = parse_json(opened.payload, "上传数据")
    if not isinstance(payload, dict) or payload.get("t") != "push":
        raise malformed("上传数据不是“push”消息")
    if payload.get("v") != VERSION:
        raise ProtocolError(
            "version", f"上传数据的格式版本为{payload.get('v')}，本县中心只支持版本{VERSION}，请升级程序"
        )
    sender, segments = payload.get("from"), payload.get("segments")
    if not isinstance(sender, str) or not isinstance(segments, list):
        raise malformed("上传数据缺少发送方或同步段列表")
    if sender != opened.sender:
        raise malformed("上传数据中的发送方与签名的发送方不符")
    if len(segments) > max_segments:
        raise ProtocolError(
            "too_large", f"一次最多上传{max_segments}个同步段，收到{len(segments)}个，请分批上传"
        )
    return segments


def parse_json(data: bytes, what: str) -> Any:
    """A client's JSON document (``malformed`` with a Chinese reason for anything else)."""
    return loads_client_json(data, what)


def push_answer(results: list[SegmentResult]) -> tuple[int, dict[str, Any]]:
    """HTTP status and body of a push answer (sync.api)."""
    body: dict[str, Any] = {"results": [r.to_dict() for r in results]}
    first_bad = next((r for r in results if not r.ok), None)
    if first_bad is None or first_bad.error is None:
        return 200, body
    return first_bad.error.http_status, {**first_bad.error.to_dict(), **body}


def audit_results(cdb: CountyDB, results: list[SegmentResult], *, remote: str, endpoint: str) -> None:
    for r in results:
        if r.error is not None:
            record_refusal(
                cdb,
                remote=remote,
                station=r.station,
                endpoint=endpoint,
                status=r.error.http_status,
                code=r.error.code,
                reason=r.error.message,
            )


__all__ = ["GLOBAL", "SegmentResult", "ingest_segment", "ingest_segments", "open_push", "push_answer"]
