"""`dvc repro` in a temp copy of the repo: every stage runs, outputs land, a second repro does nothing, and a
changed line of code makes exactly the stages whose code it is stale."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from pipelines.catalog import STAGES
from pipelines.code_versions import code_deps
from pipelines.release.folder import verify_release

pytestmark = pytest.mark.slow


def test_dvc_repro_reproduces_and_is_then_up_to_date(repo_copy: Path, dvc_bin: str):
    dvc = dvc_bin
    env = {**os.environ, "MLFLOW_TRACKING_URI": ""}
    env.pop("MLFLOW_TRACKING_URI")
    first = subprocess.run([dvc, "repro"], cwd=repo_copy, capture_output=True, text=True, env=env, timeout=1200)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    for out in ("data/raw/dataset.parquet", "data/prepared/splits/test.parquet", "models/tflite/model_int8.tflite",
                "models/coreml/model_float16.mlpackage", "build/release_candidate/manifest.json", "reports/evaluation.json"):
        assert (repo_copy / out).exists(), out
    manifest = verify_release(repo_copy / "build/release_candidate")
    lock = (repo_copy / "dvc.lock").read_text()
    for path, md5 in manifest.lineage.data_md5.items():
        assert f"path: {path}" in lock and md5 in lock  # the manifest's data md5 is DVC's record
    second = subprocess.run([dvc, "repro"], cwd=repo_copy, capture_output=True, text=True, env=env, timeout=600)
    assert second.returncode == 0
    assert "Data and pipelines are up to date." in second.stdout
    status = subprocess.run([dvc, "status"], cwd=repo_copy, capture_output=True, text=True, env=env)
    assert "up to date" in status.stdout

    # one changed line in a step module: `dvc status` names the stages whose Dagster code version changes too
    step_module = repo_copy / "pipelines" / "governance" / "steps.py"
    step_module.write_text(step_module.read_text() + "\n# one changed line\n")
    status = subprocess.run([dvc, "status", "--json"], cwd=repo_copy, capture_output=True, text=True, env=env)
    changed = set(json.loads(status.stdout))
    expected = {name for name in STAGES if "pipelines/governance/steps.py" in code_deps(name)}
    assert changed == expected == {"fairness_tradeoff", "fairness_report", "feature_importance", "model_card"}


def test_dvc_repro_stops_at_model_evaluation_on_a_failed_accuracy_gate_as_dagster_does(repo_copy: Path, dvc_bin: str):
    import yaml
    from dagster import DagsterEventType, DagsterInstance

    from assets.build import materialize_all
    from cli.runner import _failure_message
    from pipelines.catalog import downstream
    from pipelines.core.config import load_settings

    params = yaml.safe_load((repo_copy / "params.yaml").read_text())
    params["gates"]["keras"]["min_accuracy"] = 0.99
    # a pinned penalty strength: with the default bound method, the floor also judges the choice on held-out rows
    # and the fairness gate would stop both orchestrators one stage earlier, at trained_model
    params["fairness"]["method"], params["fairness"]["strength"] = "penalty", 1
    (repo_copy / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    done = subprocess.run([dvc_bin, "repro"], cwd=repo_copy, capture_output=True, text=True, env=env, timeout=1200)
    assert done.returncode != 0
    assert (repo_copy / "reports/gates/model_evaluation.json").is_file(), done.stderr[-3000:]
    verdict = json.loads((repo_copy / "reports/gates/model_evaluation.json").read_text())
    line = verdict["message"]
    assert line.startswith("gate accuracy_gate failed on model_evaluation: test accuracy 0.")
    assert line.endswith(" is below gates.keras.min_accuracy = 0.9900")
    errors = [text for text in done.stderr.splitlines() if text.startswith("error:")]
    assert errors == [f"error: {line}"], done.stderr[-3000:]  # the stage's one line, then DVC's own report
    assert "Traceback" not in done.stderr
    assert "model_evaluation" in done.stderr.split(line)[-1]  # DVC names the stage whose command failed
    after = downstream({"model_evaluation"}) - {"model_evaluation"}
    assert {"tflite_model", "finops_report", "release_candidate"} <= after
    assert not (repo_copy / "models/tflite").exists() and not (repo_copy / "reports/cost.json").exists()
    assert not (repo_copy / "build/release_candidate").exists()

    # Dagster on the same params: the same stage stops it, with the same line, and nothing after it runs
    for path in ("models", "reports/gates", "data/raw"):
        subprocess.run(["rm", "-rf", str(repo_copy / path)], check=True)
    result = materialize_all(load_settings(repo_copy / "params.yaml"), instance=DagsterInstance.ephemeral(),
                             raise_on_error=False)
    assert not result.success
    assert _failure_message(result) == line  # seeded: the same accuracy, so the very same line
    ran = {e.step_key for e in result.all_events if e.event_type == DagsterEventType.STEP_START}
    assert "model_evaluation" in ran and not ran & after
