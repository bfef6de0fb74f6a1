"""The shipped alerting rules on a real Prometheus scraping a real telemetry server: a burst of refused batches
fires TelemetryIngestionErrors, seen through Prometheus's HTTP API (windows and `for` shortened to seconds)."""
from __future__ import annotations

import shutil
import socket
import subprocess
import time
import urllib.parse
from pathlib import Path

import pytest

from cli import prometheus
from pipelines.core.config import FleetTelemetryConfig
from pipelines.fleet.server import make_server, post, serve_in_thread
from tests.fleet.test_ingest import KEY

pytestmark = [pytest.mark.services]


def free_port_in_range() -> int:
    """A free loopback port in 18900-18999 (the range this suite may use)."""
    for port in range(18900, 19000):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 18900-18999")


def alerts(port: int) -> dict[str, str]:
    return {a["labels"]["alertname"]: a["state"] for a in prometheus.api(port, "alerts")["alerts"]}


def wait_for(check, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"not true after {timeout} s: {check.__doc__}")


def test_the_shipped_rules_pass_promtool():
    if not shutil.which("promtool"):
        pytest.skip("promtool not installed (apt-get install prometheus)")
    done = subprocess.run(["promtool", "check", "rules", str(prometheus.RULES)], capture_output=True, text=True)
    assert done.returncode == 0 and "SUCCESS: 2 rules found" in done.stdout, done.stdout + done.stderr


def test_a_burst_of_refused_batches_fires_the_ingestion_alert(tmp_path: Path, monkeypatch):
    if not shutil.which("prometheus"):
        pytest.skip("the alert test needs prometheus (apt-get install prometheus)")
    config = FleetTelemetryConfig(read_timeout_s=1.0)
    monkeypatch.setenv(config.hmac_key_env, KEY.decode())
    server = make_server(tmp_path / "telemetry", config, port=free_port_in_range())
    serve_in_thread(server)
    host, tport = server.server_address[:2]
    # the shipped rules, with a 15 s window and no `for`, so a test sees them fire in seconds
    rules = tmp_path / "alerts.yml"
    rules.write_text(prometheus.RULES.read_text().replace("[5m]", "[15s]").replace("for: 10m", "for: 0s"))
    assert rules.read_text().count("[15s]") == 2 and "for: 0s" in rules.read_text()
    pport = free_port_in_range()
    process = prometheus.start(tmp_path / "prom", prometheus.write_config(tmp_path / "prom", f"{host}:{tport}",
                                                                          rules, "1s"), pport, tmp_path / "p.log")
    try:
        # one refused batch first: a series' first sample is its start, so rate() counts only what comes after it
        assert post(f"http://{host}:{tport}", b"{not json", KEY)[0] == 400
        query = 'telemetry_requests_total{route="/v1/telemetry",status="400"}'

        def scraped():
            """Prometheus scraped the telemetry server's refused-batch counter"""
            return prometheus.api(pport, f"query?query={urllib.parse.quote(query)}")["result"]
        wait_for(scraped)
        time.sleep(3)  # a few evaluations with no new errors: nothing fires
        assert alerts(pport).get("TelemetryIngestionErrors") is None
        for _ in range(40):
            status, answer = post(f"http://{host}:{tport}", b"{not json", KEY)
            assert status == 400, answer

        def firing():
            """TelemetryIngestionErrors is firing"""
            return alerts(pport).get("TelemetryIngestionErrors") == "firing"
        wait_for(firing)
        result = prometheus.api(pport, f"query?query={urllib.parse.quote(query)}")["result"]
        assert float(result[0]["value"][1]) == 41  # every refused batch counted once, as scraped
    finally:
        process.terminate()
        process.wait(30)
        server.shutdown()
        server.server_close()
