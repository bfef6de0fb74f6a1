"""The shipped alerting rules on a real Prometheus scraping a real telemetry server and the pipeline exporter: a
burst of refused batches fires TelemetryIngestionErrors (seen through Prometheus's HTTP API, and delivered by a real
Alertmanager to a webhook receiver on loopback), an over-budget observed figure fires FinopsOverBudget at the
receiver; windows and `for` shortened to seconds. promtool checks and unit-tests the rules."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from cli import alertmanager, exporter, prometheus
from cli.services import first_free
from pipelines.core.config import FleetTelemetryConfig, load_settings
from pipelines.fleet.server import make_server, post, serve_in_thread
from tests.cli.test_observability_stack import over_budget_report
from tests.fleet.test_ingest import KEY

pytestmark = [pytest.mark.services]
UNIT_TESTS = Path(__file__).with_name("alerts_test.yml")
PORTS = range(19100, 19200)  # the loopback ports this suite may use


def free_port_in_range() -> int:
    """A free loopback port in 19100-19199 (the range this suite may use)."""
    port = first_free(PORTS)
    if port is None:
        raise RuntimeError("no free port in 19100-19199")
    return port


def fast_rules(folder: Path) -> Path:
    """The shipped rules with 15 s windows and no `for`, so a test sees them fire in seconds."""
    text = re.sub(r"for: \d+m", "for: 0s", prometheus.RULES.read_text().replace("[5m]", "[15s]"))
    assert text.count("[15s]") == 2 and "for: 0s" in text and not re.search(r"for: \d+m", text)
    rules = folder / "alerts.yml"
    rules.write_text(text)
    return rules


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
    assert done.returncode == 0 and "SUCCESS: 5 rules found" in done.stdout, done.stdout + done.stderr


def test_the_rules_unit_tests_pass_and_a_wrong_expectation_fails(tmp_path):
    if not shutil.which("promtool"):
        pytest.skip("promtool not installed (apt-get install prometheus)")
    done = subprocess.run(["promtool", "test", "rules", str(UNIT_TESTS)], capture_output=True, text=True)
    assert done.returncode == 0 and "SUCCESS" in done.stdout, done.stdout + done.stderr
    # the same tests expecting the budget alert one evaluation early: promtool must refuse them
    wrong = tmp_path / "alerts_test.yml"
    wrong.write_text(UNIT_TESTS.read_text().replace("../../deploy/services/prometheus/alerts.yml", str(prometheus.RULES))
                     .replace("- eval_time: 6m", "- eval_time: 4m30s", 1))
    failed = subprocess.run(["promtool", "test", "rules", str(wrong)], capture_output=True, text=True)
    assert failed.returncode != 0 and "FinopsOverBudget" in failed.stdout + failed.stderr


def test_a_burst_of_refused_batches_fires_the_ingestion_alert(tmp_path: Path, monkeypatch):
    if not shutil.which("prometheus"):
        pytest.skip("the alert test needs prometheus (apt-get install prometheus)")
    config = FleetTelemetryConfig(read_timeout_s=1.0)
    monkeypatch.setenv(config.hmac_key_env, KEY.decode())
    server = make_server(tmp_path / "telemetry", config, port=free_port_in_range())
    serve_in_thread(server)
    host, tport = server.server_address[:2]
    rules = fast_rules(tmp_path)
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


class Receiver(ThreadingHTTPServer):
    """A webhook receiver on loopback: every POSTed JSON body, in order."""

    def __init__(self, port: int):
        self.bodies: list[dict] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(handler):  # the handler's self; the server is `self`
                length = int(handler.headers.get("Content-Length", 0))
                self.bodies.append(json.loads(handler.rfile.read(length)))
                handler.send_response(200)
                handler.end_headers()

            def log_message(handler, *args):
                pass

        super().__init__(("127.0.0.1", port), Handler)


@pytest.fixture(scope="module")
def alerting(tmp_path_factory):
    """A telemetry server, the pipeline exporter over an over-budget report, Alertmanager routing to a webhook
    receiver, and Prometheus (1 s scrapes and evaluations, the fast rules) in front of them; yields
    (telemetry URL, Prometheus port, receiver)."""
    missing = [name for name in ("prometheus", "promtool") if not shutil.which(name)]
    if missing or not any(shutil.which(name) for name in alertmanager.NAMES):
        pytest.skip("the alerting tests need prometheus and prometheus-alertmanager (apt-get install prometheus "
                    "prometheus-alertmanager)")
    folder = tmp_path_factory.mktemp("alerting")
    monkeypatch = pytest.MonkeyPatch()
    config = FleetTelemetryConfig(read_timeout_s=1.0)
    monkeypatch.setenv(config.hmac_key_env, KEY.decode())
    telemetry = make_server(folder / "telemetry", config, port=free_port_in_range())
    serve_in_thread(telemetry)
    from prometheus_client import start_http_server

    metrics, metrics_thread = start_http_server(free_port_in_range(), "127.0.0.1",
                                                exporter.registry(load_settings(over_budget_report(folder))))
    receiver = Receiver(free_port_in_range())
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    aport = free_port_in_range()
    hook = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
    am = alertmanager.start(folder / "am", alertmanager.write_config(folder / "am", hook, "1s", "1s", "1m"), aport,
                            folder / "am.log")
    pport = free_port_in_range()
    host, tport = telemetry.server_address[:2]
    targets = {"telemetry": f"{host}:{tport}", "pipeline": f"127.0.0.1:{metrics.server_port}"}
    prom = prometheus.start(folder / "prom", prometheus.write_config(folder / "prom", targets, fast_rules(folder), "1s",
                                                                     f"127.0.0.1:{aport}"), pport, folder / "p.log")
    try:
        yield f"http://{host}:{tport}", pport, receiver
    finally:
        for process in (prom, am):
            process.terminate()
            process.wait(30)
        receiver.shutdown()
        receiver.server_close()
        metrics.shutdown()
        metrics_thread.join(10)
        telemetry.shutdown()
        telemetry.server_close()
        monkeypatch.undo()


def delivered(receiver: Receiver, alertname: str) -> list[dict]:
    """The firing alerts named `alertname` in every payload the receiver got from Alertmanager."""
    return [alert for body in receiver.bodies for alert in body.get("alerts", [])
            if alert["labels"].get("alertname") == alertname and alert["status"] == "firing"]


def test_an_ingestion_error_burst_reaches_the_webhook_through_alertmanager(alerting):
    url, pport, receiver = alerting
    assert post(url, b"{not json", KEY)[0] == 400  # the series' first sample (rate() counts what comes after it)

    def scraped():
        """Prometheus scraped the refused-batch counter"""
        query = 'telemetry_requests_total{route="/v1/telemetry",status="400"}'
        return prometheus.api(pport, f"query?query={urllib.parse.quote(query)}")["result"]
    wait_for(scraped)
    assert not delivered(receiver, "TelemetryIngestionErrors")
    for _ in range(40):
        assert post(url, b"{not json", KEY)[0] == 400

    def arrived():
        """Alertmanager POSTed TelemetryIngestionErrors to the webhook"""
        return delivered(receiver, "TelemetryIngestionErrors")
    alert = wait_for(arrived, 90)[0]
    assert alert["labels"]["severity"] == "warning"
    assert alert["annotations"]["summary"].startswith("telemetry ingestion errors: ")
    body = next(b for b in receiver.bodies if alert in b["alerts"])
    assert body["receiver"] == "webhook" and body["version"] == "4"


def test_an_over_budget_figure_fires_the_budget_alert_at_the_webhook(alerting):
    _, _, receiver = alerting

    def arrived():
        """Alertmanager POSTed FinopsOverBudget to the webhook"""
        return delivered(receiver, "FinopsOverBudget")
    alerts = wait_for(arrived, 90)
    assert {(a["labels"]["budget"], a["labels"]["month"]) for a in alerts} == {("max_monthly_usd", "2026-11")}
    assert alerts[0]["annotations"]["summary"] == ("observed max_monthly_usd for 2026-11 is 912.5, over its "
                                                   "gates.budgets limit")
    assert not delivered(receiver, "NightlyRunStalled")  # the exporter just started: nothing is overdue
