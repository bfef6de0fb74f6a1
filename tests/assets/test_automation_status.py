"""The production profile starts the nightly schedule and the sensors running; locally they default to stopped,
and `mobile-mlops automation status` (the first lines of `make ui`) says which are on."""
from __future__ import annotations

from pathlib import Path

import pytest
from dagster import DefaultScheduleStatus, DefaultSensorStatus

from pipelines.core.config import load_settings
from pipelines.core.errors import PipelineError

REPO = Path(__file__).resolve().parents[2]


def _defs():
    from assets.build import build_definitions

    return build_definitions(load_settings(REPO / "params.yaml"))


def test_the_production_profile_sets_schedule_and_sensors_running(monkeypatch, tmp_path):
    from cli import services

    env = services.Stack(tmp_path, tmp_path / "params.yaml", 2, {"postgres": 1, "redis": 2, "mlflow": 3,
                                                                 "dagster": 4}).env()
    assert env["MOBILE_MLOPS_AUTOMATION"] == "running"
    monkeypatch.setenv("MOBILE_MLOPS_AUTOMATION", env["MOBILE_MLOPS_AUTOMATION"])
    defs = _defs()
    assert [s.default_status for s in defs.schedules] == [DefaultScheduleStatus.RUNNING]
    assert {s.name: s.default_status for s in defs.sensors} == {
        "data_version_sensor": DefaultSensorStatus.RUNNING, "fleet_telemetry_sensor": DefaultSensorStatus.RUNNING}


def test_locally_they_default_to_stopped_and_a_bad_value_is_one_line(monkeypatch):
    monkeypatch.delenv("MOBILE_MLOPS_AUTOMATION", raising=False)
    defs = _defs()
    assert {s.default_status for s in defs.sensors} == {DefaultSensorStatus.STOPPED}
    assert defs.schedules[0].default_status == DefaultScheduleStatus.STOPPED
    monkeypatch.setenv("MOBILE_MLOPS_AUTOMATION", "on")
    with pytest.raises(PipelineError, match=r"^MOBILE_MLOPS_AUTOMATION=on: expected running or stopped$"):
        _defs()


@pytest.mark.parametrize(("value", "first"), [
    ("running", "nightly_retraining, data_version_sensor, fleet_telemetry_sensor on; MOBILE_MLOPS_AUTOMATION=running"),
    (None, "all off; MOBILE_MLOPS_AUTOMATION=stopped")])
def test_automation_status_says_in_its_first_line_which_are_on(tmp_path, value, first):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "MOBILE_MLOPS_AUTOMATION"}
    env["DAGSTER_HOME"] = str(tmp_path / "home")
    if value:
        env["MOBILE_MLOPS_AUTOMATION"] = value
    done = subprocess.run([sys.executable, "-m", "cli.main", "automation", "status"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert lines[0] == f"automation ({tmp_path / 'home'}): {first}"
    assert any(line.split()[:3] == ["schedule", "nightly_retraining", "running" if value else "stopped"]
               for line in lines[1:])
