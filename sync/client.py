"""The station's HTTP client for the county center (``sync/api.py`` is the contract).

One :class:`Client` per sync. It keeps a ``requests.Session`` (one TCP/TLS
connection reused across the requests of a sync), sets connect and read
timeouts on every request, and retries what is safe to retry:

* connection errors and timeouts, 5xx answers, and 429 (honouring
  ``Retry-After``) are retried with exponential backoff and full jitter — every
  request of the protocol is idempotent (a re-sent segment gets the same
  receipt, a re-sent pull the same page);
* a 4xx refusal is never retried: it is the county's considered answer.

Failures reach the caller as one of three errors, each with a Chinese message:

* :class:`Offline` — no answer at all (no network, server down, timeouts);
  ``timeout`` tells a slow link from a dead one, so the caller can shrink its
  batches;
* :class:`sync.errors.ProtocolError` — the county refused, with its ``code``,
  ``reason`` and detail (e.g. ``send_from``) preserved;
* :class:`ServerFault` — the county (or something pretending to be it, such
  as a captive portal answering 200 with a web page) answered nonsense or kept
  failing with 5xx; :class:`CertificateError` (a ServerFault) when an https
  address presents a certificate that does not verify.

``bytes_sent`` / ``bytes_received`` count what crossed the wire (request line,
headers and bodies as sent; status line, headers and bodies as received).
"""

from __future__ import annotations

import email.utils
import json
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import requests

from schema.errors import UserError
from sync import api
from sync.envelope import MAGIC
from sync.errors import ProtocolError

USER_AGENT = "station-sync/1"
# A response larger than this is not something the county sends (pages are far smaller).
MAX_RESPONSE_BYTES = 64 * 1024 * 1024


class Offline(UserError):
    """The county could not be reached (or did not answer in time)."""

    code = "offline"

    def __init__(self, message: str, *, timeout: bool = False) -> None:
        super().__init__(message)
        self.timeout = timeout


class ServerFault(UserError):
    """The county answered, but not with something the protocol allows."""

    code = "server"

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class CertificateError(ServerFault):
    """An https county whose certificate does not check out (wrong CA, wrong name, expired …)."""

    code = "certificate"

    def __init__(self, url: str) -> None:
        super().__init__(
            f"无法与县中心 {url} 建立安全连接：证书校验失败（证书不是受信任的机构签发的、与地址不符或已过期）。"
            "没有发送任何数据。如果县中心使用自建证书，请向县中心索取证书文件，登记时指定"
            "（命令行 station enroll --ca-file）；否则可能有人冒充县中心，请联系县中心"
        )


def check_url(url: str) -> str:
    """Normalise a county URL (``http(s)://host[:port][/prefix]``); Chinese error if it is not one."""
    text = (url or "").strip()
    parts = urlsplit(text)
    try:
        parts.port  # noqa: B018 - raises for a port that is not a number in range
    except ValueError:
        parts = parts._replace(netloc="")
    if parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in text):
        raise UserError(f"县中心地址“{url}”不正确，应类似 https://county.example.cn 或 http://10.0.0.5:8000")
    return text.rstrip("/")


