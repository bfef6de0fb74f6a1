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


# German credit releases. Boston's black applicants are 29-51 test rows, where race's parity limit (0.1) is close to
# what a model with equal rates for every group measures (benchmarks.fairness.floor: 0.08 on average over 20 splits,
# up to 0.117): a release (13 of 20 splits), or the fairness gate's one line at fairness_report
@pytest.mark.parametrize("name, stop", [("german-credit", None),
                                        ("boston-mortgage", "error: gate fairness_gate failed on fairness_report: ")])
def test_example_runs_to_a_release_or_a_clear_gate(name: str, stop: str | None, tmp_path: Path):
    params = _copy(name, tmp_path / name)
    if (params.parent / "extract.py").is_file():
        subprocess.run([sys.executable, str(params.parent / "extract.py")], check=True, capture_output=True)
    done = _run(params)
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert "Traceback" not in done.stderr
    if stop is None or done.returncode == 0:
        assert done.returncode == 0, done.stderr[-2000:]
        release = next((params.parent / "releases").glob("*/*"))
        assert subprocess.run([sys.executable, "-m", "cli.main", "verify", str(release)], cwd=params.parent,
                              capture_output=True, text=True).returncode == 0
    else:
        assert done.returncode == 1 and len(errors) == 1 and errors[0].startswith(stop), done.stderr[-2000:]
        assert not (params.parent / "releases").exists()
    figures = _figures(params.parent)
    assert figures["unmitigated"] >= figures["logistic"] - 0.015, figures  # the network learned what LR learns
    assert figures["keras"] > figures["majority"], figures  # the chosen model beats the majority class
