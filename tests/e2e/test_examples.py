"""The examples end to end (slow): data sets the pipeline was not tuned for, with only their data block and
model name set, run to a signed release or stop at the fairness gate
with one clear line."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


def _copy(name: str, target: Path) -> Path:
    shutil.copytree(REPO / "examples" / name, target, ignore=shutil.ignore_patterns(
        "data", "models", "build", "releases", "reports", "expectations", "keys", "mlflow.db", "mlartifacts", ".dagster"))
    return target / "params.yaml"


def _run(params: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "DAGSTER_HOME")}
    return subprocess.run([sys.executable, "-m", "cli.main", "run", "--params", str(params)], cwd=params.parent,
                          capture_output=True, text=True, timeout=1200, env=env)


def _figures(project: Path) -> dict:
    reports = project / "reports"
    evaluation = json.loads((reports / "evaluation.json").read_text())
    tradeoff = json.loads((reports / "fairness_tradeoff.json").read_text())
    unconstrained = 1.0 if tradeoff["method"] == "bound" else 0  # method bound keys heads by bound: 1 never binds
    unmitigated = next(e for e in tradeoff["sweep"] if e["strength"] == unconstrained)
    return {"keras": evaluation["overall"]["accuracy"], "unmitigated": unmitigated["test"]["accuracy"],
            "logistic": evaluation["baselines"]["logistic_regression"]["accuracy"],
            "majority": evaluation["baselines"]["majority_class"]["accuracy"]}


def _stage(params: Path, name: str) -> None:
    """One step (as its DVC stage runs it): the figures of a run that stopped before it. The step writes its reports
    even when its own gate then fails (a kept, unreleased model may miss the accuracy gates): exit 0 or that line."""
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "DAGSTER_HOME")}
    done = subprocess.run([sys.executable, "-m", "cli.main", "stage", name, "--params", str(params)],
                          cwd=params.parent, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0 or done.stderr.startswith("error: gate "), done.stderr[-2000:]
    assert "Traceback" not in done.stderr


# Both release. Boston: every bound head answers one class within the gate's 0.1 on race:male; the head distilled
# from ExponentiatedGradient is released (measured, split seed 42: test accuracy 0.8933 at DPD 0.0602)
@pytest.mark.parametrize("name, stop", [("german-credit", None), ("boston-mortgage", None)])
def test_example_runs_to_a_release_or_a_clear_gate(name: str, stop: str | None, tmp_path: Path):
    params = _copy(name, tmp_path / name)
    if (params.parent / "extract.py").is_file():
        subprocess.run([sys.executable, str(params.parent / "extract.py")], check=True, capture_output=True)
    done = _run(params)
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert "Traceback" not in done.stderr
    if stop is None:
        assert done.returncode == 0, done.stderr[-2000:]
        release = next((params.parent / "releases").glob("*/*"))
        assert subprocess.run([sys.executable, "-m", "cli.main", "verify", str(release)], cwd=params.parent,
                              capture_output=True, text=True).returncode == 0
    else:
        assert done.returncode == 1 and len(errors) == 1 and errors[0].startswith(stop), done.stderr[-2000:]
        assert "and accuracy within 0.03 of logistic regression (" in errors[0]  # both figures, one line
        assert not (params.parent / "releases").exists()
        for step in ("model_evaluation", "fairness_tradeoff"):
            _stage(params, step)
    figures = _figures(params.parent)
    assert figures["unmitigated"] >= figures["logistic"] - 0.015, figures  # the network learned what LR learns
    if stop is None:  # a released model beats the majority class (a stopped run keeps its least disparate head)
        assert figures["keras"] > figures["majority"], figures
