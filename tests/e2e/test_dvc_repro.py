"""`dvc repro` in a temp copy of the repo: every stage runs, outputs land, a second repro does nothing."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from pipelines.release import verify_release

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _dvc() -> str:
    found = shutil.which("dvc") or (str(REPO / ".venv-dvc/bin/dvc") if (REPO / ".venv-dvc/bin/dvc").exists() else None)
    if not found:
        pytest.skip("dvc is not installed (make test-slow installs it into .venv-dvc)")
    return found


def test_dvc_repro_reproduces_and_is_then_up_to_date(repo_copy: Path):
    dvc = _dvc()
    # A .venv whose stamp is newer than the lock makes `make venv` (called by bin/stage) a no-op,
    # so the copy runs the project's installed environment without reinstalling into it.
    (repo_copy / ".venv" / "bin").mkdir(parents=True)
    (repo_copy / ".venv" / "bin" / "mobile-mlops").symlink_to(REPO / ".venv" / "bin" / "mobile-mlops")
    (repo_copy / ".venv" / ".installed").touch()
    env = {**os.environ, "MLFLOW_TRACKING_URI": ""}
    env.pop("MLFLOW_TRACKING_URI")
    for command in (["git", "init", "-q"], ["git", "add", "-A"],
                    ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "copy"]):
        subprocess.run(command, cwd=repo_copy, check=True, env=env)
    first = subprocess.run([dvc, "repro"], cwd=repo_copy, capture_output=True, text=True, env=env, timeout=1200)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    for out in ("data/raw/dataset.parquet", "data/prepared/splits/test.parquet", "models/tflite/model_int8.tflite",
                "models/coreml/model.mlpackage", "build/release_candidate/manifest.json", "reports/evaluation.json"):
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
