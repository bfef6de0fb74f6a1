"""The production profile is configuration only: the executor follows MOBILE_MLOPS_EXECUTOR, the release job carries
the model tag the run queue limits, and deploy/services/dagster.yaml is a valid Dagster instance config."""
from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.core.config import load_settings
from pipelines.core.errors import PipelineError

REPO = Path(__file__).resolve().parents[2]


def test_the_executor_is_chosen_by_the_environment(monkeypatch):
    from assets.build import EXECUTOR_ENV, executor

    monkeypatch.delenv(EXECUTOR_ENV, raising=False)
    assert executor().name == "multiprocess"
    monkeypatch.setenv(EXECUTOR_ENV, "celery")
    assert executor().name == "celery"
    monkeypatch.setenv(EXECUTOR_ENV, "kubernetes")
    with pytest.raises(PipelineError, match="MOBILE_MLOPS_EXECUTOR=kubernetes: expected multiprocess or celery"):
        executor()


def test_the_release_job_carries_the_model_tag_the_queue_limits():
    import yaml

    from assets.automation import JOB
    from assets.build import MODEL_TAG, build_definitions

    job = build_definitions(load_settings(REPO / "params.yaml")).resolve_job_def(JOB)
    assert job.tags[MODEL_TAG] == "adult-income"
    limits = yaml.safe_load((REPO / "deploy/services/dagster.yaml").read_text())["run_coordinator"]["config"]
    from assets.partitions import INGEST_TAG

    assert limits["tag_concurrency_limits"] == [{"key": MODEL_TAG, "value": {"applyLimitPerUniqueValue": True},
                                                 "limit": 1}, {"key": INGEST_TAG, "limit": 4}]
    assert limits["max_concurrent_runs"] > 4  # a backfill's four day runs leave room for a release run


def test_the_production_dagster_yaml_is_a_valid_instance_config():
    import yaml
    from dagster._config import validate_config
    from dagster._core.instance.config import dagster_instance_config_schema

    raw = yaml.safe_load((REPO / "deploy/services/dagster.yaml").read_text())
    assert validate_config(dagster_instance_config_schema(), raw).success
    assert raw["storage"]["postgres"]["postgres_url"] == {"env": "DAGSTER_PG_URL"}  # the password never in a file
    assert not validate_config(dagster_instance_config_schema(), {**raw, "storage": {"postgres": {"url": 1}}}).success


def test_services_commands_need_a_running_stack(tmp_path):
    from cli import services

    with pytest.raises(PipelineError, match="no stack is running here"):
        services.Stack.load(tmp_path)
    services.down(tmp_path)  # nothing to stop: a no-op
    stack = services.Stack(tmp_path, tmp_path / "params.yaml", 2, {"postgres": 1, "redis": 2, "mlflow": 3, "dagster": 4})
    env = stack.env()
    assert env["MOBILE_MLOPS_EXECUTOR"] == "celery" and env["MLFLOW_TRACKING_URI"] == "http://127.0.0.1:3"
    assert env["DAGSTER_PG_URL"] == "postgresql+psycopg2://mobile@127.0.0.1:1/dagster"
    assert env["DAGSTER_HOME"] == str(tmp_path / "dagster")


def test_a_free_port_is_below_the_kernels_ephemeral_range():
    """Servers listen below the range bind(0) and outgoing connections draw from, so no client or code server takes
    a stack's port between choosing it and the server binding it (a webserver once lost its port that way)."""
    import socket

    from cli.services import _ephemeral_floor, free_port

    floor = _ephemeral_floor()
    ports = {free_port() for _ in range(20)}
    assert all(1024 <= port < floor for port in ports) and len(ports) > 1
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", ports.pop()))  # free indeed


def test_a_server_that_exits_while_starting_names_its_error(tmp_path):
    import json
    import subprocess
    import sys

    from cli.services import Stack, _wait_http, free_port

    stack = Stack(tmp_path, tmp_path / "params.yaml", 1, {})
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "webserver.log").write_text("\n".join(json.dumps(e) for e in [
        {"level": "info", "message": "Serving"},
        {"level": "error", "message": "[Errno 98] error while attempting to bind: address already in use"},
        {"level": "info", "message": "Shutting down"}]) + "\n")
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    stack.pids["webserver"] = process.pid
    with pytest.raises(PipelineError, match=r"webserver exited while starting: \[Errno 98\].*address already in use "
                                            r"\(see .*webserver.log\)"):
        _wait_http(f"http://127.0.0.1:{free_port()}/", "webserver", stack, timeout=10)
