"""PII never leaves ingestion: run every step on data with PII columns, then search everything the run wrote
(reports, models, the release, the MLflow database and its artifacts) for the values and the column names."""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pandas as pd
import pytest
import yaml

MARKER = "q7f3a9cZpii"  # in every PII value, so any copy of any value is found
PII_COLUMNS = ("customer_email", "national_id")
INPUTS = {"train.csv", "test.csv", "params.yaml"}
CARD_FILES = {"model_card.md", "model_card.json"}  # the privacy section names the dropped columns, by design


def _add_pii(project: Path) -> None:
    for name in ("train.csv", "test.csv"):
        path = project / name
        lines = path.read_text().splitlines()
        path.write_text("".join(line + ("" if line.startswith("|") else  # adult.test's comment line stays as is
                                        f", {MARKER}.{i}@example.org, NID-{MARKER}-{i:05d}") + "\n"
                                for i, line in enumerate(lines)))
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["data"]["columns"] += list(PII_COLUMNS)
    params["data"]["pii"] = list(PII_COLUMNS)
    params["train"]["epochs"] = 1
    params["convert"] |= {"tflite_variants": ["float32", "int8"], "coreml_variants": ["float16"]}
    params["benchmark"] = {"warmup": 0, "runs": 10, "keras_runs": 10, "batch_size": 16, "batch_repeats": 1}
    params["governance"] |= {"importance_rows": 200, "importance_repeats": 1}
    params["gates"]["fairness"] |= {"max_demographic_parity_difference": None, "max_equalized_odds_difference": None}
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def _mlflow_texts(database: Path) -> list[tuple[str, str, str]]:
    """(table, row as text) for every row of every table in the MLflow SQLite store."""
    rows = []
    with sqlite3.connect(database) as connection:
        tables = [t for (t,) in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            for row in connection.execute(f'SELECT * FROM "{table}"'):  # names from sqlite_master
                rows.append((table, str(row[0]) if row else "", " ".join(str(v) for v in row)))
    return rows


@pytest.mark.slow  # every step, MLflow included: about 30 s on 2 cores
def test_pii_columns_reach_no_output(small_project: Path, monkeypatch):
    from pipelines.catalog import STAGES, step_function
    from pipelines.core.config import load_settings

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    _add_pii(small_project)
    settings = load_settings(small_project / "params.yaml")
    for name in STAGES:
        step_function(name)(settings)

    outputs = [p for p in small_project.rglob("*") if p.is_file() and p.name not in INPUTS]
    assert any(p.name == "model_card.md" for p in outputs if "releases" in p.parts)  # the run went to the end
    names_seen = []
    for path in outputs:
        content = path.read_bytes()
        assert MARKER.encode() not in content, f"a PII value is in {path.relative_to(small_project)}"
        if any(column.encode() in content for column in PII_COLUMNS) and path.name != "mlflow.db":
            names_seen.append(path)
        if path.suffix == ".parquet":  # compressed pages could hide a value from a byte search
            frame = pd.read_parquet(path)
            assert not set(PII_COLUMNS) & set(frame.columns), path
            assert not frame.astype(str).apply(lambda c: c.str.contains(MARKER)).any().any(), path
    # the column names appear only where the card says they were dropped
    assert names_seen and {p.name for p in names_seen} <= CARD_FILES, [str(p) for p in names_seen]
    card = json.loads((small_project / "reports" / "model_card.json").read_text())
    assert card["privacy"]["pii_columns"] == list(PII_COLUMNS)
    outside = json.dumps({k: v for k, v in card.items() if k != "privacy"})
    assert not any(column in outside for column in PII_COLUMNS)
    # MLflow: no value anywhere; the names only as the params that list the dropped columns
    for table, key, text in _mlflow_texts(small_project / "mlflow.db"):
        assert MARKER not in text, table
        if any(column in text for column in PII_COLUMNS):
            assert table == "params" and key in {"data.pii", "data.columns"}, (table, key)
    spec = json.loads((small_project / "models" / "trained" / "feature_spec.json").read_text())["spec"]
    inputs = {f["name"] for f in spec["numeric"] + spec["categorical"]}
    assert not set(PII_COLUMNS) & (inputs | set(spec["excluded"]))  # gone before the model saw the data
