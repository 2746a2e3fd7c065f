"""USB bundles: the same signed segments and county pages, carried as files.

Every file is one sealed envelope (``sync.envelope``) ending in ``.cvs``, named after the
station and the time (``sync.filenames``): nothing on the stick is readable without a
recipient's private key, and a lost stick shows only which stations' files it carried.

``export_bundle`` writes:

* this station's ``bundle``: its unacknowledged segments (and, at a township, the village
  segments waiting in its relay outbox), its pull cursor and its acknowledged seq — sealed to the
  county and to every township station above it that the registry knows (so the township can
  review and relay it);
* at a township, the ``return`` envelopes it fetched for its villages at its last sync.

``import_path`` takes a file or a directory of files:

* ``bundle`` files of stations below us → relay outbox (``relay.import_segments``). The
  envelope's signature is checked with the sender's registered key before anything is
  decrypted; a village the registry does not know yet is taken only within tight bounds
  (:mod:`sync.bounded`: a small file, a small payload, few segments, every segment well-formed);
* ``return`` files sealed to us → the county's signature on the file is checked first, then its
  county-signed pages are verified and ingested (the cursor advances only when a page starts at
  or before it), receipts are verified and applied.

Each file is judged on its own, with one line naming it. Files meant for other stations (our own
export, another village's return, a bundle sealed to the county only …) are normal on a shared
stick: they are listed as skipped. A file that is damaged, truncated, forged, too large or not a
sync file is a *problem* (exit code 2 of ``station bundle import``); nothing of it is stored, and
the files beside it are imported all the same.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from schema import canonical
from schema.errors import UserError
from schema.org import Level, OrgCode
from station import clock
from station.replication import identity as I
from station.replication import registry, relay
from station.replication.pull import Stored, after_pull, store_page, verify_page
from station.replication.push import MAX_BATCH, apply_receipt, build_segments, next_seq, pending_own
from station.store.atomicfile import atomic_write
from sync import bounded, envelope
from sync.crypto import unb64
from sync.errors import ProtocolError
from sync.filenames import ANSWER, SUFFIX, UPLOAD, bundle_name
from sync.messages import VERSION, segment_header

log = logging.getLogger("station.sync")

PROBLEM_LINES = 3  # per file: then one line counting the rest


@dataclass
class ExportResult:
    files: list[Path] = field(default_factory=list)
    events: int = 0
    segments: int = 0
    relayed_segments: int = 0
    returns: int = 0
    township_can_read: bool = False

    def text(self) -> str:
        lines = [
            f"已导出 {len(self.files)} 个文件：本站 {self.events} 条待上传记录"
            + (f"，转交下级站数据 {self.relayed_segments} 段" if self.relayed_segments else "")
            + (f"，给下级站的回执 {self.returns} 个" if self.returns else "")
        ]
        for f in self.files:
            lines.append(f"  {f}")
        if not self.township_can_read:
            lines.append(
                "提示：本站还不知道上级乡镇工作站的密钥，这个文件只能由县中心导入"
                "（先导入一次县中心或乡镇带回的回执文件后，乡镇就能读取了）"
            )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "files": [str(f) for f in self.files],
            "events": self.events,
            "segments": self.segments,
            "relayed_segments": self.relayed_segments,
            "returns": self.returns,
            "township_can_read": self.township_can_read,
        }


@dataclass
class ImportResult:
    files: int = 0
    bundles: int = 0
    returns: int = 0
    segments: int = 0
    events: int = 0
    receipts: int = 0
    lines: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def text(self) -> str:
        head = (
            f"已处理 {self.files} 个文件：下级站数据 {self.bundles} 个（{self.segments} 段），"
            f"回执 {self.returns} 个；新增记录 {self.events} 条"
        )
        return "\n".join([head, *self.lines, *self.problems])

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "files": self.files,
            "bundles": self.bundles,
            "returns": self.returns,
            "segments": self.segments,
            "events": self.events,
            "receipts": self.receipts,
            "messages": self.lines,
            "problems": self.problems,
        }


def _check_can_sync(session) -> tuple[Any, I.County]:
    key, county = I.require(session)
    rev = I.revoked(session)
    if rev:
        raise I.Revoked(rev.get("reason", ""))
    return key, county


def _return_name(session, station: str) -> str:
    entry = registry.lookup(session.db, station)
    return bundle_name(entry.org if entry else station[:8], clock.now(), ANSWER)


def _target(path: Path) -> tuple[Path, Path | None]:
    """(directory, explicit file name or None)."""
    if path.is_dir() or str(path).endswith(("/", os.sep)):
        return path, None
    return path.parent, path


def _write(path: Path, data: bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, data)
    except OSError as e:
        raise UserError(
            f"无法写入 {path}：{e.strerror or e}。请检查U盘是否插好、是否写保护、空间是否足够"
        ) from None


def export_bundle(session, path: str | Path) -> ExportResult:
    key, county = _check_can_sync(session)
    own = session.config.station_id
    directory, explicit = _target(Path(path))
    out = ExportResult()
    segments = build_segments(session, key, county.code, next_seq(session), batch=MAX_BATCH)
    out.events = sum(len(s["e"]) for s in segments)
    out.segments = len(segments)
    relayed = [json.loads(r[5]) for r in relay.pending_rows(session)]
    out.relayed_segments = len(relayed)
    townships = registry.townships_over(session.db, session.config.org)
    recipients = [county.enc_pub] + [unb64(t.enc_pub, "enc_pub") for t in townships if t.station != own]
    out.township_can_read = len(recipients) > 1 or _is_township_or_above(session)
    payload = {
        "t": "bundle",
        "v": VERSION,
        "from": own,
        "made_at": clock.iso(clock.now()),
        "segments": segments + relayed,
        "cursor": I.cursor(session),
        "acked": I.acked(session),
    }
    blob = envelope.seal(
        canonical.encode(payload),
        kind="bundle",
        sender=own,
        recipients=recipients,
        signer=key,
        at_ms=clock.ms(clock.now()) + I.int_meta(session, I.OFFSET, 0),
    )
    cfg = session.config
    target = explicit or directory / bundle_name(cfg.org, clock.now(), UPLOAD, station_no=cfg.station_no)
    _write(target, blob)
    out.files.append(target)
    for station, data in session.db.execute_sql("SELECT station, blob FROM relay_return ORDER BY station"):
        f = directory / _return_name(session, station)
        _write(f, bytes(data))
        out.files.append(f)
        out.returns += 1
    log.info("bundle exported: events=%d segments=%d relayed=%d returns=%d", out.events, out.segments,
             out.relayed_segments, out.returns)
    return out


def _is_township_or_above(session) -> bool:
    return OrgCode(session.config.org).level is not Level.VILLAGE


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() == SUFFIX)
    if not path.exists():
        raise UserError(f"找不到 {path}，请确认U盘已插好、路径正确")
    return [path]


def import_path(session, path: str | Path) -> ImportResult:
    _, county = I.require(session)
    path = Path(path)
    result = ImportResult()
    files = _files(path)
    if not files:
        result.lines.append(f"{path} 中没有同步数据文件（*.cvs）")
    for f in files:
        result.files += 1
        try:
            _import_file(session, county, f, result)
        except ProtocolError as e:
            result.problems.append(f"{f.name}：{e.message}。此文件已跳过，本机数据未受影响")
        except UserError as e:
            result.problems.append(f"{f.name}：{e.message}")
    if result.bundles:
        result.events += relay.verify_pending(session)
    return result


def _read(f: Path) -> bytes:
    try:
        if f.stat().st_size > bounded.FILE_BYTES:
            raise ProtocolError("too_large", "文件过大，不是本系统导出的同步文件")
        return f.read_bytes()
    except OSError as e:
        raise UserError(f"无法读取：{e.strerror or e}。请检查U盘") from None


def _import_file(session, county: I.County, f: Path, result: ImportResult) -> None:
    own = session.config.station_id
    blob = _read(f)
    header = envelope.peek(blob)
    kind, sender = header["type"], header["from"]
    key = I.keypair(session)
    assert key is not None
    mine = envelope.addressed_to(header, key.public.enc)
    if kind == "bundle":
        if sender == own:
            result.lines.append(f"{f.name}：这是本站自己导出的文件，已跳过")
            return
        entry = registry.lookup(session.db, sender)
        below = entry is not None and relay.below_us(session, entry.org)
        if not mine:
            if below:
                with session.store.writing():
                    relay.note_station(session, sender)
                result.lines.append(
                    f"{f.name}：这是{entry.name or '下级站'}导出的文件，但它还不知道本站的密钥，只能由县中心读取。"
                    "已记下该站，下次同步时会为它取回县中心数据（含本站密钥），带回后它再导出即可"
                )
                return
            result.lines.append(f"{f.name}：这个文件不是发给本站的（是给县中心或其他工作站的），已跳过")
            return
        if entry is not None and not below:
            raise ProtocolError("scope", f"这是{entry.name or '其他工作站'}的文件，它不属于本站管辖")
        payload, segments = _open_bundle(blob, key, entry)
        counts = relay.import_segments(
            session, sender, segments, cursor=payload.get("cursor"), acked=payload.get("acked")
        )
        result.bundles += 1
        result.segments += counts.segments
        result.events += counts.events
        result.problems.extend(f"{f.name}：{m}" for m in counts.refused[:PROBLEM_LINES])
        if len(counts.refused) > PROBLEM_LINES:
            result.problems.append(
                f"{f.name}：另有{len(counts.refused) - PROBLEM_LINES}段数据同样无法使用，已跳过"
            )
        note = f"，其中 {counts.unverified} 段待下次同步后核验" if counts.unverified else ""
        result.lines.append(
            f"{f.name}：收到下级站数据 {counts.segments} 段，新增记录 {counts.events} 条{note}，"
            "下次同步时转交县中心"
        )
        return
    if kind == "return":
        if not mine:
            result.lines.append(f"{f.name}：这是给其他工作站的回执文件，已跳过")
            return
        opened = envelope.open_sealed(
            blob, key.enc_key, county.sign_pub, expect=("return",), max_payload=bounded.FILE_PAYLOAD
        )
        payload = _payload(opened.payload, "return")
        if payload.get("station") != own:
            result.lines.append(f"{f.name}：这是给其他工作站的回执文件，已跳过")
            return
        apply_return(session, county, payload, result, name=f.name)
        return
    raise ProtocolError("malformed", f"这是“{kind}”类型的数据，不是U盘同步文件")


def _open_bundle(blob: bytes, key, entry: registry.Entry | None) -> tuple[dict[str, Any], list[Any]]:
    """A lower station's bundle: (payload, segments). Its signature is checked with the key the
    registry holds for it; a station not in the registry yet passes only within tight bounds."""
    if entry is not None:
        opened = envelope.open_sealed(
            blob,
            key.enc_key,
            unb64(entry.sign_pub, "sign_pub"),
            expect=("bundle",),
            max_payload=bounded.FILE_PAYLOAD,
        )
    else:
        if len(blob) > bounded.UNVERIFIED_FILE_BYTES:
            raise ProtocolError(
                "too_large",
                f"本站还不知道这个下级站的密钥，只能先接收不超过{bounded.UNVERIFIED_FILE_BYTES // 1024 // 1024} MB 的文件。"
                "请先同步一次（取得该站的登记信息）后再导入",
            )
        opened = envelope.decrypt(
            blob, key.enc_key, expect=("bundle",), max_payload=bounded.UNVERIFIED_PAYLOAD
        )
    payload = _payload(opened.payload, "bundle")
    segments = payload.get("segments")
    if payload.get("from") != opened.sender or not isinstance(segments, list):
        raise ProtocolError("malformed", "文件内容不完整")
    if len(segments) > bounded.FILE_SEGMENTS:
        raise ProtocolError("too_large", f"一个文件最多{bounded.FILE_SEGMENTS}段数据，收到{len(segments)}段")
    if entry is None:
        if len(segments) > bounded.UNVERIFIED_SEGMENTS:
            raise ProtocolError(
                "too_large",
                f"本站还不知道这个下级站的密钥，一个文件最多先接收{bounded.UNVERIFIED_SEGMENTS}段数据。"
                "请先同步一次后再导入",
            )
        for wire in segments:  # all or nothing: one bad segment and the whole unverified file goes
            segment_header(wire)
    return payload, segments


def _payload(raw: bytes, expect: str) -> dict[str, Any]:
    doc = bounded.loads(raw, "文件内容")
    if not isinstance(doc, dict) or doc.get("t") != expect:
        raise ProtocolError("malformed", "文件内容类型不符")
    if doc.get("v") != VERSION:
        raise ProtocolError("version", f"文件格式版本为{doc.get('v')}，本程序只支持版本{VERSION}，请升级程序")
    return doc


def apply_return(
    session, county: I.County, payload: dict[str, Any], result: ImportResult, *, name: str
) -> None:
    own = session.config.station_id
    pages, receipts = payload.get("pages", []), payload.get("receipts", [])
    if not isinstance(pages, list) or not isinstance(receipts, list):
        raise ProtocolError("malformed", "回执文件内容不完整")
    verified = [verify_page(county, p, station=own) for p in pages]  # all or nothing
    verified.sort(key=lambda de: de[0]["from"])
    stored = Stored()
    for doc, events in verified:
        contiguous = doc["from"] <= I.cursor(session)
        stored.add(store_page(session, doc, events, advance=contiguous, source="return"))
    new = stored.new
    skipped: list[str] = []
    after_pull(session, stored, skipped)
    result.lines += [f"{name}：{line}" for line in skipped]
    acked = 0
    for wire in receipts:
        try:
            acked = max(acked, apply_receipt(session, county, wire))
            result.receipts += 1
        except ProtocolError as e:
            result.problems.append(f"{name}：回执无效：{e.message}")
    result.returns += 1
    result.events += new
    rest = f"，县中心已确认收到本站第{acked}条为止的记录" if acked else ""
    result.lines.append(f"{name}：县中心回执，新增记录 {new} 条{rest}")
    if pending_own(session):
        result.lines.append(f"本站还有 {pending_own(session)} 条记录待上传")
