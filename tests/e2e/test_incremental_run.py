"""`mobile-mlops run` is incremental: a second run with nothing changed is "up to date" and publishes nothing; an
edit to a governance module reruns only what depends on it; --force redoes everything and publishes nothing new
when the content is the same; the source observation the schedule compares against is recorded."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
GOVERNANCE_MODULE = REPO / "pipelines" / "governance" / "model_card.py"
EXPECTED_AFTER_GOVERNANCE_EDIT = {"governance", "finops", "release"}  # finops sums every stage's measured compute


def _run(project: Path, *extra: str) -> tuple[subprocess.CompletedProcess, float]:
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "DAGSTER_HOME")}
    began = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "cli.main", "run", "--params", "params.yaml", *extra], cwd=project,
                          env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return done, time.perf_counter() - began


def _started(done: subprocess.CompletedProcess) -> set[str]:
    return set(re.findall(r"^  start (\w+)", done.stderr, re.MULTILINE))


def _releases(project: Path) -> list[str]:
    folder = project / "releases" / "adult-income"
    return sorted(p.name for p in folder.iterdir() if p.name.isdigit()) if folder.is_dir() else []


@pytest.mark.slow
def test_unchanged_runs_skip_and_a_governance_edit_reruns_only_its_dependents(small_project: Path):
    from pipelines.catalog import STAGES

    first, _ = _run(small_project)
    assert _started(first) == set(STAGES) and _releases(small_project) == ["1"]
    second, seconds = _run(small_project)
    assert "up to date" in second.stderr and _started(second) == set()
    assert _releases(small_project) == ["1"]
    print(f"second run with nothing changed: {seconds:.1f} s (process start to exit)")
    original = GOVERNANCE_MODULE.read_bytes()
    try:
        GOVERNANCE_MODULE.write_bytes(original + b"\n# an edit to one governance module\n")
        third, _ = _run(small_project)
    finally:
        GOVERNANCE_MODULE.write_bytes(original)
    rerun = _started(third)
    assert rerun and {STAGES[s].group for s in rerun} <= EXPECTED_AFTER_GOVERNANCE_EDIT, rerun
    assert {s for s in rerun if STAGES[s].group in ("data", "training", "mobile")} == set()
    assert "model_card" in rerun and "release_candidate" in rerun
    assert _releases(small_project) == ["1"]  # the model card's code changed, not what it says: same content


@pytest.mark.slow
def test_force_redoes_everything_and_a_missing_output_is_rebuilt(small_project: Path):
    from pipelines.catalog import STAGES
    from pipelines.core.paths import FOOTPRINT_REPORT

    _run(small_project)
    forced, _ = _run(small_project, "--force")
    assert _started(forced) == set(STAGES)
    (small_project / FOOTPRINT_REPORT).unlink()
    again, _ = _run(small_project)
    assert "footprint_report" in _started(again) and "trained_model" not in _started(again)
