"""`mobile-mlops telemetry serve`: the HTTP endpoint apps post telemetry batches to (stdlib, loopback default).

POST /v1/telemetry with the batch as JSON and X-Signature: hex HMAC-SHA256 of the body under the key in the
environment variable fleet.hmac_key_env. 202 with counts when accepted; 4xx with {"error", "rejected"} when
refused (401 signature, 400 malformed, 409 replayed batch id, 413 too large). GET /healthz answers 200.
"""
from __future__ import annotations

import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from pipelines.core.config import FleetTelemetryConfig
from pipelines.core.errors import PipelineError
from pipelines.fleet.ingest import Ingestor
from pipelines.fleet.schema import Refused

PATH = "/v1/telemetry"
DRAIN_LIMIT = 64 << 20  # larger bodies are not even drained: the connection closes
READ_LIMIT = 4  # bodies up to this many times max_body_bytes are read to count their records, larger ones not


def hmac_key(config: FleetTelemetryConfig) -> bytes:
    key = os.environ.get(config.hmac_key_env, "")
    if len(key) < 16:
        raise PipelineError(f"fleet.hmac_key_env: environment variable {config.hmac_key_env} must hold a key of "
                            "at least 16 characters")
    return key.encode()


def make_server(directory: Path, config: FleetTelemetryConfig, host: str | None = None,
                port: int | None = None) -> ThreadingHTTPServer:
    """A bound (not yet serving) server that stores accepted batches under `directory`."""
    ingestor = Ingestor(directory, config, hmac_key(config))

    class Handler(BaseHTTPRequestHandler):
        server_version = "mobile-mlops-telemetry/1"

        def _reply(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            self._reply(200, {"status": "ok"} if self.path == "/healthz" else {"error": "not found"})

        def do_POST(self) -> None:  # noqa: N802
            if self.path != PATH:
                self._reply(404, {"error": f"POST {PATH}", "rejected": 0})
                return
            try:
                length = int(self.headers.get("Content-Length") or -1)
            except ValueError:
                length = -1
            if length < 0:
                self._reply(411, {"error": "Content-Length required", "rejected": 0})
                return
            if length > config.max_body_bytes * READ_LIMIT:
                self.close_connection = True
                if length <= DRAIN_LIMIT:  # read and drop it, so the client hears the answer, not a reset
                    while length > 0:
                        length -= len(self.rfile.read(min(length, 1 << 16)) or b"\0" * length)
                self._reply(413, {"error": f"body is {length} bytes; fleet.max_body_bytes is "
                                           f"{config.max_body_bytes}", "rejected": 0})
                return
            body = self.rfile.read(length)
            try:
                done = ingestor.accept(body, self.headers.get("X-Signature"))
            except Refused as refused:
                self._reply(refused.status, {"error": refused.message, "rejected": refused.rejected})
                return
            except PipelineError as exc:
                self._reply(507, {"error": str(exc), "rejected": 0})
                return
            self._reply(202, done.as_dict())

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    return ThreadingHTTPServer((host or config.host, config.port if port is None else port), Handler)


def serve_in_thread(server: ThreadingHTTPServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
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
