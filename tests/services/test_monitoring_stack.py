"""`services up` starts the monitoring too: Prometheus scrapes the telemetry server and the pipeline exporter and
sends to Alertmanager, whose route is fleet.webhook_url; every server's log is JSON lines; `down` stops them all."""
from __future__ import annotations

import json
import shutil
import stat
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from cli import monitoring, prometheus, services
from tests.services.test_alerts import wait_for

pytestmark = [pytest.mark.services, pytest.mark.slow]


def test_down_stops_the_monitoring_too():
    """A stack of its own (first, before the module's stack starts): `up` on two chosen ports, then `down`;
    nothing answers on the monitoring ports afterwards."""
    from tests.conftest import write_small_project
    from tests.services.conftest import needs

    if not all(needs().values()):
        pytest.skip("the services suite needs redis-server, postgresql, prometheus and prometheus-alertmanager")
    project = Path(tempfile.mkdtemp(prefix="mobile-mlops-services-"))  # not pytest's 0700 tmp (see conftest)
    write_small_project(project)
    started = services.up(project / ".services", project / "params.yaml", workers=1,
                          ports=services.parse_ports(["prometheus=19190", "alertmanager=19191"]))
    try:
        assert started.ports["prometheus"] == 19190 and started.ports["alertmanager"] == 19191
        with urllib.request.urlopen("http://127.0.0.1:19190/-/ready", timeout=10):
            pass
    finally:
        services.down(started.folder)
    time.sleep(1)
    for name in monitoring.NAMES:
        with pytest.raises(OSError):
            urllib.request.urlopen(f"{started.url(name)}/", timeout=5)
    assert not (started.folder / "stack.json").exists()
    shutil.rmtree(project, ignore_errors=True)


def test_prometheus_scrapes_the_telemetry_server_and_the_exporter(stack):
    _, started = stack
    port = started.ports["prometheus"]

    def healthy():
        """Prometheus reports both targets up"""
        targets = prometheus.api(port, "targets")["activeTargets"]
        return {t["labels"]["job"]: t["health"] for t in targets} == {"telemetry": "up", "pipeline": "up"}
    wait_for(healthy, 60)
    managers = prometheus.api(port, "alertmanagers")["activeAlertmanagers"]
    assert [m["url"] for m in managers] == [f"{started.url('alertmanager')}/api/v2/alerts"]
    rules = {r["name"] for g in prometheus.api(port, "rules")["groups"] for r in g["rules"]}
    assert {"TelemetryIngestionErrors", "FinopsOverBudget", "NightlyRunStalled"} <= rules
    with urllib.request.urlopen(f"{started.url('telemetry')}/metrics", timeout=10) as answer:
        assert b"telemetry_requests_total" in answer.read()
    with urllib.request.urlopen(f"{started.url('alertmanager')}/api/v2/status", timeout=10) as answer:
        assert "receiver: webhook" in json.loads(answer.read())["config"]["original"]


def test_the_telemetry_key_is_kept_private_in_the_stack_folder(stack, monkeypatch):
    _, started = stack
    key = started.folder / monitoring.KEY_FILE
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and len(key.read_text().strip()) == 64
    monkeypatch.delenv("MOBILE_MLOPS_TELEMETRY_KEY", raising=False)
    assert monitoring.telemetry_key(started.folder, "MOBILE_MLOPS_TELEMETRY_KEY") == key.read_text().strip()


def test_every_server_logs_json_lines(stack):
    _, started = stack
    logs = started.folder / "logs"
    names = {"redis", "mlflow", "worker1", "worker2", "daemon", "webserver", *monitoring.NAMES}
    assert names <= {p.stem for p in logs.glob("*.log") if not p.stem.endswith(".wrapper")}
    for name in names:
        lines = (logs / f"{name}.log").read_text().splitlines()
        assert lines, name
        records = [json.loads(line) for line in lines]  # every line is one JSON object
        assert all(isinstance(r, dict) and r["service"] == name for r in records), name
    postgres = started.folder / "postgres" / "log" / "postgres.json"
    assert all(isinstance(json.loads(line), dict) for line in postgres.read_text().splitlines())
    started_line = next(json.loads(x) for x in (logs / "telemetry.log").read_text().splitlines()
                        if "telemetry server listening" in x)
    assert started_line["url"] == f"{started.url('telemetry')}/v1/telemetry"
