"""Signed protocol messages: segments, receipts, pull requests and pages, enrollment.

A signed message travels as ``{"h": <canonical JSON text>, "s": <base64 Ed25519
signature over exactly those UTF-8 bytes>}``. The receiver verifies the bytes it
received and only then parses them: nothing is re-serialised before it is
verified.

A **segment** is a run of one station's hash chain, ``first..last``. Its signed
header names the station, the county, the seqs, the hash the run links to
(``prev``) and the hash of its last event (``head``). The events themselves
travel without ``station``, ``seq``, ``prev`` and ``hash``: the receiver
rebuilds them from the header, recomputes every hash, and the chain must end at
the signed head — so one signature covers every byte of every event, and the
64-character hashes (which do not compress) never cross a slow link.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from schema import canonical
from schema.events import Event
from sync import bounded
from sync.crypto import KeyPair, b64, unb64, verify
from sync.errors import ProtocolError, malformed

VERSION = 1
MAX_SEGMENT_EVENTS = 2000
WIRE_FIELDS = ("id", "at", "hlc", "actor", "role", "org", "kind", "subject", "body")
_TYPES = {
    "id": str,
    "at": str,
    "hlc": int,
    "actor": str,
    "role": str,
    "org": str,
    "kind": str,
    "subject": str,
    "body": dict,
}
# A full event (pull pages carry them with station, seq, prev and hash).
EVENT_TYPES = {**_TYPES, "station": str, "seq": int, "prev": str, "hash": str}


# -- signed documents ---------------------------------------------------------------------------------


def sign_doc(doc: dict[str, Any], key: KeyPair) -> dict[str, str]:
    text = canonical.encode(doc)
    return {"h": text.decode("utf-8"), "s": b64(key.sign(text))}


def doc_header(wire: Any, expect: str) -> dict[str, Any]:
    """Parse a signed message's header WITHOUT verifying it (to learn who signed it)."""
    if not isinstance(wire, dict) or not isinstance(wire.get("h"), str) or not isinstance(wire.get("s"), str):
        raise malformed(f"“{expect}”消息缺少签名或内容")
    doc = bounded.loads(wire["h"], f"“{expect}”消息")
    if not isinstance(doc, dict) or doc.get("t") != expect:
        raise malformed(f"应为“{expect}”消息")
    if doc.get("v") != VERSION:
        raise ProtocolError("version", f"消息格式版本为{doc.get('v')}，本程序只支持版本{VERSION}，请升级程序")
    return doc


def open_doc(wire: Any, public: bytes, expect: str, *, who: str = "") -> dict[str, Any]:
    doc = doc_header(wire, expect)
    verify(public, unb64(wire["s"], "签名"), wire["h"].encode("utf-8"), who=who)
    return doc


# -- segments -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SegmentHeader:
    county: str
    station: str
    first: int
    last: int
    prev: str
    head: str

    @property
    def count(self) -> int:
        return self.last - self.first + 1


def make_segment(events: list[Event], key: KeyPair, county: str) -> dict[str, Any]:
    """Sign a contiguous run of one station's own events."""
    if not events:
        raise ValueError("empty segment")
    first, last = events[0], events[-1]
    if last.seq - first.seq + 1 != len(events):
        raise ValueError("segment events must be contiguous")
    header = {
        "t": "seg",
        "v": VERSION,
        "county": county,
        "station": first.station,
        "first": first.seq,
        "last": last.seq,
        "prev": first.prev,
        "head": last.hash,
    }
    wire = sign_doc(header, key)
    wire["e"] = [{f: getattr(ev, f) for f in WIRE_FIELDS} for ev in events]
    return wire


def segment_header(wire: Any) -> SegmentHeader:
    d = doc_header(wire, "seg")
    try:
        h = SegmentHeader(d["county"], d["station"], d["first"], d["last"], d["prev"], d["head"])
    except KeyError as e:
        raise malformed(f"同步段缺少字段 {e.args[0]}") from None
    ints_ok = all(type(x) is int for x in (h.first, h.last))
    strs_ok = all(isinstance(x, str) for x in (h.county, h.station, h.prev, h.head))
    if not (ints_ok and strs_ok) or h.first < 1 or h.last < h.first:
        raise malformed("同步段的序号或哈希字段无效")
    if h.count > MAX_SEGMENT_EVENTS:
        raise ProtocolError("too_large", f"一个同步段最多{MAX_SEGMENT_EVENTS}条记录，收到{h.count}条")
    if not isinstance(wire.get("e"), list) or len(wire["e"]) != h.count:
        raise malformed("同步段的记录条数与签名的范围不符")
    return h


def open_segment(wire: Any, station_public: bytes) -> tuple[SegmentHeader, list[Event]]:
    """Verify a segment's signature and chain; return its events, hashes recomputed."""
    h = segment_header(wire)
    verify(station_public, unb64(wire["s"], "签名"), wire["h"].encode("utf-8"), who="工作站")
    events, prev = [], h.prev
    for i, raw in enumerate(wire["e"]):
        if not isinstance(raw, dict) or set(raw) != set(WIRE_FIELDS):
            raise malformed(f"同步段第{i + 1}条记录字段不全")
        for name, typ in _TYPES.items():
            if not isinstance(raw[name], typ) or (typ is int and type(raw[name]) is bool):
                raise malformed(f"同步段第{i + 1}条记录的字段 {name} 类型不对")
        try:
            ev = Event(station=h.station, seq=h.first + i, prev=prev, **raw)
            ev = Event(**{**ev.unsigned(), "hash": ev.compute_hash()})
        except TypeError:
            raise malformed(f"同步段第{i + 1}条记录含有不允许的数据类型") from None
        events.append(ev)
        prev = ev.hash
    if prev != h.head:
        raise ProtocolError("signature", "同步段内容与签名不符：记录在传输或保存中被改动过")
    return h, events


# -- receipts -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Receipt:
    county: str
    station: str
    seq: int
    head: str
    wire: dict[str, str]


def make_receipt(key: KeyPair, county: str, station: str, seq: int, head: str) -> dict[str, str]:
    """Ed25519 is deterministic: the same acknowledgement always yields the same receipt bytes."""
    return sign_doc(
        {"t": "receipt", "v": VERSION, "county": county, "station": station, "seq": seq, "head": head}, key
    )


def open_receipt(wire: Any, county_public: bytes) -> Receipt:
    d = open_doc(wire, county_public, "receipt", who="县中心回执")
    try:
        return Receipt(d["county"], d["station"], int(d["seq"]), d["head"], wire)
    except (KeyError, TypeError, ValueError):
        raise malformed("回执缺少字段") from None
