"""The telemetry endpoint as a small ASGI app: every request gets a status and a JSON reason, none is dropped.

The event loop only moves bytes; checking and storing a batch (JSON, pydantic, pandas, Parquet with fsync) runs
on a few worker threads, so a slow or stalled client costs a coroutine, not a thread.
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus
from typing import Any

from pipelines.core.errors import PipelineError
from pipelines.fleet.ingest import Ingestor
from pipelines.fleet.metrics import CONTENT_TYPE, ServerMetrics
from pipelines.fleet.schema import Refused

PATH = "/v1/telemetry"
DRAIN_LIMIT = 64 << 20  # a too-large body up to this size is read and dropped so the client hears the 413
MAX_HEADER_BYTES = 16 * 1024  # request target + headers; more is a 431 (h11 refuses them earlier when they trickle)
WORKERS = 2  # threads checking and storing batches; the work holds the GIL, more would only queue in memory
JSON = "application/json"
log = logging.getLogger(__name__)

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class Answer(Exception):
    """A finished answer: status, payload and whether the connection must close (its body was not read)."""

    def __init__(self, status: int, error: str, rejected: int = 0, close: bool = False):
        super().__init__(error)
        self.status, self.payload, self.close = status, {"error": error, "rejected": rejected}, close


class Gone(Exception):
    """The client disconnected: nobody is left to answer."""


def header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


class TelemetryApp:
    """POST /v1/telemetry, GET /healthz, GET /metrics."""

    def __init__(self, ingestor: Ingestor, metrics: ServerMetrics | None = None, workers: int = WORKERS):
        self.ingestor, self.config = ingestor, ingestor.config
        self.metrics = metrics or ServerMetrics()
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="telemetry-ingest")

    def close(self) -> None:
        self.pool.shutdown(wait=True)

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # the server runs without lifespan and websockets
        started, path, method = time.perf_counter(), scope.get("path", ""), scope.get("method", "")
        content_type, close = JSON, False
        try:
            status, payload = await self.route(method, path, scope, receive)
        except Answer as answer:
            status, payload, close = answer.status, answer.payload, answer.close
        except Gone:
            return
        except Exception:  # a bug, not the client's doing: still an answer, and the traceback in the server log
            log.exception("telemetry: %s %s failed", method, path)
            status, payload, close = 500, {"error": "internal error (the server log has the traceback)",
                                           "rejected": 0}, True
        if isinstance(payload, bytes):
            body, content_type = payload, CONTENT_TYPE
        else:
            body = _json(payload)
            if status >= 400 and "rejected" in payload:
                self.metrics.records.labels("rejected").inc(payload["rejected"])
        headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]
        if close:
            headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        self.metrics.answered(path, status)
        if path == PATH and method == "POST":
            self.metrics.batch_seconds.observe(time.perf_counter() - started)

    async def route(self, method: str, path: str, scope: dict[str, Any], receive: Receive) -> tuple[int, Any]:
        size = len(scope.get("raw_path") or b"") + sum(len(k) + len(v) + 4 for k, v in scope.get("headers", ()))
        if size > MAX_HEADER_BYTES:
            raise Answer(431, f"request headers are {size} bytes; at most {MAX_HEADER_BYTES}", close=True)
        allowed = {PATH: ("POST",), "/healthz": ("GET", "HEAD"), "/metrics": ("GET", "HEAD")}.get(path)
        if allowed is None or method not in allowed:
            await self.read(scope, receive, keep=0)  # an unexpected body is drained, so the answer is heard
            if allowed is None:
                raise Answer(404, f"not found: POST {PATH} (GET /healthz, GET /metrics)")
            raise Answer(405, f"{path} takes {' or '.join(allowed)}, not {method[:16]}")
        if path == "/healthz":
            return 200, {"status": "ok"}
        if path == "/metrics":
            return 200, self.metrics.exposition()
        body = await self.read(scope, receive, keep=self.config.max_body_bytes)
        loop = asyncio.get_running_loop()
        try:
            done = await loop.run_in_executor(self.pool, self.ingestor.accept, body, header(scope, b"x-signature"))
        except Refused as refused:
            raise Answer(refused.status, refused.message, refused.rejected) from None
        except PipelineError as exc:  # the store cannot be written (disk full, permissions): the app retries
            raise Answer(507, str(exc)) from None
        self.metrics.records.labels("accepted").inc(done.accepted)
        self.metrics.records.labels("quarantined").inc(done.quarantined)
        return 202, done.as_dict()

    async def read(self, scope: dict[str, Any], receive: Receive, keep: int) -> bytes:
        """The body (at most `keep` bytes) within fleet.read_timeout_s, or an Answer: 411, 413 or 408."""
        limit, timeout = self.config.max_body_bytes, self.config.read_timeout_s
        declared, chunked = header(scope, b"content-length"), "chunked" in (header(scope, b"transfer-encoding")
                                                                           or "").lower()
        text = (declared or "").strip()
        size = int(text) if text.isascii() and text.isdigit() else None  # "³".isdigit() holds, int() refuses it
        if keep and size is None and not chunked:
            raise Answer(411, "Content-Length required")
        if keep and size is not None and size > limit and (size > DRAIN_LIMIT or header(scope, b"expect")):
            raise Answer(413, f"body is {size} bytes; fleet.max_body_bytes is {limit}", close=True)  # not read
        parts: list[bytes] = []
        seen, deadline, more = 0, time.monotonic() + timeout, True
        while more:
            try:
                message = await asyncio.wait_for(receive(), max(deadline - time.monotonic(), 0))
            except TimeoutError:
                self.metrics.timeouts.inc()
                if keep and seen > limit:
                    raise Answer(413, f"body is over {seen} bytes; fleet.max_body_bytes is {limit}",
                                 close=True) from None
                raise Answer(408, f"body incomplete after {timeout:g} s ({seen} bytes received; "
                                  "fleet.read_timeout_s)", close=True) from None
            if message["type"] == "http.disconnect":
                raise Gone
            chunk, more = message.get("body", b""), message.get("more_body", False)
            seen += len(chunk)
            self.metrics.received_bytes.inc(len(chunk))
            if seen <= keep:
                parts.append(chunk)
            elif keep:
                parts.clear()  # too large: drained and dropped from here on
            if seen > DRAIN_LIMIT:
                raise Answer(413, f"body is over {DRAIN_LIMIT} bytes; fleet.max_body_bytes is {limit}", close=True)
        if keep and seen > limit:
            raise Answer(413, f"body is {seen} bytes; fleet.max_body_bytes is {limit}")
        return b"".join(parts)


def _json(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode()


def reason(status: int) -> str:
    return HTTPStatus(status).phrase
