"""Property tests of the telemetry endpoint: random and adversarial bodies and headers, called in-process through
the ASGI app (each case costs microseconds to milliseconds), must get a 2xx or a 4xx with a JSON reason: never a
5xx, a traceback, no answer or a hang. A last property sends random bytes over a real socket to the full server.
Derandomized, so CI sees the same cases every run."""
from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.core.config import FleetTelemetryConfig
from pipelines.core.errors import PipelineError
from pipelines.fleet import store
from pipelines.fleet.app import TelemetryApp
from pipelines.fleet.ingest import Ingestor, signature
from pipelines.fleet.schema import MAX_INT
from tests.fleet.test_ingest import KEY, body, record

CONFIG = FleetTelemetryConfig(read_timeout_s=2.0)

def cases(n: int):  # a hypothesis settings decorator
    return settings(derandomize=True, database=None, deadline=None, max_examples=n,
                    suppress_health_check=list(HealthCheck))



class Endpoint:
    """The ASGI app on one event loop, called like uvicorn calls it, body in chunks."""

    def __init__(self, directory: Path):
        self.app = TelemetryApp(Ingestor(directory, CONFIG, KEY))
        self.loop = asyncio.new_event_loop()

    def call(self, method: str, path: str, headers: list[tuple[bytes, bytes]], chunks: list[bytes]) -> tuple[int, Any]:
        sent: list[dict] = []
        queue = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]
        queue = queue or [{"type": "http.request", "body": b"", "more_body": False}]

        async def receive() -> dict:
            return queue.pop(0) if queue else {"type": "http.disconnect"}

        async def send(message: dict) -> None:
            sent.append(message)

        scope = {"type": "http", "method": method, "path": path, "raw_path": path.encode("utf-8", "replace"),
                 "headers": headers, "query_string": b""}
        self.loop.run_until_complete(asyncio.wait_for(self.app(scope, receive, send), 10))  # a hang fails
        assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
        status = sent[0]["status"]
        content = sent[1]["body"]
        if dict(sent[0]["headers"])[b"content-type"] == b"application/json":
            return status, json.loads(content)
        return status, content

    def close(self) -> None:
        self.loop.close()
        self.app.close()


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory):
    made = Endpoint(tmp_path_factory.mktemp("properties") / "telemetry")
    yield made
    made.close()


def answered(status: int, answer: Any) -> None:
    assert status < 500, answer
    if status >= 400:
        assert isinstance(answer, dict) and isinstance(answer["error"], str) and answer["error"]
        assert "Traceback" not in answer["error"] and "\n" not in answer["error"]
        assert isinstance(answer["rejected"], int) and answer["rejected"] >= 0


def post(endpoint: Endpoint, data: bytes, sign: bool, extra: list[tuple[bytes, bytes]] | None = None,
         chunk: int = 1 << 20) -> tuple[int, Any]:
    headers = [(b"content-length", str(len(data)).encode())] + (extra or [])
    if sign:
        headers.append((b"x-signature", signature(KEY, data).encode()))
    return endpoint.call("POST", "/v1/telemetry", headers, [data[i:i + chunk] for i in range(0, len(data), chunk)])


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(10**40), max_value=10**40) | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12)
hostile_values = (st.integers(min_value=-(10**40), max_value=10**40)
                  | st.sampled_from([MAX_INT, MAX_INT + 1, -MAX_INT - 1, 10**30, 2**63, -(2**63) - 1])
                  | st.floats() | st.text(max_size=40) | st.none() | st.booleans()
                  | st.lists(st.integers(min_value=-(2**70), max_value=2**70), max_size=20)
                  | st.sampled_from(["9999-12-31", "0001-01-01", "2026-02-30", "", "\x00", "<script>", "[[[[", "1e999",
                                     "NaN", "\ud800"]))


@cases(700)
@given(data=st.binary(max_size=3000), sign=st.booleans(), chunk=st.integers(1, 4096))
def test_random_bytes_get_a_4xx_with_a_reason(endpoint: Endpoint, data: bytes, sign: bool, chunk: int):
    status, answer = post(endpoint, data, sign, chunk=chunk)
    answered(status, answer)
    assert status >= 400


@cases(300)
@given(payload=json_values, sign=st.booleans())
def test_random_json_gets_a_4xx_with_a_reason(endpoint: Endpoint, payload: Any, sign: bool):
    status, answer = post(endpoint, json.dumps(payload).encode(), sign)
    answered(status, answer)
    assert status >= 400


