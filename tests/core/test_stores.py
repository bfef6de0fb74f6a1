"""A corrupt local store (MLflow's SQLite file, the Dagster home) is one line naming it and the way out."""
from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from pipelines.core.errors import PipelineError
from pipelines.core.stores import check_sqlite


def test_a_healthy_or_absent_store_passes(tmp_path: Path):
    check_sqlite(tmp_path / "absent.db", "MLflow store")
    with sqlite3.connect(tmp_path / "good.db") as db:
        db.execute("CREATE TABLE t (x)")
    check_sqlite(tmp_path / "good.db", "MLflow store")


def test_a_corrupt_mlflow_store_is_named_with_the_fix(tmp_path: Path):
    (tmp_path / "params.yaml").write_text("data:\n  source: d.csv\n  label: y\n  positive_label: 1\n"
                                          "  sensitive_features: [s]\n")
    (tmp_path / "mlflow.db").write_bytes(b"this is not a database" * 100)
    from pipelines.core.config import load_settings
    from pipelines.training.tracking import alias_version

    with pytest.raises(PipelineError, match=r"mlflow.db: the MLflow store is corrupt \(file is not a database\); "
                                            r"move it aside \(mv mlflow.db mlflow.db.corrupt\) and run again$"):
        alias_version(load_settings(tmp_path / "params.yaml"), "m", "production")


def test_a_corrupt_dagster_home_stops_the_run_before_it_starts(small_project: Path, monkeypatch):
    from cli.runner import run_all

    home = small_project / ".dagster"
    (home / "history").mkdir(parents=True)
    (home / "history" / "runs.db").write_bytes(b"\x00garbage" * 512)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with pytest.raises(PipelineError, match=r"runs.db: the Dagster home's store is corrupt"):
        run_all(small_project / "params.yaml", {})
    assert not (small_project / "models").exists()
