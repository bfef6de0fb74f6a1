"""`mobile-mlops --log-format json`: the project's own lines as one JSON object per line, from real commands."""
from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
from pathlib import Path

import pytest

from pipelines.core.config import FleetTelemetryConfig
from tests.cli.test_commands import CLI, run_cli
from tests.conftest import write_small_project
from tests.fleet.test_ingest import KEY
from tests.services.test_alerts import free_port_in_range


def objects(text: str) -> list[dict]:
    """Every non-empty line parsed as JSON (fails on any line that is not one object)."""
    parsed = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert all(isinstance(p, dict) for p in parsed)
    return parsed


def test_an_error_is_one_json_line_with_time_level_message_and_command(tmp_path: Path):
    done = run_cli("--log-format", "json", "verify", str(tmp_path / "nowhere"), cwd=tmp_path)
    assert done.returncode == 1 and done.stdout == ""
    [line] = objects(done.stderr)
    assert line["level"] == "error" and line["command"] == "verify"
    assert line["message"] == f"{tmp_path / 'nowhere'}: not a release folder"
    assert dt.datetime.fromisoformat(line["time"]).utcoffset() == dt.timedelta(0)


def test_text_stays_the_default(tmp_path: Path):
    done = run_cli("verify", str(tmp_path / "nowhere"), cwd=tmp_path)
    assert done.returncode == 1 and done.stderr.strip() == f"error: {tmp_path / 'nowhere'}: not a release folder"


def test_an_unknown_log_format_is_refused(tmp_path: Path):
    done = run_cli("--log-format", "xml", "verify", str(tmp_path), cwd=tmp_path)
    assert done.returncode == 2 and "argument --log-format: invalid choice: 'xml'" in done.stderr


def test_the_telemetry_server_announces_itself_as_json(tmp_path: Path):
    params = write_small_project(tmp_path)
    port = free_port_in_range()
    env = os.environ | {FleetTelemetryConfig().hmac_key_env: KEY.decode()}
    process = subprocess.Popen([*CLI, "--log-format", "json", "telemetry", "serve", "--port", str(port),
                                "--params", str(params)], cwd=tmp_path, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = json.loads(process.stderr.readline())
    finally:
        process.kill()  # this test reads the start line (a SIGTERM stop is exercised by tests/fleet/test_soak.py)
        process.wait(30)
    assert line["level"] == "info" and line["message"] == "telemetry server listening"
    assert line["url"] == f"http://127.0.0.1:{port}/v1/telemetry" and line["metrics"].endswith("/metrics")


@pytest.mark.slow
def test_a_run_prints_json_lines_with_its_run_id_and_steps(tmp_path: Path):
    params = write_small_project(tmp_path)
    done = run_cli("--log-format", "json", "run", "--params", str(params), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = objects(done.stderr) + objects(done.stdout)
    finished = [e for e in lines if e["message"] == "run succeeded"]
    assert len(finished) == 1 and finished[0]["run_id"]
    steps = [e for e in lines if e["message"] in ("step started", "step succeeded")]
    assert {"raw_dataset", "trained_model", "release_candidate"} <= {e["step"] for e in steps}
    assert {e["run_id"] for e in steps} == {finished[0]["run_id"]}
