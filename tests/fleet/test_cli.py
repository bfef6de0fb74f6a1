"""The fleet commands as a user types them: the posting example reaches a decision, analyse and finops write their
charts, finops over budget exits 1 with a line, simulate --experiment produces A/B arms that analyse compares."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from cli.main import main
from pipelines.core.paths import PRODUCTION_FILE
from pipelines.fleet import store
from pipelines.fleet.server import make_server, serve_in_thread
from tests.fleet.test_steps import KEY, settings_for  # noqa: F401 - fixture used by name


def _cli(root: Path, telemetry: Path, *args: str) -> int:
    return main([*args, "--params", str(root / "params.yaml"), "--set", f"fleet.directory={telemetry}"])


@pytest.mark.slow
def test_the_posting_example_reaches_a_decision_and_analyse_draws_its_chart(fleet_release, settings_for, tmp_path,
                                                                           monkeypatch, capsys):
    settings = settings_for()
    telemetry = tmp_path / "telemetry"
    monkeypatch.setenv(settings.params.fleet.hmac_key_env, KEY)
    server = make_server(telemetry, settings.params.fleet, port=0)
    serve_in_thread(server)
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:  # docs/fleet-loop.md: 25% of 20,000 devices decide within 3 days; 5% of 2,000 devices can only hold
        assert _cli(fleet_release.root, telemetry, "fleet", "simulate", "--url", url, "--devices", "20000",
                    "--days", "3", "--percent", "25", "--batch", "1000", "--feature-devices", "0") == 0
    finally:
        server.shutdown()
        server.server_close()
    assert "warning" not in capsys.readouterr().err
    assert _cli(fleet_release.root, telemetry, "fleet", "analyse") == 0
    out = capsys.readouterr().out
    decision = json.loads((fleet_release.root / "reports/fleet/canary.json").read_text())["decision"]
    assert decision in ("promote", "rollback"), out
    assert "chart: reports/fleet/guardrails.png" in out
    chart = fleet_release.root / "reports/fleet/guardrails.png"
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    history = json.loads((fleet_release.root / "reports/fleet/canary.json").read_text())["history"]
    assert all(row["selection_rate_gap"] is not None and row["mb_per_device_month"] > 0 for row in history)


def test_the_too_small_posting_example_warns_that_it_can_only_hold(fleet_release, settings_for, tmp_path, capsys):
    settings_for()
    # no server listens on port 9: the warning comes before the first post, then the post fails in one line
    assert _cli(fleet_release.root, tmp_path / "t", "fleet", "simulate", "--url", "http://127.0.0.1:9",
                "--devices", "2000", "--days", "1", "--percent", "5") == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0] == ("warning: about 100 canary devices (5% of 2000) is below fleet.min_devices 200: the analysis "
                      "can only hold; raise --devices or --percent")
    assert err[1].startswith("error: ") and len(err) == 2


def test_finops_over_budget_exits_1_with_a_line_and_draws_the_mb_chart(fleet_release, settings_for, tmp_path, capsys):
    settings_for()
    telemetry = tmp_path / "telemetry"
    assert _cli(fleet_release.root, telemetry, "fleet", "simulate", "--devices", "2000", "--days", "3") == 0
    capsys.readouterr()
    assert _cli(fleet_release.root, telemetry, "fleet", "finops") == 0
    assert "chart: reports/fleet/observed_cost.png" in capsys.readouterr().out
    code = main(["fleet", "finops", "--params", str(fleet_release.root / "params.yaml"), "--set",
                 f"fleet.directory={telemetry}", "--set", "gates.budgets.max_device_mb_per_month=0.000001"])
    captured = capsys.readouterr()
    assert code == 1
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: over budget: observed 2026-01: ")
    assert lines[0].endswith("MB per device vs gates.budgets.max_device_mb_per_month 1e-06")
    assert (fleet_release.root / "reports/fleet/observed_cost.png").read_bytes()[:4] == b"\x89PNG"


def test_simulate_experiment_produces_ab_arms_that_analyse_compares(fleet_release, settings_for, tmp_path, capsys):
    settings_for()
    telemetry = tmp_path / "telemetry"
    assert _cli(fleet_release.root, telemetry, "fleet", "simulate", "--experiment", "threshold-test", "--devices",
                "16000", "--days", "3") == 0
    out = capsys.readouterr().out
    assert "A/B threshold-test: B (50%) vs A: promote after 3 days" in out
    frame = store.read_days(telemetry)
    assert set(frame["variant"]) == {"A", "B"}
    path = fleet_release.root / PRODUCTION_FILE
    state = yaml.safe_load(path.read_text())
    version = state["model"]["version"]
    state["experiment"] = {"name": "threshold-test", "variants": [{"name": "A", "version": version, "percent": 50},
                                                                  {"name": "B", "version": version, "percent": 50}]}
    path.write_text(yaml.safe_dump(state))
    assert _cli(fleet_release.root, telemetry, "fleet", "analyse") == 0
    assert "A/B threshold-test (B vs A): promote" in capsys.readouterr().out


def test_fleet_simulate_prints_plain_progress_lines_when_not_a_terminal(fleet_release, settings_for, tmp_path):
    import os
    import subprocess
    import sys

    settings_for()
    env = {k: v for k, v in os.environ.items() if k != "MOBILE_MLOPS_PROGRESS"}
    done = subprocess.run([sys.executable, "-m", "cli.main", "fleet", "simulate", "--devices", "2000", "--days", "4",
                           "--params", str(fleet_release.root / "params.yaml"), "--set",
                           f"fleet.directory={tmp_path / 'telemetry'}"], env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    progress = [line for line in done.stderr.splitlines() if line.startswith("simulated days: ")]
    assert progress[0] == "simulated days: 0/4 (0%) started"
    assert "simulated days: 1/4 (25%)" in progress and "\x1b[" not in done.stderr  # no bar, no escape codes
