"""Shared fixtures: a small project folder built from slices of the real Adult data."""
from __future__ import annotations

import gzip
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
ADULT = REPO / "data" / "adult"


def write_slice(source: Path, target: Path, rows: int) -> None:
    """The first `rows` lines of a shipped gzip file, as plain text."""
    with gzip.open(source, "rt") as handle:
        lines = [next(handle) for _ in range(rows)]
    target.write_text("".join(lines))


def write_small_project(folder: Path, data_dir: str = ".") -> Path:
    """Write 1,500 + 600 real Adult rows under folder/data_dir and folder/params.yaml (the project's
    params, tuned to run fast, pointing at them); return the params file."""
    (folder / data_dir).mkdir(parents=True, exist_ok=True)
    write_slice(ADULT / "adult.data.gz", folder / data_dir / "train.csv", 1500)
    write_slice(ADULT / "adult.test.gz", folder / data_dir / "test.csv", 600)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["data"]["source"] = str(Path(data_dir) / "train.csv")
    params["data"]["test_source"] = str(Path(data_dir) / "test.csv")
    params["validate"]["min_rows"] = 100
    params["train"]["epochs"] = 2
    params["convert"]["representative_samples"] = 50
    # two epochs check the wiring, not the model: no baseline gates
    params["gates"] |= {"keras": {"min_accuracy": 0.6, "min_gain_over_majority": None, "max_gap_to_logistic": None},
                        "conversion": {"min_agreement_with_keras": 0.9}}
    # 600 test rows: two sweep points, fewer resamples, and fairness gates that check the wiring, not the model
    params["fairness"] |= {"method": "penalty", "sweep": [0], "bootstrap": 50, "strength": 3.0,  # pinned: one round
                           "target": "gate"}
    params["gates"]["fairness"] = {"max_demographic_parity_difference": {"sex": 0.5},  # sex:race groups of ~20 rows
                                   "max_equalized_odds_difference": {"sex": 0.8},  # swing from TPR 0 to 1 by chance
                                   "max_group_accuracy_drop": 0.1, "min_group_size": 20}
    (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return folder / "params.yaml"


@pytest.fixture(autouse=True)
def _no_stale_dagster_instance_state():
    """Each test starts without a current Dagster defs-state storage: an instance a test entered holds it in a
    context variable, and a later Definitions load in the same process would reach for that dead instance."""
    import sys

    if "dagster" not in sys.modules:  # nothing to reset in a test that never imported Dagster
        yield
        return
    from dagster._core.storage.defs_state.base import set_defs_state_storage

    with set_defs_state_storage(None):
        yield


@pytest.fixture
def small_project(tmp_path: Path) -> Path:
    """A project folder with params.yaml pointing at 1,500 + 600 real Adult rows, tuned to run fast."""
    write_small_project(tmp_path)
    return tmp_path


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    """The project's files (no outputs, no venvs) in a git repo of their own whose bin/stage reuses .venv."""
    from benchmarks.projects import repo_copy as copy

    return copy(tmp_path / "repo", quick=False)


@pytest.fixture
def dvc_bin() -> str:
    """The dvc command (DVC lives in its own environment), or skip."""
    from benchmarks.run import find_dvc

    found = find_dvc()
    if not found:
        pytest.skip("dvc is not installed (make test-slow installs it into .venv-dvc)")
    return found
