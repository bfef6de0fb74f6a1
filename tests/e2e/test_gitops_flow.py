"""The everyday GitOps flow (slow): clone -> make run -> commit everything -> make run -> release propose,
without --allow-dirty; a real change to the code then blocks the proposal."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from benchmarks.projects import repo_copy

pytestmark = pytest.mark.slow
CLI = str(Path(sys.executable).with_name("mobile-mlops"))


def _sh(repo: Path, *command: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "DAGSTER_HOME": str(repo / ".dagster"), "GIT_AUTHOR_NAME": "dev",
           "GIT_AUTHOR_EMAIL": "dev@localhost", "GIT_COMMITTER_NAME": "dev", "GIT_COMMITTER_EMAIL": "dev@localhost"}
    done = subprocess.run(command, cwd=repo, env=env, capture_output=True, text=True, timeout=900)
    assert not check or done.returncode == 0, f"{command}: {done.stdout}\n{done.stderr}"
    return done


def _latest_manifest(repo: Path) -> dict:
    folder = repo / "releases" / "adult-income"
    latest = max((p for p in folder.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
    return json.loads((latest / "manifest.json").read_text())


def test_clone_run_commit_run_propose(tmp_path: Path):
    repo = repo_copy(tmp_path / "clone", quick=True)  # the repo's files, committed: a fresh clone
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["gates"] |= {"keras": {"min_accuracy": 0.6, "min_gain_over_majority": None, "max_gap_to_logistic": None},
                        "conversion": {"min_agreement_with_keras": 0.9}}  # one epoch on 1,500 rows: wiring only
    params["fairness"] |= {"sweep": [0], "bootstrap": 50}
    params["gates"]["fairness"] = {"max_demographic_parity_difference": {"sex": 0.5},
                                   "max_equalized_odds_difference": {"sex": 0.8},
                                   "max_group_accuracy_drop": 0.1, "min_group_size": 20}
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    _sh(repo, "git", "commit", "-qam", "small data for this project")

    _sh(repo, CLI, "run")
    # the clone's first run made this developer's signing key; its public half is committed once, as the
    # proposal asks, beside the maintainers' keys
    (repo / "keys" / "dev.pub").write_bytes((repo / "keys" / "private" / "release-signing.pub").read_bytes())
    _sh(repo, "git", "add", "-A")  # everything the run wrote that git does not ignore
    _sh(repo, "git", "commit", "-qm", "first run")
    _sh(repo, CLI, "run", "--force")  # nothing stale (the commit changed no code, data or params): forced
    changed = _sh(repo, "git", "status", "--porcelain").stdout
    assert changed.strip(), "the second run rewrites reports (timings); they must not count as dirty"
    assert _latest_manifest(repo)["lineage"]["git_dirty"] is False
    proposed = _sh(repo, CLI, "release", "propose")
    assert "release/adult-income-2" in proposed.stdout

    # a real change to what produces the model is dirty, and blocks the proposal
    code = repo / "pipelines" / "training" / "train.py"
    code.write_text(code.read_text() + "\n# a local edit\n")
    # the CLI runs this checkout's code (its editable install), not the clone's: the clone's edit changes no code
    # version of the code that runs, so the run is forced; the lineage reads the clone's git state
    edited = _sh(repo, CLI, "run", "--force")
    assert _latest_manifest(repo)["lineage"]["git_dirty"] is True, edited.stdout[-3000:] + edited.stderr[-3000:]
    refused = _sh(repo, CLI, "release", "propose", check=False)
    assert refused.returncode == 1
    assert "built from uncommitted changes" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
