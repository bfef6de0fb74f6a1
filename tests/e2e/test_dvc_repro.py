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
