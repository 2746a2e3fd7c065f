"""USB bundles at the county: ``import PATH`` (bundle files, like pushes) and ``export`` (a return file).

A bundle is one sealed envelope per file (``*.cvs``, named by ``sync.filenames``). Importing opens
it like a push (:func:`sync.server.sealed.open_from_station`: an enrolled sender, its
signature checked before anything is decrypted, the payload capped), processes its segments
exactly like a push (:func:`sync.server.ingest.ingest_segments`, refusals audited with
endpoint ``import``) and records the sender's pull cursor — unless the county has heard from
that station more recently than the bundle was made (an old or copied file moves nothing).
Each file is judged on its own: one that is not a bundle or not addressed to this county is
skipped, one that is damaged, forged, too large or from an unknown station is refused, with a
message naming it, and the files beside it are imported all the same.
Exporting writes a ``return`` envelope for one station from its last known cursor, sealed
to that station only, written under a temporary name and renamed when complete.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from schema.errors import UserError
from sync import bounded, envelope
from sync.errors import ProtocolError, malformed
from sync.filenames import ANSWER, SUFFIX, bundle_name
from sync.messages import VERSION
from sync.server import ingest, pull, registry, sealed
from sync.server.audit import record_refusal
from sync.server.config import CST, Settings
from sync.server.db import CountyDB
from sync.server.ingest import SegmentResult
from sync.server.keystore import County
from sync.server.sealed import Source


@dataclass
class FileResult:
    path: str
    status: str  # imported | skipped | refused
    message: str = ""
    sender: str = ""
    results: list[SegmentResult] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.path,
            "status": self.status,
            "message": self.message,
            "from": self.sender,
            "segments": [r.to_dict() | {"stored": r.stored} for r in self.results],
        }


def bundle_files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() == SUFFIX)
    if path.is_file():
        return [path]
    raise UserError(f"找不到 {path}：请给出数据包文件或其所在目录")


def import_path(cdb: CountyDB, county: County, path: str | Path) -> list[FileResult]:
    return [import_file(cdb, county, p) for p in bundle_files(Path(path))]


def import_file(cdb: CountyDB, county: County, path: Path) -> FileResult:
    name = str(path)
    try:
        if path.stat().st_size > bounded.FILE_BYTES:
            return FileResult(
                name, "refused", f"文件超过{bounded.FILE_BYTES // 1024 // 1024} MB，不是本系统的数据包"
            )
        blob = path.read_bytes()
    except OSError as e:
        return FileResult(name, "refused", f"无法读取文件（{e.strerror}）")
    try:
        header = envelope.peek(blob)
        if header["type"] != "bundle":
            return FileResult(name, "skipped", f"不是上传数据包（类型为“{header['type']}”），已跳过")
        if not envelope.addressed_to(header, county.public.enc):
            return FileResult(name, "skipped", "这个数据包不是发给本县中心的，已跳过")
        row, opened = sealed.open_from_station(
            cdb,
            county,
            blob,
            expect="bundle",
            address="usb",
            max_payload=bounded.FILE_PAYLOAD,
            window_ms=None,
        )
        sender, segments, cursor = _bundle_fields(ingest.parse_json(opened.payload, "数据包"), row.id)
    except ProtocolError as e:
        _audit(cdb, e)
        return FileResult(name, "refused", e.message)
    results = ingest.ingest_segments(cdb, county, segments, source=Source("usb", sender))
    ingest.audit_results(cdb, results, remote="usb", endpoint="import")
    made = opened.header["at"]
    registry.touch(cdb, sender, cursor=cursor, at=made, seen=made)
    refused = [r for r in results if not r.ok]
    stored = sum(r.stored for r in results)
    msg = f"{len(segments)}段：新收{stored}条记录" + (f"，{len(refused)}段被拒收" if refused else "")
    return FileResult(name, "refused" if refused else "imported", msg, sender=sender, results=results)


def _bundle_fields(payload: Any, signed_by: str) -> tuple[str, list[Any], int | None]:
    if not isinstance(payload, dict) or payload.get("t") != "bundle":
        raise malformed("数据包内容不是“bundle”")
    if payload.get("v") != VERSION:
        raise ProtocolError(
            "version", f"数据包格式版本为{payload.get('v')}，本县中心只支持版本{VERSION}，请升级程序"
        )
    sender, segments, cursor = payload.get("from"), payload.get("segments"), payload.get("cursor")
    if not isinstance(sender, str) or not isinstance(segments, list):
        raise malformed("数据包缺少发送方或同步段")
    if sender != signed_by:
        raise malformed("数据包中的发送方与签名的发送方不符")
    if len(segments) > bounded.FILE_SEGMENTS:
        raise ProtocolError("too_large", f"一个数据包最多{bounded.FILE_SEGMENTS}段，收到{len(segments)}段")
    if type(cursor) is not int or cursor < 0:
        cursor = None
    return sender, segments, cursor


def _audit(cdb: CountyDB, e: ProtocolError) -> None:
    record_refusal(
        cdb,
        remote="usb",
        station="",
        endpoint="import",
        status=e.http_status,
        code=e.code,
        reason=e.message,
    )


def export(
    cdb: CountyDB, county: County, station: str, out_dir: str | Path, settings: Settings | None = None
) -> dict[str, Any]:
    """Write a ``return`` file for ``station`` into ``out_dir``; returns what was written."""
    settings = settings or Settings()
    out = Path(out_dir)
    if not out.is_dir():
        raise UserError(f"目录 {out} 不存在，请先插好U盘或创建该目录")
    row = cdb.m.Station.get_or_none(cdb.m.Station.id == station)
    error = registry.refusal(row, station)
    if error is not None:
        raise UserError(
            error.message
            if error.code == "revoked"
            else f"找不到工作站 {station}，请用 county-center stations 查看编号"
        )
    cursor = row.last_cursor or 0
    payload = pull.return_payload(
        cdb, county, row, cursor=cursor, max_events=10**9, max_bytes=settings.return_max_bytes
    )
    blob = pull.seal_return(county, row, payload)
    target = out / bundle_name(row.org, datetime.now(CST), ANSWER)
    tmp = out / (target.name + ".part")
    try:
        with open(tmp, "wb") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise UserError(f"无法写入 {out}（{e.strerror}），请检查U盘是否写保护或已满") from None
    events = sum(len(p_events(p)) for p in payload["pages"])
    return {
        "file": str(target),
        "station": station,
        "from": cursor,
        "events": events,
        "receipt": bool(payload["receipts"]),
        "bytes": len(blob),
    }


def p_events(page_wire: dict[str, str]) -> list:
    import json

    return json.loads(page_wire["h"])["events"]
