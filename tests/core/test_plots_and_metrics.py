"""Charts (PNG and DVC plot series), per-stage headline metrics, and MLflow UI links."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import yaml

from pipelines.core.config import load_settings
from pipelines.core.plots import data_uri_markdown
from pipelines.core.step import StepResult, headline_metrics, records_metrics
from pipelines.data.plots import psi_chart
from pipelines.training.plots import confusion_matrix_chart, history_rows, training_plots
from pipelines.training.tracking import model_version_url, run_url

PNG = b"\x89PNG\r\n\x1a\n"


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data.startswith(PNG)
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_confusion_matrix_is_a_small_readable_png(tmp_path: Path):
    target = confusion_matrix_chart([1, 1, 1, 2], 0.5, ("<=50K", ">50K"), tmp_path / "cm.png")  # TN FP FN TP
    width, height = _png_size(target)
    assert 200 < width < 800 and 200 < height < 800
    assert target.stat().st_size < 60_000


def test_training_plots_write_the_dvc_series_and_the_chart(tmp_path: Path):
    history = {"loss": [0.7, 0.6], "accuracy": [0.7, 0.8], "val_loss": [0.65, 0.62], "val_accuracy": [0.72, 0.79]}
    plots = training_plots(tmp_path, history)
    assert _png_size(plots["training curve"])[0] > 300
    rows = list(csv.DictReader((tmp_path / "reports" / "training_history.csv").open()))
    assert [r["epoch"] for r in rows] == ["1", "2"] and float(rows[1]["val_loss"]) == 0.62
    assert history_rows({}) == []


def test_psi_chart_without_a_reference_says_so(tmp_path: Path):
    assert _png_size(psi_chart({}, 0.2, tmp_path / "drift.png", "Drift"))[0] > 100
    markdown = data_uri_markdown(tmp_path / "drift.png", "PSI per feature")
    assert markdown.startswith("![PSI per feature](data:image/png;base64,iVBOR")


def test_headline_metrics_keep_numbers_and_flags_only():
    summary = {"accuracy": 0.8, "rows": 10, "drift": False, "auc": float("nan"), "path": "/x", "run_id": "abc",
               "groups": {"a": 1}}
    assert headline_metrics(summary) == {"accuracy": 0.8, "rows": 10, "drift": False}


def test_records_metrics_writes_the_stage_metrics_file(small_project: Path):
    settings = load_settings(small_project / "params.yaml")

    @records_metrics
    def model_evaluation(loaded, extra: int = 0) -> StepResult:
        return StepResult(summary={"accuracy": 0.75 + extra, "path": "reports/evaluation.json"})

    assert model_evaluation(settings, extra=0).summary["accuracy"] == 0.75
    written = json.loads((small_project / "reports" / "metrics" / "model_evaluation.json").read_text())
    assert written["accuracy"] == 0.75 and "path" not in written
    assert all(isinstance(v, (int, float, bool)) for v in written.values())


def test_mlflow_links_use_the_ui_url_or_the_tracking_server(small_project: Path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    settings = load_settings(small_project / "params.yaml")
    assert run_url(settings, "1", "abc") == "http://127.0.0.1:5000/#/experiments/1/runs/abc"
    assert model_version_url(settings, "adult-income", "3") == "http://127.0.0.1:5000/#/models/adult-income/versions/3"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "https://user:secret@mlflow.example.com/")
    assert run_url(settings, "1", "abc") == "https://mlflow.example.com/#/experiments/1/runs/abc"  # no credentials
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    params = yaml.safe_load((small_project / "params.yaml").read_text())
    params["mlflow"]["ui_url"] = "http://mlflow.internal:8080/"
    (small_project / "params.yaml").write_text(yaml.safe_dump(params))
    assert run_url(load_settings(small_project / "params.yaml"), "2", "r").startswith("http://mlflow.internal:8080/#/")
