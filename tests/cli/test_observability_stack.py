"""The services profile's monitoring pieces without the stack: the pipeline exporter's gauges (from a real observed
FinOps report and a real Dagster instance), the JSON-lines log wrapper, the Alertmanager config, `--port`."""
from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from cli import alertmanager, exporter, jsonlog, prometheus, services
from pipelines.core.config import load_settings
from pipelines.core.errors import PipelineError
from pipelines.core.io import write_json
from pipelines.core.paths import FLEET_FINOPS_REPORT
from pipelines.fleet.observed_finops import budget_of, budget_results

REPO = Path(__file__).resolve().parents[2]
RUN_ID = "3afa24f8-bb63-4287-aa18-4e8040ddb6c1"


def over_budget_report(project: Path, monthly_usd: float = 500.0) -> Path:
    """params with gates.budgets.max_monthly_usd = `monthly_usd` and a report whose budget verdicts
    budget_results computed for two months, the later one at $900 + training."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["gates"].setdefault("budgets", {})
    params["gates"]["budgets"] |= {"max_monthly_usd": monthly_usd, "max_device_mb_per_month": 5.0}
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    settings = load_settings(project / "params.yaml")
    rows = [{"month": "2026-10", "serving_usd": 100.0, "device_mb_per_month": 9.0},
            {"month": "2026-11", "serving_usd": 900.0, "device_mb_per_month": 3.0}]
    results = budget_results(rows, {"release": {"training_usd_per_month": 12.5}}, settings.params)
    write_json(settings.resolve(FLEET_FINOPS_REPORT), {"budgets": [r.as_dict() for r in results]})
    return project / "params.yaml"


def samples(registry) -> dict[tuple[str, tuple], float]:
    from prometheus_client import generate_latest

    text = generate_latest(registry).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_budget_names_round_trip_and_other_names_are_not_budgets():
    assert budget_of("observed max_monthly_usd[2026-11]") == ("max_monthly_usd", "2026-11")
    assert budget_of("max_monthly_usd") is None and budget_of("observed x") is None


def test_the_exporter_exposes_the_latest_months_budget_verdicts(tmp_path):
    params = over_budget_report(tmp_path)
    got = samples(exporter.registry(load_settings(params)))
    usd = (("budget", "max_monthly_usd"), ("month", "2026-11"))
    mb = (("budget", "max_device_mb_per_month"), ("month", "2026-11"))
    assert got[("mobile_mlops_budget_observed", usd)] == 912.5  # serving + training, as the verdict measured it
    assert got[("mobile_mlops_budget_limit", usd)] == 500.0
    assert got[("mobile_mlops_budget_observed", mb)] == 3.0 and got[("mobile_mlops_budget_limit", mb)] == 5.0
    assert not any(dict(labels).get("month") == "2026-10" for _, labels in got)  # only the latest month
    assert ("mobile_mlops_last_scheduled_success_timestamp_seconds", ()) not in got
    assert abs(got[("mobile_mlops_exporter_start_timestamp_seconds", ())] - time.time()) < 60


def test_without_a_report_the_exporter_has_no_budget_series(tmp_path):
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    names = {name for name, _ in samples(exporter.registry(load_settings(tmp_path / "params.yaml")))}
    assert names == {"mobile_mlops_exporter_start_timestamp_seconds"}


def test_the_last_scheduled_success_comes_from_the_dagster_instance(tmp_path):
    from dagster import DagsterInstance, DagsterRun, DagsterRunStatus

    params = over_budget_report(tmp_path)
    with DagsterInstance.ephemeral() as instance:
        assert exporter.last_scheduled_success(instance) is None
        tags = {"dagster/schedule_name": exporter.SCHEDULE}
        for run_id, status, job, run_tags in [("a" * 8, DagsterRunStatus.SUCCESS, exporter.JOB, tags),
                                              ("b" * 8, DagsterRunStatus.FAILURE, exporter.JOB, tags),
                                              ("c" * 8, DagsterRunStatus.SUCCESS, exporter.JOB, {}),
                                              ("d" * 8, DagsterRunStatus.SUCCESS, "other_job", tags)]:
            instance.add_run(DagsterRun(job_name=job, run_id=run_id, status=status, tags=run_tags))
        record = instance.get_run_record_by_id("a" * 8)
        when = exporter.last_scheduled_success(instance)
        assert when == (record.end_time or record.update_timestamp.timestamp())
        got = samples(exporter.registry(load_settings(params), lambda: instance))
    key = ("mobile_mlops_last_scheduled_success_timestamp_seconds",
           (("dagster_job", exporter.JOB), ("schedule", exporter.SCHEDULE)))
    assert got[key] == when


def test_the_exporter_names_the_schedule_and_job_the_definitions_have():
    from assets.automation import JOB
    from assets.build import build_definitions

    definitions = build_definitions(load_settings(REPO / "params.yaml"))
    assert exporter.JOB == JOB
    assert definitions.get_schedule_def(exporter.SCHEDULE).job_name == JOB


def test_dagster_console_lines_become_json_with_run_id_and_step():
    line = (f"2026-12-02 08:00:01 +0000 - dagster - DEBUG - release_job - {RUN_ID} - 1234 - trained_model - "
            "STEP_SUCCESS - Finished execution of step \"trained_model\" in 3.2s.")
    record = json.loads(jsonlog.convert(line, "worker1"))
    assert record == {"time": "2026-12-02T08:00:01.000+00:00", "level": "debug",
                      "message": "Finished execution of step \"trained_model\" in 3.2s.", "service": "worker1",
                      "logger": "dagster", "job": "release_job", "run_id": RUN_ID, "pid": 1234,
                      "step": "trained_model", "event": "STEP_SUCCESS"}
    run_start = json.loads(jsonlog.convert(f"2026-12-02 08:00:01 +0000 - dagster - INFO - release_job - {RUN_ID} - "
                                           "RUN_START - Started execution of run", "daemon"))
    assert run_start["event"] == "RUN_START" and "step" not in run_start and run_start["run_id"] == RUN_ID


def test_a_step_line_inside_a_celery_worker_line_keeps_the_dagster_fields():
    # as a Celery worker writes a step's console output (coloured by coloredlogs), from a stack's worker1.log
    line = (f"[2026-12-02 09:18:08,227: WARNING/ForkPoolWorker-1] \x1b[32m2026-12-02 09:18:08 +0000\x1b[0m - dagster - "
            f"\x1b[34mDEBUG\x1b[0m - release_job - {RUN_ID} - 7751 - validated_dataset - STEP_START - Started execution "
            "of step \"validated_dataset\".")
    record = json.loads(jsonlog.convert(line, "worker1"))
    assert (record["level"], record["run_id"], record["step"], record["event"], record["process"]) == (
        "debug", RUN_ID, "validated_dataset", "STEP_START", "ForkPoolWorker-1")
    assert record["message"] == "Started execution of step \"validated_dataset\"."
    plain = json.loads(jsonlog.convert("[2026-12-02 09:16:20,001: INFO/MainProcess] Connected to redis://x", "w"))
    assert (plain["level"], plain["message"], plain["process"]) == ("info", "Connected to redis://x", "MainProcess")
    assert "\x1b" not in jsonlog.convert("\x1b[31mred\x1b[0m text", "w")


def test_other_lines_keep_their_text_and_json_lines_gain_the_service():
    record = json.loads(jsonlog.convert("1234:M 02 Dec 2026 08:00:00.000 # ERROR loading <x>\n", "redis"))
    assert record["level"] == "error" and record["message"] == "1234:M 02 Dec 2026 08:00:00.000 # ERROR loading <x>"
    assert json.loads(jsonlog.convert('{"level":"info","msg":"x"}', "prometheus")) == {
        "level": "info", "msg": "x", "service": "prometheus"}
    assert json.loads(jsonlog.convert("{not json", "redis"))["message"] == "{not json"
    assert jsonlog.convert("  \n", "redis") == ""


def test_the_wrapper_writes_every_output_line_as_one_json_object(tmp_path):
    log = tmp_path / "svc.log"
    script = "import sys; print('hello <b>'); print('WARNING: low', file=sys.stderr); print('{\"a\": 1}')"
    done = subprocess.run([sys.executable, "-m", "cli.jsonlog", "svc", str(log), "--", sys.executable, "-c", script],
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r.get("message") for r in records] == ["hello <b>", "WARNING: low", None]
    assert [r["service"] for r in records] == ["svc"] * 3 and records[1]["level"] == "warning"
    assert records[2]["a"] == 1
    bad = subprocess.run([sys.executable, "-m", "cli.jsonlog", "svc"], cwd=REPO, capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.strip() == "usage: python -m cli.jsonlog SERVICE LOG -- COMMAND..."


def test_alertmanager_routes_every_alert_to_the_webhook(tmp_path):
    config = yaml.safe_load(alertmanager.write_config(tmp_path, "http://127.0.0.1:9/hook").read_text())
    assert config["route"]["receiver"] == "webhook"
    assert config["receivers"] == [{"name": "webhook", "webhook_configs": [{"url": "http://127.0.0.1:9/hook",
                                                                           "send_resolved": True}]}]
    assert yaml.safe_load(alertmanager.write_config(tmp_path, None).read_text())["receivers"] == [{"name": "webhook"}]


def test_prometheus_scrapes_each_job_and_alerts_through_alertmanager(tmp_path):
    config = yaml.safe_load(prometheus.write_config(tmp_path, {"telemetry": "127.0.0.1:1", "pipeline": "127.0.0.1:2"},
                                                    alertmanager="127.0.0.1:3").read_text())
    assert [(j["job_name"], j["static_configs"][0]["targets"]) for j in config["scrape_configs"]] == [
        ("telemetry", ["127.0.0.1:1"]), ("pipeline", ["127.0.0.1:2"])]
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["127.0.0.1:3"]


def test_port_options_name_a_server_and_a_port():
    assert services.parse_ports(["prometheus=19190", "exporter=0"]) == {"prometheus": 19190, "exporter": 0}
    with pytest.raises(PipelineError) as bad_name:
        services.parse_ports(["grafana=3000"])
    assert str(bad_name.value) == ("--port grafana=3000: expected NAME=PORT with NAME one of postgres, redis, mlflow, "
                                   "dagster, telemetry, exporter, alertmanager, prometheus")
    with pytest.raises(PipelineError) as bad_port:
        services.parse_ports(["prometheus=99999"])
    assert str(bad_port.value) == "--port prometheus=99999: the port must be a number from 0 to 65535"


def test_the_exporter_command_serves_metrics_and_json_lines(tmp_path):
    params = over_budget_report(tmp_path)
    process = subprocess.Popen([sys.executable, "-m", "cli.main", "--log-format", "json", "services", "exporter",
                                "--port", "exporter=0", "--params", str(params)], cwd=REPO, text=True,
                               stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                               env={**__import__("os").environ, "PYTHONPATH": str(REPO), "DAGSTER_HOME": ""})
    try:
        first = json.loads(process.stderr.readline())
        assert first["message"] == "pipeline exporter listening" and first["level"] == "info"
        with urllib.request.urlopen(first["url"], timeout=10) as answer:
            text = answer.read().decode()
        assert 'mobile_mlops_budget_observed{budget="max_monthly_usd",month="2026-11"} 912.5' in text
    finally:
        process.terminate()
        assert process.wait(30) == 0  # SIGTERM: a clean stop
