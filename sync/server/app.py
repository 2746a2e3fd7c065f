"""The county center's HTTP API (FastAPI): handlers only translate to and from plain functions.

Endpoints and payloads are documented in :mod:`sync.api`; the OpenAPI description is at
``/openapi.json``. Every request goes through the limits (:mod:`sync.server.limits`);
every refusal is a 4xx JSON ``{"error", "reason", ...}`` and a row in the audit log. A 500
(JSON too) is answered only for a true server fault, e.g. the database being down; its
traceback is logged on the server, never sent.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from peewee import DatabaseError, InterfaceError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from schema.errors import UserError
from sync import api, envelope
from sync import recovery as recovery_format
from sync.errors import ProtocolError, malformed
from sync.messages import VERSION
from sync.server import ingest, pull, recovery, registry
from sync.server.audit import record_refusal
from sync.server.config import Settings, now_iso, now_ms
from sync.server.db import CountyDB, DatabaseUnavailable, connect
from sync.server.keystore import County, unlock
from sync.server.limits import RateLimiter, read_body

log = logging.getLogger("county_center")

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error", "reason"],
    "properties": {"error": {"type": "string"}, "reason": {"type": "string"}},
    "additionalProperties": True,
}
SIGNED_SCHEMA = {
    "type": "object",
    "required": ["h", "s"],
    "properties": {
        "h": {"type": "string", "description": "canonical JSON text"},
        "s": {"type": "string", "description": "base64 Ed25519 signature over h"},
    },
}
# An enrollment request or answer (sync.enrollment): signed, plus the MAC keyed from the one-time code.
ENROLL_SCHEMA = {
    "type": "object",
    "required": ["h", "s", "m"],
    "properties": {
        **SIGNED_SCHEMA["properties"],
        "m": {"type": "string", "description": "base64 HMAC-SHA256 over h, keyed from the one-time code"},
    },
}
BINARY = {"content": {api.OCTET: {"schema": {"type": "string", "format": "binary"}}}}
REFUSALS = {
    str(code): {"description": desc, "content": {"application/json": {"schema": ERROR_SCHEMA}}}
    for code, desc in [
        (400, "格式错误"),
        (403, "未登记、已吊销、签名不符或越权"),
        (409, "缺口、分叉或冲突"),
        (413, "请求过大"),
        (429, "请求过于频繁（见 Retry-After）"),
    ]
}


@dataclass
class Context:
    settings: Settings
    cdb: CountyDB
    county: County
    limiter: RateLimiter  # per (station, address)
    anon: RateLimiter  # per address, for requests that name no known station
    enroll_limiter: RateLimiter  # per address: guessing codes must be slow


def create_app(
    settings: Settings,
    *,
    cdb: CountyDB | None = None,
    county: County | None = None,
    passphrase: str | None = None,
) -> FastAPI:
    """The ASGI app. Give an open ``cdb`` and an unlocked ``county``, or a ``passphrase`` to unlock."""
    if cdb is None:
        cdb = connect(settings.db_url)
    if county is None or county.key is None:
        if passphrase is None:
            raise UserError("启动县中心需要管理口令（COUNTY_PASSPHRASE）")
        county = unlock(cdb, passphrase)
    ctx = Context(
        settings,
        cdb,
        county,
        RateLimiter(settings.rate_per_second, settings.rate_burst),
        RateLimiter(settings.anon_rate_per_second, settings.anon_rate_burst),
        RateLimiter(max(settings.rate_per_second / 5, 0.2), 10),
    )
    app = FastAPI(
        title=f"县中心同步服务 — {county.name}",
        version=str(VERSION),
        description="政务便民服务县中心：工作站登记、上传（push）、下载（pull）、时间与健康检查。"
        "上传与下载的请求体是加密信封（sync.envelope），拒收一律返回 JSON {error, reason}。",
        docs_url=None,
        redoc_url=None,
    )
    app.state.ctx = ctx
    _install_error_handlers(app)

    @app.get("/v1/health", summary="健康检查", responses={"503": {"description": "数据库不可用"}})
    async def health(request: Request) -> Response:
        async def run(info: dict) -> Response:
            await run_in_threadpool(lambda: ctx.cdb.database.execute_sql("SELECT 1").fetchone())
            return SafeJSONResponse({"status": "ok", "county": ctx.county.code, "version": VERSION})

        return await _guard(request, "health", run)

    @app.get("/v1/time", summary="县中心时间")
    async def time_(request: Request) -> Response:
        ms = now_ms()
        return SafeJSONResponse({"county": ctx.county.code, "now": now_iso(ms), "ms": ms})

    @app.post(
        "/v1/enroll",
        summary="工作站登记（经登记码校验的登记请求 → 县中心签名并经登记码校验的答复；登记码本身不传输）",
        openapi_extra={
            "requestBody": {"required": True, "content": {"application/json": {"schema": ENROLL_SCHEMA}}}
        },
        responses={"200": {"content": {"application/json": {"schema": ENROLL_SCHEMA}}}, **REFUSALS},
    )
    async def enroll(request: Request) -> Response:
        async def run(info: dict) -> Response:
            ctx.enroll_limiter.check(info["remote"])
            body = await read_body(request, ctx.settings.max_enroll_bytes)
            wire = ingest.parse_json(body, "登记请求")
            if isinstance(wire, dict) and isinstance(wire.get("h"), str):
                info["station"] = _claimed_station(wire["h"])
            answer = await run_in_threadpool(registry.enroll, ctx.cdb, ctx.county, wire, url=ctx.settings.url)
            return SafeJSONResponse(answer)

        return await _guard(request, "enroll", run)

    @app.post(
        "/v1/recovery",
        summary="工作站用户申请恢复（签名的恢复申请 → 申请编号；县中心管理员核对后批准）",
        openapi_extra={
            "requestBody": {"required": True, "content": {"application/json": {"schema": SIGNED_SCHEMA}}}
        },
        responses=REFUSALS,
    )
    async def recovery_request(request: Request) -> Response:
        async def run(info: dict) -> Response:
            ctx.enroll_limiter.check(info["remote"])
            body = await read_body(request, recovery_format.MAX_BYTES)
            wire = recovery_format.parse_wire(body, "恢复申请")
            info["station"] = _claimed_station(wire["h"])
            item = await run_in_threadpool(recovery.submit, ctx.cdb, ctx.county, wire, remote=info["remote"])
            return SafeJSONResponse({"id": item.request.id, "status": "pending", "check": item.request.check_code})

        return await _guard(request, "recovery", run)

    @app.get("/v1/recovery/{request_id}", summary="取恢复申请的结果（待批准 / 已批准附签名答复 / 已拒绝）",
             responses=REFUSALS)
    async def recovery_answer(request: Request, request_id: str) -> Response:
        async def run(info: dict) -> Response:
            ctx.anon.check(info["remote"])
            return SafeJSONResponse(await run_in_threadpool(recovery.status, ctx.cdb, request_id))

        return await _guard(request, "recovery", run)

    @app.post(
        "/v1/push",
        summary="上传同步段（加密信封 push → 每段的结果与回执）",
        openapi_extra={"requestBody": {"required": True, **BINARY}},
        responses={"200": {"content": {"application/json": {"schema": {"type": "object"}}}}, **REFUSALS},
    )
    async def push(request: Request) -> Response:
        async def run(info: dict) -> Response:
            blob = await _limited_body(request, info)

            def work() -> tuple[int, dict[str, Any]]:
                _, segments = ingest.open_push(
                    ctx.county, blob, max_segments=ctx.settings.max_segments_per_push
                )
                results = ingest.ingest_segments(ctx.cdb, ctx.county, segments)
                ingest.audit_results(ctx.cdb, results, remote=info["remote"], endpoint="push")
                return ingest.push_answer(results)

            status, answer = await run_in_threadpool(work)
            info["audited"] = True
            return SafeJSONResponse(answer, status_code=status)

        return await _guard(request, "push", run)

    @app.post(
        "/v1/pull",
        summary="下载（加密信封 pull → 加密信封 page；带 for 时为发给该村的 return）",
        openapi_extra={"requestBody": {"required": True, **BINARY}},
        responses={"200": BINARY, **REFUSALS},
    )
    async def pull_(request: Request) -> Response:
        async def run(info: dict) -> Response:
            blob = await _limited_body(request, info)

            def work() -> bytes:
                row, doc = pull.open_pull(ctx.cdb, ctx.county, blob)
                info["station"] = row.id
                return pull.answer_pull(ctx.cdb, ctx.county, row, doc, ctx.settings)

            return Response(await run_in_threadpool(work), media_type=api.OCTET)

        return await _guard(request, "pull", run)

    return app


class SafeJSONResponse(JSONResponse):
    """JSON whose strings may hold a client's lone surrogates: escaped as ``\\udXXX`` (still valid JSON)
    instead of failing to encode as UTF-8 (which would have been a 500)."""

    def render(self, content: Any) -> bytes:
        text = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        return text.encode("utf-8", "backslashreplace")


def _claimed_station(h: str) -> str:
    try:
        doc = json.loads(h)
        station = doc.get("station") if isinstance(doc, dict) else None
        return station[:64] if isinstance(station, str) else ""
    except (ValueError, RecursionError):
        return ""


async def _limited_body(request: Request, info: dict) -> bytes:
    """Read a sealed body within the size limit; rate-limit by its claimed sender and address."""
    ctx: Context = request.app.state.ctx
    blob = await read_body(request, ctx.settings.max_request_bytes)
    header = envelope.peek(blob)
    sender = header.get("from")
    sender = sender[:64] if isinstance(sender, str) else ""
    info["station"] = sender
    known = sender and await run_in_threadpool(
        lambda: ctx.cdb.m.Station.get_or_none(ctx.cdb.m.Station.id == sender) is not None
    )
    if known:
        ctx.limiter.check(f"{sender}|{info['remote']}")
    else:
        ctx.anon.check(info["remote"])
    return blob


async def _guard(request: Request, endpoint: str, run: Callable[[dict], Awaitable[Response]]) -> Response:
    """Run a handler; turn every refusal into a 4xx JSON answer plus an audit row."""
    ctx: Context = request.app.state.ctx
    info: dict[str, Any] = {"remote": request.client.host if request.client else "", "station": ""}
    try:
        return await run(info)
    except ProtocolError as e:
        return await _refuse(ctx, info, endpoint, e)
    except (DatabaseUnavailable, DatabaseError, InterfaceError):
        log.exception("database fault on %s", endpoint)
        return await _fault(ctx, info, endpoint, "database", "县中心数据库暂时不可用，请稍后再试", 503)
    except UserError as e:  # e.g. a Chinese validation message from schema
        return await _refuse(ctx, info, endpoint, ProtocolError("malformed", e.message))
    except Exception:  # noqa: BLE001 - a server bug: log it here, never send it
        log.exception("internal error on %s", endpoint)
        return await _fault(
            ctx, info, endpoint, "internal", "县中心内部错误，已记录，请稍后再试或联系县中心", 500
        )


async def _refuse(ctx: Context, info: dict, endpoint: str, e: ProtocolError) -> Response:
    if not info.get("audited"):
        await run_in_threadpool(
            record_refusal,
            ctx.cdb,
            remote=info["remote"],
            station=info.get("station") or "",
            endpoint=endpoint,
            status=e.http_status,
            code=e.code,
            reason=e.message,
        )
    headers = {"Retry-After": str(e.detail["retry_after"])} if "retry_after" in e.detail else None
    return SafeJSONResponse(e.to_dict(), status_code=e.http_status, headers=headers)


async def _fault(ctx: Context, info: dict, endpoint: str, code: str, reason: str, status: int) -> Response:
    await run_in_threadpool(
        record_refusal,
        ctx.cdb,
        remote=info["remote"],
        station=info.get("station") or "",
        endpoint=endpoint,
        status=status,
        code=code,
        reason=reason,
    )
    return SafeJSONResponse({"error": code, "reason": reason}, status_code=status)


def _install_error_handlers(app: FastAPI) -> None:
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        ctx: Context = request.app.state.ctx
        if exc.status_code == 404:
            e = ProtocolError("not_found", f"没有这个接口：{request.url.path[:100]}")
        elif exc.status_code == 405:
            e = ProtocolError("method", f"接口 {request.url.path[:100]} 不支持 {request.method} 请求")
        else:
            e = ProtocolError("malformed", "请求无效")
        status = exc.status_code if 400 <= exc.status_code < 500 else 400
        remote = request.client.host if request.client else ""
        await run_in_threadpool(
            record_refusal,
            ctx.cdb,
            remote=remote,
            station="",
            endpoint=request.url.path[:64],
            status=status,
            code=e.code,
            reason=e.message,
        )
        return SafeJSONResponse(e.to_dict(), status_code=status, headers=getattr(exc, "headers", None))

    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        e = malformed("请求参数不对")
        return SafeJSONResponse(e.to_dict(), status_code=400)

    async def anything(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error", exc_info=exc)
        return SafeJSONResponse(
            {"error": "internal", "reason": "县中心内部错误，已记录，请稍后再试"}, status_code=500
        )

    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(Exception, anything)


class BackgroundServer:
    """uvicorn serving ``app`` in a thread on ``host`` (port 0: a free port) — for tests and benchmarks.

    with BackgroundServer(app) as srv:
        requests.get(srv.url + "/v1/health")
    """

    def __init__(self, app: FastAPI, host: str = "127.0.0.1", port: int = 0) -> None:
        import socket

        import uvicorn

        # IPPROTO_TCP so that asyncio sets TCP_NODELAY (else keep-alive answers wait for delayed ACKs)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.bind((host, port))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://{host}:{self.port}"
        config = uvicorn.Config(
            app, log_level="warning", lifespan="off", access_log=False, timeout_keep_alive=30
        )
        self.server = uvicorn.Server(config)
        self.thread = None

    def start(self) -> BackgroundServer:
        import threading
        import time

        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout=30)
        self.sock.close()

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
