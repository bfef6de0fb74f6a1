"""The telemetry server over real loopback sockets: every hostile request gets a status and a JSON reason."""
from __future__ import annotations

import datetime as dt
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipelines.core.config import FleetTelemetryConfig
from pipelines.core.errors import PipelineError
from pipelines.fleet import store
from pipelines.fleet.ingest import signature
from pipelines.fleet.server import TelemetryServer, make_server, post, serve_in_thread
from tests.fleet.test_ingest import KEY, body, record

FAST = FleetTelemetryConfig(read_timeout_s=1.0)


@pytest.fixture
def serve(tmp_path: Path, monkeypatch) -> Iterator:
    monkeypatch.setenv(FAST.hmac_key_env, KEY.decode())
    started: list[TelemetryServer] = []

    def start(config: FleetTelemetryConfig = FAST, first_day: dt.date | None = None) -> tuple[str, int]:
        server = make_server(tmp_path / "telemetry", config, port=0, first_day=first_day)
        serve_in_thread(server)
        started.append(server)
        return server.server_address

    yield start
    for server in started:
        server.shutdown()
        server.server_close()


def raw(address: tuple[str, int], data: bytes, half_close: bool = False, timeout: float = 10) -> tuple[int, dict]:
    """Send bytes as they are; (status, JSON answer) of the one response read back."""
    with socket.create_connection(address, timeout=timeout) as sock:
        sock.sendall(data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        return parse(read_all(sock))


def read_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def parse(response: bytes) -> tuple[int, dict]:
    head, _, content = response.partition(b"\r\n\r\n")
    assert b"content-type: application/json" in head.lower(), response[:300]
    return int(head.split()[1]), json.loads(content)


def request(data: bytes, headers: dict[str, str] | None = None, path: str = "/v1/telemetry") -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: t", f"Content-Length: {len(data)}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + data


def url(address: tuple[str, int]) -> str:
    return f"http://{address[0]}:{address[1]}"


def test_a_signed_count_of_10_to_the_30_is_a_400_naming_the_field(serve, tmp_path: Path):
    address = serve()
    status, answer = post(url(address), body([record(0), record(1, sessions=10**30)]), KEY)
    assert (status, answer) == (400, {"error": "records.1.sessions: Input should be less than or equal to "
                                               "9007199254740991 (1 of 2 records invalid)", "rejected": 2})
    status, answer = post(url(address), body([record(0, latency_hist=[10**30] + [0] * 15)]), KEY)
    assert status == 400 and answer["error"].startswith("records.0.latency_hist.0: Input should be less than")
    assert not (tmp_path / "telemetry").exists()


@pytest.mark.parametrize("signed", [True, False])
def test_100000_nested_brackets_are_a_4xx_not_a_recursion_error(serve, signed: bool):
    address = serve()
    status, answer = post(url(address), b"[" * 100_000, KEY if signed else None)
    if signed:
        assert (status, answer) == (400, {"error": "body nests 100000 levels deep; at most 8", "rejected": 0})
    else:
        assert (status, answer["rejected"]) == (401, 0)


def test_a_5_mb_body_is_refused_with_its_real_size(serve):
    address = serve()
    assert post(url(address), b"x" * 5_000_000, KEY) == (
        413, {"error": "body is 5000000 bytes; fleet.max_body_bytes is 1048576", "rejected": 0})
    chunked = b"POST /v1/telemetry HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n" + \
        b"".join(b"%x\r\n" % 500_000 + b"y" * 500_000 + b"\r\n" for _ in range(10)) + b"0\r\n\r\n"
    assert raw(address, chunked, half_close=True) == (
        413, {"error": "body is 5000000 bytes; fleet.max_body_bytes is 1048576", "rejected": 0})
    # announced with Expect: 100-continue, the body is refused before it is sent
    assert raw(address, request(b"", {"Expect": "100-continue"}).replace(b"Content-Length: 0",
                                                                         b"Content-Length: 5000000")) == (
        413, {"error": "body is 5000000 bytes; fleet.max_body_bytes is 1048576", "rejected": 0})


def test_a_body_that_never_finishes_gets_a_408(serve):
    address = serve()
    started = time.monotonic()
    status, answer = raw(address, request(b"x" * 1000)[:-990])
    assert (status, answer) == (408, {"error": "body incomplete after 1 s (10 bytes received; "
                                               "fleet.read_timeout_s)", "rejected": 0})
    assert 0.9 < time.monotonic() - started < 5


def test_headers_that_never_finish_get_a_408_and_so_does_a_drip(serve):
    address = serve()
    assert raw(address, b"POST /v1/telemetry HTTP/1.1\r\nHost: t\r\n") == (
        408, {"error": "request headers incomplete after 1 s (fleet.read_timeout_s)", "rejected": 0})
    with socket.create_connection(address, timeout=10) as sock:  # one header byte every 0.2 s: still 1 s in all
        started = time.monotonic()
        try:
            for byte in b"POST /v1/telemetry HTTP/1.1\r\nX-Slow: " + b"a" * 100:
                sock.sendall(bytes([byte]))
                time.sleep(0.2)
        except OSError:
            pass  # the server answered and shut its side
        assert parse(read_all(sock))[0] == 408 and time.monotonic() - started < 4


def test_300_stalled_connections_hold_no_thread_and_a_good_batch_still_goes_through(serve, tmp_path: Path):
    address = serve(FleetTelemetryConfig(read_timeout_s=30.0))
    threads = threading.active_count()
    stalled = [socket.create_connection(address) for _ in range(300)]
    try:
        for sock in stalled:
            sock.sendall(request(b"{" * 10)[:-5])  # headers done, 5 of 10 body bytes
        time.sleep(0.5)
        assert threading.active_count() == threads  # no thread per connection
        status, answer = post(url(address), body([record(i) for i in range(3)]), KEY)
        assert (status, answer["accepted"]) == (202, 3)
    finally:
        for sock in stalled:
            sock.close()
    assert len(store.read_days(tmp_path / "telemetry")) == 3


def test_connections_over_the_cap_are_answered_503_at_once(serve):
    address = serve(FleetTelemetryConfig(read_timeout_s=30.0, max_connections=20))
    held = [socket.create_connection(address) for _ in range(20)]
    try:
        time.sleep(0.3)
        started = time.monotonic()
        assert raw(address, request(b"{}")) == (
            503, {"error": "20 connections are open (fleet.max_connections); retry later", "rejected": 0})
        assert time.monotonic() - started < 3
    finally:
        for sock in held:
            sock.close()
    time.sleep(0.3)
    assert raw(address, b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n") == (200, {"status": "ok"})


def test_days_outside_the_window_are_refused_and_open_no_partition(serve, tmp_path: Path):
    address = serve(first_day=dt.date(2026, 1, 1))
    tomorrow = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)
    later = tomorrow + dt.timedelta(days=1)
    status, answer = post(url(address), body([record(0, day="9999-12-31")]), KEY)
    assert (status, answer) == (400, {"error": f"records.0.day: Value error, 9999-12-31 is after tomorrow "
                                               f"({tomorrow}, UTC) (1 of 1 records invalid)", "rejected": 1})
    status, answer = post(url(address), body([record(0, day=str(later))]), KEY)
    assert status == 400 and "is after tomorrow" in answer["error"]
    status, answer = post(url(address), body([record(0, day="2025-12-31")], "batch-early"), KEY)
    assert (status, answer) == (400, {"error": "records.0.day: Value error, 2025-12-31 is before the model's first "
                                               "release (2026-01-01; fleet.first_day) (1 of 1 records invalid)",
                                      "rejected": 1})
    assert not (tmp_path / "telemetry").exists()
    status, _ = post(url(address), body([record(0, day=str(tomorrow)), record(1, day="2026-01-01")], "ok-days-1"), KEY)
    assert status == 202 and store.days(tmp_path / "telemetry") == ["2026-01-01", str(tomorrow)]


def test_the_first_day_is_the_first_release_unless_set(tmp_path: Path):
    from pipelines.core.config import load_settings
    from pipelines.fleet.steps import first_day

    root = Path(__file__).resolve().parents[2]
    where = {"release.directory": str(tmp_path / "releases"), "release.allow_outside_project": True}
    settings = load_settings(root / "params.yaml", where)
    assert first_day(settings) is None
    for number, created in (("2", "2026-05-02T10:00:00+00:00"), ("1", "2026-04-30T23:59:59+00:00")):
        folder = tmp_path / "releases" / settings.params.release.model_name / number
        folder.mkdir(parents=True)
        (folder / "manifest.json").write_text(json.dumps({"created_at": created}))
    assert first_day(settings) == dt.date(2026, 4, 30)
    overridden = load_settings(root / "params.yaml", {**where, "fleet.first_day": "2026-01-15"})
    assert first_day(overridden) == dt.date(2026, 1, 15)


@pytest.mark.parametrize(("data", "status", "error"), [
    (b"NONSENSE\r\n\r\n", 400, "invalid HTTP request"),
    (b"POST /v1/telemetry HTTP/1.1\r\nHost: t\r\nContent-Length: abc\r\n\r\n", 400, "invalid HTTP request"),
    (b"GET / HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n", 431, "request headers are 20019 bytes; "
     "at most 16384"),
    (b"POST /v1/telemetry HTTP/1.1\r\nHost: t\r\n\r\n", 411, "Content-Length required"),
    (b"GET /v1/telemetry HTTP/1.1\r\nHost: t\r\n\r\n", 405, "/v1/telemetry takes POST, not GET"),
    (b"POST /elsewhere HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc", 404, "not found: POST /v1/telemetry"),
    (b"POST /v1/telemetry HTTP/1.1\r\nHost: t\r\nContent-Len", 400, "request incomplete"),
])
def test_protocol_errors_get_a_json_answer(serve, data: bytes, status: int, error: str):
    address = serve()
    got_status, answer = raw(address, data, half_close=True)
    assert got_status == status and answer["error"].startswith(error) and answer["rejected"] == 0


def test_a_kept_alive_connection_serves_several_batches(serve, tmp_path: Path):
    address = serve()
    with socket.create_connection(address, timeout=10) as sock:
        for n in range(3):
            data = body([record(n)], f"keep-alive-{n}")
            sock.sendall(request(data, {"X-Signature": signature(KEY, data)}))
            got = b""
            while b"\r\n\r\n" not in got or not got.endswith(b"}"):
                got += sock.recv(65536)
            assert parse(got) == (202, {"batch_id": f"keep-alive-{n}", "accepted": 1, "quarantined": 0,
                                        "quarantine_reasons": {}, "rejected": 0})
    assert len(store.read_days(tmp_path / "telemetry")) == 3


def test_a_port_in_use_is_one_line(serve, tmp_path: Path):
    _host, port = serve()
    with pytest.raises(PipelineError) as error:
        make_server(tmp_path / "other", FAST, port=port)
    assert str(error.value) == (f"fleet.port: 127.0.0.1:{port} is already in use (another server?); stop it, or "
                                "pass --port / set fleet.port")
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-m", "cli.main", "telemetry", "serve", "--port", str(port), "--params",
                           str(root / "params.yaml"), "--set", f"fleet.directory={tmp_path / 'cli'}"],
                          capture_output=True, text=True, timeout=120, cwd=root,
                          env={**__import__("os").environ, FAST.hmac_key_env: KEY.decode()})
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].endswith(str(error.value))


