"""Shared data for a team, as docs/deployment.md ("DVC remote") says: `dvc remote add -d shared FOLDER`, a run,
`dvc push`; a second clone of the repo `dvc pull`s the run's outputs and is up to date without recomputing. The run is `dvc repro` of the repo on the
small project's slice of the data (~3 minutes on 2 cores)."""
from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest

pytestmark = [pytest.mark.services, pytest.mark.slow]
OUTPUTS = ("data/raw/dataset.parquet", "data/prepared/splits/test.parquet", "models/tflite/model_int8.tflite",
           "build/release_candidate/manifest.json")


def _run(command: list[str], cwd: Path, timeout: int = 600) -> str:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=env, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(command)}: {done.stdout[-2000:]}{done.stderr[-2000:]}"
    return done.stdout


def _git(cwd: Path, *args: str) -> str:
    return _run(["git", "-c", "user.name=team", "-c", "user.email=team@localhost", *args], cwd)


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _files(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file()}


def test_a_second_clone_pulls_a_runs_outputs_from_a_shared_folder_remote_and_is_up_to_date(tmp_path: Path):
    from benchmarks.projects import repo_copy
    from benchmarks.run import find_dvc
    from tests.conftest import write_small_project

    dvc = find_dvc()
    if not dvc:
        pytest.skip("dvc is not installed (`make dvc` installs it into .venv-dvc)")
    shared = tmp_path / "shared-dvc-store"  # a folder every machine mounts (NFS, SMB): here a local one
    first = repo_copy(tmp_path / "alice", quick=False)
    write_small_project(first, "data/small")  # the repo on 1,500 + 600 Adult rows with fast params
    _run([dvc, "remote", "add", "-d", "shared", str(shared)], first)
    _run([dvc, "repro"], first, timeout=1500)
    _git(first, "add", "-A")  # dvc.lock, .dvc/config and the .gitignore entries DVC wrote for its outputs
    _git(first, "commit", "-qm", "a run")
    assert not any(str(p).endswith(".parquet") for p in _git(first, "ls-files").split())  # data stays out of git
    pushed = _run([dvc, "push"], first)
    assert "pushed" in pushed and _files(shared)  # content-addressed files in the shared folder

    second = tmp_path / "bob"
    _git(tmp_path, "clone", "-q", str(first), str(second))
    assert not (second / OUTPUTS[0]).exists()
    _run([dvc, "pull"], second)
    for out in OUTPUTS:
        assert _md5(second / out) == _md5(first / out), out
    assert "Data and pipelines are up to date." in _run([dvc, "status"], second)
    before = {p: p.stat().st_mtime_ns for p in _files(second / "models")}
    # nothing is recomputed: a repro finds every stage's deps and outs as dvc.lock records them
    assert "Data and pipelines are up to date." in _run([dvc, "repro"], second)
    assert {p: p.stat().st_mtime_ns for p in _files(second / "models")} == before
