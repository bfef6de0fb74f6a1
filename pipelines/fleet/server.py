"""`mobile-mlops telemetry serve`: the HTTP endpoint apps post telemetry batches to (uvicorn, loopback default).

POST /v1/telemetry with the batch as JSON and X-Signature: hex HMAC-SHA256 of the body under the key in the
environment variable fleet.hmac_key_env. 202 with counts when accepted; 4xx with {"error", "rejected"} when
refused (400 malformed, 401 signature, 408 too slow, 409 replayed batch id, 411 no length, 413 too large, 503
too many connections). GET /healthz answers 200, GET /metrics the Prometheus metrics.

uvicorn's h11 protocol is extended here with what it leaves to a proxy: a deadline for the request headers
(fleet.read_timeout_s, also across keep-alive requests), a cap on open connections (fleet.max_connections) and
JSON for the answers the protocol gives itself (invalid HTTP, the cap, the deadline). Those answers close the
connection gracefully: the answer is written, our side shut, the client's remaining bytes read and dropped for
a moment, so the client reads the answer instead of a reset.
"""
from __future__ import annotations

import datetime as dt
import errno
import json
import os
import socket
import threading
from pathlib import Path
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from pipelines.core.config import FleetTelemetryConfig
from pipelines.core.errors import PipelineError
from pipelines.fleet.app import MAX_HEADER_BYTES, PATH, TelemetryApp, reason
from pipelines.fleet.ingest import Ingestor
from pipelines.fleet.metrics import ServerMetrics

__all__ = ["PATH", "TelemetryServer", "hmac_key", "make_server", "post", "serve_in_thread"]
LINGER_S = 1.0  # after a protocol-level answer, the client's unread bytes are dropped this long before closing
KEEP_ALIVE_S = 5  # an idle keep-alive connection closes after this many seconds (uvicorn's default)


def hmac_key(config: FleetTelemetryConfig) -> bytes:
    key = os.environ.get(config.hmac_key_env, "")
    if len(key) < 16:
        raise PipelineError(f"fleet.hmac_key_env: environment variable {config.hmac_key_env} must hold a key of "
                            "at least 16 characters")
    return key.encode()


def protocol(config: FleetTelemetryConfig, metrics: ServerMetrics) -> type[H11Protocol]:
    """uvicorn's h11 protocol with a header deadline, a connection cap and JSON protocol-level answers."""
    timeout, cap = config.read_timeout_s, config.max_connections

    class Protocol(H11Protocol):
        _timer: Any = None
        _closing = False
        _eof = False

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            metrics.connections.inc()
            if len(self.connections) > cap:
                metrics.refused_connections.inc()
                self._answer(503, f"{cap} connections are open (fleet.max_connections); retry later")
            else:
                self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            metrics.connections.dec()
            self._disarm()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self._closing:
                return  # answered already: the bytes are dropped until the connection closes
            super().data_received(data)
            if self.conn.their_state is not h11.IDLE:
                self._disarm()  # the headers are in: the app's body deadline takes over

        def eof_received(self) -> bool | None:  # type: ignore[override]  # asyncio's Protocol returns bool | None
            """The client shut its side: a request in progress is still answered (uvicorn would close at once)."""
            if self._closing:
                return True
            if self.conn.their_state is h11.DONE:
                self._eof = True
                return True  # the request is complete: its answer comes, then the connection closes
            if self.conn.trailing_data[0]:
                self._answer(400, "request incomplete: the client closed its side before the end of the headers")
                return True
            return super().eof_received()

        def on_response_complete(self) -> None:
            if self._eof:
                self.transport.close()
                return
            self._arm()  # the next request's headers have the same deadline (kept-alive connections too)
            super().on_response_complete()
            if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
                self._disarm()

        def send_400_response(self, msg: str) -> None:
            self._answer(400, f"invalid HTTP request ({msg.rstrip('.')})")

        def shutdown(self) -> None:
            if self._closing:
                self.transport.close()
            else:
                super().shutdown()

        def _arm(self) -> None:
            self._disarm()
            self._timer = self.loop.call_later(timeout, self._too_slow)

        def _disarm(self) -> None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

        def _too_slow(self) -> None:
            self._timer = None
            if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
                return
            if not self.conn.trailing_data[0]:
                self.transport.close()  # idle, no request begun: nothing to answer
                return
            metrics.timeouts.inc()
            self._answer(408, f"request headers incomplete after {timeout:g} s (fleet.read_timeout_s)")

        def _answer(self, status: int, error: str) -> None:
            body = json.dumps({"error": error, "rejected": 0}).encode()
            head = (f"HTTP/1.1 {status} {reason(status)}\r\ncontent-type: application/json\r\n"
                    f"content-length: {len(body)}\r\nconnection: close\r\n\r\n").encode()
            self._closing = True
            self._disarm()
            self.transport.write(head + body)
            metrics.answered("", status)
            if self.transport.can_write_eof():
                self.transport.write_eof()
            self.loop.call_later(LINGER_S, self.transport.close)

    return Protocol


