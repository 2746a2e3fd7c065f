"""USB bundles at the county: ``import PATH`` (bundle files, like pushes) and ``export`` (a return file).

A bundle is one sealed envelope per file (``*.cvs``, named by ``sync.filenames``). Importing
processes its segments exactly like a push (:func:`sync.server.ingest.ingest_segments`,
refusals audited with endpoint ``import``) and records the sender's pull cursor. Files
that are not bundles, or not addressed to this county, are skipped with a message.
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
from sync import envelope
from sync.errors import ProtocolError, malformed
from sync.filenames import ANSWER, SUFFIX, bundle_name
from sync.messages import VERSION
from sync.server import ingest, pull, registry
from sync.server.config import CST, Settings
from sync.server.db import CountyDB
from sync.server.ingest import SegmentResult
from sync.server.keystore import County

MAX_BUNDLE_BYTES = envelope.MAX_PAYLOAD


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
        if path.stat().st_size > MAX_BUNDLE_BYTES:
            raise ProtocolError("too_large", "数据包文件过大，已拒收")
        blob = path.read_bytes()
    except OSError as e:
        return FileResult(name, "refused", f"无法读取文件（{e.strerror}）")
    try:
        header = envelope.peek(blob)
        if header["type"] != "bundle":
            return FileResult(name, "skipped", f"不是上传数据包（类型为“{header['type']}”），已跳过")
        opened = envelope.open_sealed(blob, county.unlocked.enc_key, expect=("bundle",))
    except ProtocolError as e:
        if e.code == "wrong_county":
            return FileResult(name, "skipped", "这个数据包不是发给本县中心的，已跳过")
        _audit(cdb, "", e)
        return FileResult(name, "refused", e.message)
    try:
        payload = ingest.parse_json(opened.payload, "数据包")
        sender, segments, cursor = _bundle_fields(payload)
    except ProtocolError as e:
        _audit(cdb, opened.sender, e)
        return FileResult(name, "refused", e.message, sender=opened.sender[:64])
    results = ingest.ingest_segments(cdb, county, segments)
    ingest.audit_results(cdb, results, remote="usb", endpoint="import")
    row = cdb.m.Station.get_or_none(cdb.m.Station.id == sender)
    if row is not None and row.status == "active" and cursor is not None:
        registry.touch(cdb, sender, cursor=cursor)
    refused = [r for r in results if not r.ok]
    stored = sum(r.stored for r in results)
    msg = f"{len(segments)}段：新收{stored}条记录" + (f"，{len(refused)}段被拒收" if refused else "")
    return FileResult(name, "refused" if refused else "imported", msg, sender=sender, results=results)


def _bundle_fields(payload: Any) -> tuple[str, list[Any], int | None]:
    if not isinstance(payload, dict) or payload.get("t") != "bundle":
        raise malformed("数据包内容不是“bundle”")
    if payload.get("v") != VERSION:
        raise ProtocolError(
            "version", f"数据包格式版本为{payload.get('v')}，本县中心只支持版本{VERSION}，请升级程序"
        )
    sender, segments, cursor = payload.get("from"), payload.get("segments"), payload.get("cursor")
    if not isinstance(sender, str) or not isinstance(segments, list):
        raise malformed("数据包缺少发送方或同步段")
    if type(cursor) is not int or cursor < 0:
        cursor = None
    return sender[:64], segments, cursor


def _audit(cdb: CountyDB, station: str, e: ProtocolError) -> None:
    from sync.server.audit import record_refusal

    record_refusal(
        cdb,
        remote="usb",
        station=station[:64],
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