FIELDS = sorted(record(0))


@cases(400)
@given(changes=st.dictionaries(st.sampled_from(FIELDS + ["extra", "schema", "batch_id"]), hostile_values,
                               min_size=1, max_size=3),
       serial=st.integers(0, 10**9), day=st.dates().map(str))
def test_signed_batches_with_hostile_values_are_stored_or_refused_never_a_5xx(endpoint: Endpoint, changes: dict,
                                                                               serial: int, day: str):
    top = {k: changes.pop(k) for k in ("schema", "batch_id") if k in changes}
    rows = [record(serial, day=day) | changes, record(serial + 1)]
    payload = json.loads(body(rows, f"property-{serial}-{abs(hash(json.dumps(changes, default=str))) % 10**6}"))
    data = json.dumps(payload | top).encode("utf-8", "surrogatepass")
    status, answer = post(endpoint, data, True)
    answered(status, answer)
    if status == 202:  # what was accepted is in the store, exactly
        directory = endpoint.app.ingestor.directory
        files = directory.glob(f"day=*/{answer['batch_id']}.parquet")
        assert sum(len(pd.read_parquet(f)) for f in files) == answer["accepted"]
        assert store.seen(directory, answer["batch_id"])
    else:
        assert status in (400, 409, 413)


header_names = st.sampled_from([b"content-length", b"x-signature", b"transfer-encoding", b"expect", b"content-type",
                                b"x-other"]) | st.binary(min_size=1, max_size=20)


@cases(600)
@given(method=st.sampled_from(["GET", "POST", "PUT", "HEAD", "DELETE", "OPTIONS", "X" * 40]),
       path=st.sampled_from(["/v1/telemetry", "/healthz", "/metrics", "/", "/v1/telemetry/", "/%00"]) | st.text(),
       headers=st.lists(st.tuples(header_names, st.binary(max_size=40)), max_size=6),
       data=st.binary(max_size=200))
def test_random_methods_paths_and_headers_get_an_answer(endpoint: Endpoint, method: str, path: str, headers: list,
                                                        data: bytes):
    status, answer = endpoint.call(method, path, headers, [data])
    if status == 200 and isinstance(answer, bytes):
        assert answer.startswith(b"# HELP")  # /metrics
    else:
        answered(status, answer)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory):
    import os

    from pipelines.fleet.server import make_server, serve_in_thread

    os.environ.setdefault(CONFIG.hmac_key_env, KEY.decode())
    server = make_server(tmp_path_factory.mktemp("live") / "telemetry", FleetTelemetryConfig(read_timeout_s=2.0),
                         port=0)
    serve_in_thread(server)
    yield server.server_address
    server.shutdown()
    server.server_close()


@cases(60)
@given(head=st.sampled_from([b"POST /v1/telemetry HTTP/1.1\r\n", b"GET /healthz HTTP/1.1\r\n", b""]),
       noise=st.binary(max_size=300))
def test_random_bytes_on_the_wire_get_a_json_answer(live, head: bytes, noise: bytes):
    from tests.fleet.test_server import parse, read_all

    with socket.create_connection(live, timeout=10) as sock:
        sock.sendall(head + noise)
        sock.shutdown(socket.SHUT_WR)
        response = read_all(sock)
    if not head and not noise:
        assert response == b""  # nothing asked, nothing answered
        return
    status, answer = parse(response)
    if status != 200:
        answered(status, answer)


@pytest.mark.parametrize(("fault", "status", "error"), [
    (RuntimeError("a bug"), 500, "internal error (the server log has the traceback)"),
    (PipelineError("telemetry: no space left on device"), 507, "telemetry: no space left on device"),
])
def test_a_failure_inside_the_server_is_still_a_json_answer(tmp_path: Path, monkeypatch, caplog, fault, status, error):
    made = Endpoint(tmp_path / "telemetry")

    def fails(body: bytes, sent: str | None):
        raise fault

    monkeypatch.setattr(made.app.ingestor, "accept", fails)
    try:
        assert post(made, body([record(0)]), True) == (status, {"error": error, "rejected": 0})
    finally:
        made.close()
    assert (status == 500) == ("a bug" in caplog.text)  # the traceback goes to the log, not to the client