class TelemetryServer:
    """A bound uvicorn server with the stdlib server's handles: serve_forever, shutdown, server_close."""

    def __init__(self, app: TelemetryApp, sock: socket.socket, config: FleetTelemetryConfig):
        self.app, self.socket = app, sock
        self.server_address: tuple[str, int] = sock.getsockname()[:2]
        self._server = uvicorn.Server(uvicorn.Config(
            app, http=protocol(config, app.metrics), loop="asyncio", lifespan="off", ws="none", log_config=None,
            log_level="warning", access_log=False, server_header=False, timeout_keep_alive=KEEP_ALIVE_S,
            h11_max_incomplete_event_size=MAX_HEADER_BYTES, backlog=max(config.max_connections, 128),
            timeout_graceful_shutdown=int(config.read_timeout_s * 2 + LINGER_S + 1)))
        self._stopped = threading.Event()

    def serve_forever(self) -> None:
        try:
            self._server.run(sockets=[self.socket])
        finally:
            self._stopped.set()

    def shutdown(self) -> None:
        """Stop accepting, finish the requests in flight (bounded by the read timeout), return when stopped."""
        self._server.should_exit = True
        self._stopped.wait()

    def server_close(self) -> None:
        self.socket.close()
        self.app.close()


def listen(host: str, port: int, backlog: int) -> socket.socket:
    """A listening socket, or one line naming the address when it is taken or not ours to use."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=backlog)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise PipelineError(f"fleet.port: {host}:{port} is already in use (another server?); stop it, or pass "
                                "--port / set fleet.port") from None
        raise PipelineError(f"fleet.host: cannot listen on {host}:{port} ({exc.strerror or exc})") from None


def make_server(directory: Path, config: FleetTelemetryConfig, host: str | None = None, port: int | None = None,
                first_day: dt.date | None = None) -> TelemetryServer:
    """A bound (not yet serving) server that stores accepted batches under `directory`."""
    ingestor = Ingestor(directory, config, hmac_key(config), first_day)
    sock = listen(host or config.host, config.port if port is None else port, max(config.max_connections, 128))
    return TelemetryServer(TelemetryApp(ingestor), sock, config)


def serve_in_thread(server: TelemetryServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, daemon=True, name="telemetry-server")
    thread.start()
    return thread


def post(url: str, body: bytes, key: bytes | None, timeout: float = 30) -> tuple[int, dict]:
    """Post one batch like an app: (status, JSON answer)."""
    import urllib.error
    import urllib.request

    from pipelines.fleet.ingest import signature

    request = urllib.request.Request(url.rstrip("/") + PATH, data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    if key is not None:
        request.add_header("X-Signature", signature(key, body))
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")
    except (urllib.error.URLError, OSError) as exc:
        raise PipelineError(f"{url}: cannot post telemetry ({exc})") from None
