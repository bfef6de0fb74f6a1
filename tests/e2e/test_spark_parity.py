"""`engine: spark` (local[2]) against the local engine on the small project (slow): the same data version, the same
splits row for row, the same profile, the same release gates, and a release `mobile-mlops verify` accepts."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pipelines.core.hashing import dvc_md5, tree_sha256
from pipelines.core.paths import ArtifactPaths
from tests.conftest import write_small_project

pytestmark = pytest.mark.slow
CLI = [sys.executable, "-m", "cli.main"]


def _run(folder: Path, engine: str) -> Path:
    write_small_project(folder)
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "DAGSTER_HOME")}
    done = subprocess.run([*CLI, "run", "--params", "params.yaml", "--set", f"engine={engine}", "--set",
                           "spark.master=local[2]", "--set", "spark.driver_memory=1g", "--set", "data.batch_rows=700"],
                          cwd=folder, capture_output=True, text=True, timeout=1800, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    return folder


def _close(a: Any, b: Any, path: str = "") -> None:
    """Equal structure, text and counts; numbers within 1e-9."""
    assert type(a) is type(b) or {type(a), type(b)} <= {int, float}, path
    if isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for key in a:
            _close(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _close(x, y, f"{path}[{i}]")
    elif isinstance(a, float | int) and not isinstance(a, bool):
        assert math.isclose(a, b, rel_tol=0, abs_tol=1e-9), (path, a, b)
    else:
        assert a == b, (path, a, b)


def _verdicts(folder: Path) -> dict[str, Any]:
    """Every stage's gates: which passed (figures of timed gates, such as latency, differ from run to run)."""
    found = {}
    for record in sorted((folder / "reports" / "gates").glob("*.json")):
        content = json.loads(record.read_text())
        found[record.stem] = (content["passed"], {check["name"]: (check["passed"], {
            gate["name"]: gate["passed"] for gate in check.get("gates", [])}) for check in content["checks"]})
    return found


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return {engine: _run(tmp_path_factory.mktemp(engine), engine) for engine in ("local", "spark")}


def test_same_data_version_and_splits(runs: dict[str, Path]) -> None:
    local, spark = (ArtifactPaths(runs[e]) for e in ("local", "spark"))
    assert dvc_md5(spark.raw_dataset) == dvc_md5(local.raw_dataset)  # the data version both engines report
    assert dvc_md5(spark.validated_dataset) == dvc_md5(local.validated_dataset)
    assert tree_sha256(spark.dataset_splits) == tree_sha256(local.dataset_splits)  # same rows, same order
    metrics = [json.loads((runs[e] / "reports" / "metrics" / "dataset_splits.json").read_text()) for e in runs]
    sizes = [{k: v for k, v in m.items() if k.endswith("_rows")} for m in metrics]
    assert sizes[0] == sizes[1] and sum(sizes[0].values()) > 1900


def test_same_profile_and_reports(runs: dict[str, Path]) -> None:
    local, spark = (ArtifactPaths(runs[e]) for e in ("local", "spark"))
    _close(json.loads(spark.data_profile.read_text()), json.loads(local.data_profile.read_text()))
    assert spark.data_profile.read_bytes() == local.data_profile.read_bytes()
    assert spark.validation_report.read_bytes() == local.validation_report.read_bytes()


def test_same_gates_and_the_release_verifies(runs: dict[str, Path]) -> None:
    assert _verdicts(runs["spark"]) == _verdicts(runs["local"])
    assert _verdicts(runs["spark"])["validated_dataset"][0] is True
    release = next((runs["spark"] / "releases").glob("*/*"))
    done = subprocess.run([*CLI, "verify", str(release)], cwd=runs["spark"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
