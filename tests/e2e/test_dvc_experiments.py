"""DVC as a data scientist uses it, in a temp copy of the repo on a slice of the data: `dvc repro`, then
`dvc exp run -S train.epochs=5`, and `dvc exp show`, `dvc metrics show/diff` and `dvc plots show` on the
compact per-stage metrics and the charts the stages write."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow


def _use_small_data(project: Path, small_project: Path) -> None:
    """The repo copy runs on the small project's slice of the data, with its fast params."""
    (project / "data" / "small").mkdir(parents=True)
    params = yaml.safe_load((small_project / "params.yaml").read_text())
    for key in ("source", "test_source"):
        shutil.copy2(small_project / params["data"][key], project / "data" / "small")
        params["data"][key] = f"data/small/{params['data'][key]}"
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def _run(command: list[str], cwd: Path, env: dict, timeout: int = 900) -> str:
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=env, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(command)}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def _leaves(node, prefix: str = "") -> dict:
    """Nested DVC JSON (dicts and lists) as dotted keys."""
    if isinstance(node, list):
        node = {str(i): v for i, v in enumerate(node)}
    if not isinstance(node, dict):
        return {prefix: node}
    flat = {}
    for key, value in node.items():
        flat |= _leaves(value, f"{prefix}.{key}" if prefix else key)
    return flat


def test_experiment_with_more_epochs_is_compared_in_exp_show_metrics_diff_and_plots(small_project: Path,
                                                                                     repo_copy: Path, dvc_bin: str):
    dvc = dvc_bin
    _use_small_data(repo_copy, small_project)
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    for command in (["git", "add", "-A"], [*git, "commit", "-qm", "small data"]):
        _run(command, repo_copy, env)

    _run([dvc, "repro"], repo_copy, env)
    _run(["git", "add", "-A"], repo_copy, env)
    _run([*git, "commit", "-qm", "baseline"], repo_copy, env)

    # Compact metrics: a handful of numbers per stage, not the nested reports.
    shown = json.loads(_run([dvc, "metrics", "show", "--json"], repo_copy, env))
    metrics = _leaves(shown)
    assert any(k.endswith("reports/metrics/model_evaluation.json.data.accuracy") for k in metrics), sorted(metrics)[:20]
    assert not any("reports/tflite.json" in k for k in metrics)  # big reports are outs, not metrics
    assert len(metrics) < 400
    table = _run([dvc, "metrics", "show"], repo_copy, env)
    assert "reports/metrics/trained_model.json" in table and "val_loss" in table

    _run([dvc, "exp", "run", "-n", "epochs5", "-S", "train.epochs=5"], repo_copy, env)
    flat = _leaves(json.loads(_run([dvc, "exp", "show", "--json"], repo_copy, env)))
    names = {v for k, v in flat.items() if k.endswith(".name")}
    assert {"master", "epochs5"} <= names, names
    epochs = {k.split(".data.")[0]: v for k, v in flat.items() if k.endswith("params.yaml.data.train.epochs")}
    assert {2, 5} <= set(epochs.values()), epochs  # the baseline commit and the experiment side by side
    assert any(k.endswith("reports/metrics/model_evaluation.json.data.accuracy") for k in flat)

    diff = json.loads(_run([dvc, "metrics", "diff", "--json"], repo_copy, env))  # HEAD vs the experiment
    epochs_diff = diff["reports/metrics/trained_model.json"]["epochs"]
    assert (epochs_diff["old"], epochs_diff["new"]) == (2, 5)

    out = repo_copy / "dvc_plots"
    _run([dvc, "plots", "show", "-o", str(out)], repo_copy, env)
    html = (out / "index.html").read_text()
    for chart in ("confusion_matrix.png", "training_curve.png", "drift.png", "footprint.png", "Training loss per epoch"):
        assert chart in html, chart
    assert list(out.rglob("*.png"))  # image plots are copied next to the page