def scrape(address: tuple[str, int]) -> dict[tuple[str, tuple], float]:
    """GET /metrics parsed by prometheus-client's own parser: {(sample name, sorted labels): value}."""
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(url(address) + "/metrics", timeout=10) as response:
        assert response.headers["Content-Type"].startswith("text/plain; version=")
        text = response.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_metrics_count_requests_records_bytes_and_latency(serve):
    address = serve()
    good = body([record(0), record(1), record(2, crashes=9)], "metrics-good")  # one quarantined
    unsigned = body([record(3), record(4)], "metrics-unsigned")
    assert post(url(address), good, KEY)[0] == 202
    assert post(url(address), unsigned, None)[0] == 401
    assert post(url(address), b"[" * 1000, KEY)[0] == 400
    assert raw(address, b"NONSENSE\r\n\r\n")[0] == 400
    got = scrape(address)
    assert got[("telemetry_requests_total", (("route", "/v1/telemetry"), ("status", "202")))] == 1
    assert got[("telemetry_requests_total", (("route", "/v1/telemetry"), ("status", "401")))] == 1
    assert got[("telemetry_requests_total", (("route", "/v1/telemetry"), ("status", "400")))] == 1
    assert got[("telemetry_requests_total", (("route", "other"), ("status", "400")))] == 1
    assert got[("telemetry_records_total", (("outcome", "accepted"),))] == 2
    assert got[("telemetry_records_total", (("outcome", "quarantined"),))] == 1
    assert got[("telemetry_records_total", (("outcome", "rejected"),))] == 2
    assert got[("telemetry_received_bytes_total", ())] == len(good) + len(unsigned) + 1000
    assert got[("telemetry_batch_seconds_count", ())] == 3
    assert 0 < got[("telemetry_batch_seconds_sum", ())] < 30
    assert got[("telemetry_batch_seconds_bucket", (("le", "+Inf"),))] == 3
    assert got[("telemetry_open_connections", ())] >= 1  # the scrape's own
    again = scrape(address)
    assert again[("telemetry_requests_total", (("route", "/metrics"), ("status", "200")))] == 1