class Client:
    def __init__(
        self,
        base_url: str,
        *,
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
        retries: int = 3,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        max_retry_after: float = 120.0,
        verify: bool | str = True,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.base_url = check_url(base_url)
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_retry_after = max_retry_after
        self.verify = verify
        self.http = session or requests.Session()
        self.http.headers["User-Agent"] = USER_AGENT
        self._sleep = sleep
        self._rng = rng
        self.bytes_sent = 0
        self.bytes_received = 0
        self.requests = 0  # attempts that reached the network (retries included)
        self.waits: list[float] = []  # backoff waits taken, for tests and the sync log

    # -- the endpoints -------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        doc = self._json(self._request("GET", "/health"))
        if doc.get("status") != "ok" or "county" not in doc:
            raise ServerFault(self._not_county("状态"))
        return doc

    def time(self) -> dict[str, Any]:
        doc = self._json(self._request("GET", "/time"))
        if not isinstance(doc.get("ms"), int) or isinstance(doc.get("ms"), bool):
            raise ServerFault(self._not_county("时间"))
        return doc

    def enroll(self, request_wire: dict[str, str]) -> dict[str, Any]:
        body = json.dumps(request_wire, ensure_ascii=False).encode("utf-8")
        return self._json(self._request("POST", "/enroll", body=body, content_type="application/json"))

    def recovery_request(self, request_wire: dict[str, str]) -> dict[str, Any]:
        """Hand a signed recovery request to the county; ``{"id", "status": "pending", "check"}``."""
        body = json.dumps(request_wire, ensure_ascii=False).encode("utf-8")
        return self._json(self._request("POST", "/recovery", body=body, content_type="application/json"))

    def recovery_answer(self, request_id: str) -> dict[str, Any]:
        """``{"status": "pending" | "approved" | "refused", "answer": <signed answer>, "reason"}``."""
        doc = self._json(self._request("GET", f"/recovery/{request_id}"))
        if doc.get("status") not in ("pending", "approved", "refused"):
            raise ServerFault(self._not_county("恢复答复"))
        return doc

    def push(self, blob: bytes | Callable[[], bytes]) -> dict[str, Any]:
        """Send a sealed ``push`` envelope; return ``{"results": [...], ...}``.

        A 4xx that carries per-segment ``results`` (some segment refused) is an
        answer, not an error: it is returned like a 200 so the caller can keep
        the receipts of what was stored.
        """
        resp = self._request("POST", "/push", body=blob, content_type=api.OCTET, results_ok=True)
        doc = self._json(resp)
        if not isinstance(doc.get("results"), list):
            raise ServerFault(self._not_county("上传结果"))
        return doc

    def pull(self, blob: bytes | Callable[[], bytes]) -> bytes:
        """Send a sealed ``pull`` envelope; return the sealed answer (``page`` or ``return``)."""
        resp = self._request("POST", "/pull", body=blob, content_type=api.OCTET)
        data = resp.content
        if not data.startswith(MAGIC):
            raise ServerFault(self._not_county("下载数据"))
        return data

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the machinery ------------------------------------------------------------------------------

    def _not_county(self, what: str) -> str:
        return (
            f"县中心返回的{what}无法识别：{self.base_url} 可能不是县中心，或连接被网关、代理拦截。"
            "请核对县中心地址和网络设置"
        )

    def _json(self, resp: requests.Response) -> dict[str, Any]:
        try:
            doc = json.loads(resp.content)
        except ValueError:
            raise ServerFault(self._not_county("内容"), status=resp.status_code) from None
        if not isinstance(doc, dict):
            raise ServerFault(self._not_county("内容"), status=resp.status_code)
        return doc

    def _delay(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(max_backoff, backoff·2^attempt)]."""
        return self._rng() * min(self.max_backoff, self.backoff * (2**attempt))

    def _wait(self, seconds: float) -> None:
        self.waits.append(seconds)
        if seconds > 0:
            self._sleep(seconds)

    def _request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | Callable[[], bytes] | None = None,
        content_type: str | None = None,
        results_ok: bool = False,
    ) -> requests.Response:
        url = self.base_url + api.PREFIX + path
        headers = {"Content-Type": content_type} if content_type else {}
        failure: UserError | None = None
        for attempt in range(self.retries + 1):
            data = body() if callable(body) else body
            try:
                resp = self.http.request(
                    method,
                    url,
                    data=data,
                    headers=headers,
                    timeout=(self.connect_timeout, self.read_timeout),
                    verify=self.verify,
                    stream=True,
                    allow_redirects=False,
                )
                content = self._read(resp)
            except requests.exceptions.SSLError:
                # A certificate problem does not go away by trying again, and is not "offline":
                # someone answered, with a certificate we must not trust.
                raise CertificateError(self.base_url) from None
            except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as e:
                failure = self._offline(e)
                self.requests += 1
                self._count_request(method, url, headers, data)
                if attempt < self.retries:
                    self._wait(self._delay(attempt))
                    continue
                raise failure from None
            self.requests += 1
            self._count_request(method, url, resp.request.headers, data)
            self._count_response(resp, content)
            status = resp.status_code
            if 200 <= status < 300:
                return resp
            if status == 429 or status >= 500:
                failure = self._transient(resp)
                if attempt < self.retries:
                    wait = self._retry_after(resp)
                    if wait is None:
                        wait = self._delay(attempt)
                    if wait > self.max_retry_after:
                        raise failure
                    self._wait(wait)
                    continue
                raise failure
            if 300 <= status < 400:
                raise ServerFault(
                    f"县中心地址 {self.base_url} 被重定向到别处（HTTP {status}），请核对地址（注意 http 与 https）",
                    status=status,
                )
            # 4xx: the county refused. Never retried.
            doc = self._refusal_doc(resp)
            if results_ok and doc is not None and isinstance(doc.get("results"), list):
                return resp
            raise self._refusal(resp, doc)
        raise failure or ServerFault("县中心没有应答")  # pragma: no cover - loop always returns or raises

    def _read(self, resp: requests.Response) -> bytes:
        chunks, size = [], 0
        for chunk in resp.iter_content(64 * 1024):
            size += len(chunk)
            if size > MAX_RESPONSE_BYTES:
                resp.close()
                raise ServerFault(self._not_county("数据（过大）"), status=resp.status_code)
            chunks.append(chunk)
        content = b"".join(chunks)
        resp._content = content  # so resp.content works after streaming
        return content

    def _offline(self, e: Exception) -> Offline:
        timeout = isinstance(e, requests.exceptions.Timeout)
        text = str(e).lower()
        if isinstance(e, requests.exceptions.ConnectTimeout):
            why = "连接超时"
        elif timeout:
            why = "县中心在规定时间内没有应答（网络太慢或县中心繁忙）"
        elif "name or service not known" in text or "nodename nor servname" in text or "getaddrinfo" in text:
            why = "找不到服务器地址（域名无法解析）"
        elif "refused" in text:
            why = "连接被拒绝（县中心服务可能未启动）"
        elif "unreachable" in text:
            why = "网络不可达"
        else:
            why = "网络连接中断"
        return Offline(
            f"无法连接县中心（{self.base_url}）：{why}。请检查网络后重试；本机数据已保存，不会丢失",
            timeout=timeout,
        )

    def _transient(self, resp: requests.Response) -> UserError:
        doc = self._refusal_doc(resp)
        if resp.status_code == 429:
            reason = (doc or {}).get("reason") if isinstance((doc or {}).get("reason"), str) else None
            return ProtocolError("rate", reason or "县中心繁忙（请求过于频繁），请稍后再同步")
        return ServerFault(
            f"县中心暂时出错（HTTP {resp.status_code}），已多次重试仍未成功。请稍后再同步；本机数据已保存，不会丢失",
            status=resp.status_code,
        )

    def _retry_after(self, resp: requests.Response) -> float | None:
        value = resp.headers.get("Retry-After")
        if not value:
            return None
        value = value.strip()
        if value.isdigit():
            return float(value)
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return max(0.0, (when - datetime.now(UTC)).total_seconds())

    @staticmethod
    def _refusal_doc(resp: requests.Response) -> dict[str, Any] | None:
        try:
            doc = json.loads(resp.content)
        except ValueError:
            return None
        return doc if isinstance(doc, dict) else None

    def _refusal(self, resp: requests.Response, doc: dict[str, Any] | None) -> UserError:
        if doc is None or not isinstance(doc.get("error"), str):
            if resp.status_code == 404:
                return ServerFault(
                    f"{self.base_url} 上没有县中心服务（HTTP 404），请核对县中心地址", status=404
                )
            return ServerFault(
                f"县中心拒绝了请求（HTTP {resp.status_code}），但没有说明原因。请联系县中心",
                status=resp.status_code,
            )
        reason = doc.get("reason") if isinstance(doc.get("reason"), str) else ""
        detail = {k: v for k, v in doc.items() if k not in ("error", "reason", "code", "message")}
        return ProtocolError(doc["error"], reason or f"县中心拒绝了请求（{doc['error']}）", **detail)

    # -- byte accounting ----------------------------------------------------------------------------

    def _count_request(self, method: str, url: str, headers: Any, data: bytes | None) -> None:
        parts = urlsplit(url)
        line = len(method) + len(parts.path or "/") + len(" HTTP/1.1\r\n") + 1
        head = sum(len(str(k)) + len(str(v)) + 4 for k, v in dict(headers).items())
        self.bytes_sent += line + head + 2 + len(data or b"")

    def _count_response(self, resp: requests.Response, content: bytes) -> None:
        raw_headers = getattr(getattr(resp, "raw", None), "headers", None) or resp.headers
        head = sum(len(str(k)) + len(str(v)) + 4 for k, v in dict(raw_headers).items())
        wire_len = resp.headers.get("Content-Length")
        body = int(wire_len) if wire_len and wire_len.isdigit() else len(content)
        self.bytes_received += len("HTTP/1.1 200 OK\r\n") + head + 2 + body
