"""The footprint budget check is blocking: over budget, the release candidate never runs."""
from __future__ import annotations

import json
from pathlib import Path

import yaml
from dagster import DagsterEventType, DagsterInstance

from assets.build import materialize_all
from cli.runner import _failure_message
from pipelines.core.config import load_settings
from pipelines.core.paths import MLFLOW_RECORD_FILE, ArtifactPaths
from pipelines.training.tracking import tracking_uri

GROUPS = {"sex": {"demographic_parity_difference": 0.1, "accuracy_gap": 0.05}}
LATENCY = {"p50_ms": 0.01, "p95_ms": 0.02, "mean_ms": 0.012, "batch_rows_per_s": 1e6}


def _variant(size: int, **extra) -> dict:
    return {"size_bytes": size, "accuracy": 0.85, "auc": 0.9, "agreement_with_keras": 1.0, "precision": "x",
            "groups": GROUPS, **extra}


def _project(root: Path, max_bytes: int, fairness_gates: list | None = None) -> Path:
    """Params plus the upstream files footprint_report reads (as the mobile and governance steps write them)."""
    params = {"data": {"source": "none.csv", "label": "y", "positive_label": "1", "sensitive_features": ["sex"]},
              "gates": {"on_device": {"max_bytes": max_bytes}}}
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    settings = load_settings(root / "params.yaml")
    paths = ArtifactPaths(root)
    import mlflow

    client = mlflow.MlflowClient(tracking_uri(settings))
    run = client.create_run(client.create_experiment("t", artifact_location=(root / "art").as_uri()))
    paths.trained_model.mkdir(parents=True)
    (paths.trained_model / MLFLOW_RECORD_FILE).write_text(json.dumps({"run_id": run.info.run_id}))
    paths.tflite_report.parent.mkdir(parents=True, exist_ok=True)
    paths.tflite_report.write_text(json.dumps({
        "host": {"cpu": "test"}, "keras": {"accuracy": 0.85, "auc": 0.9, "groups": GROUPS, "latency": LATENCY},
        "variants": {"float32": _variant(40000, file="model_float32.tflite", latency=LATENCY,
                                         keras_to_litert_p50_ratio=100.0),
                     "int8": _variant(39000, file="model_int8.tflite", latency=LATENCY,
                                      keras_to_litert_p50_ratio=100.0)}}))
    paths.fairness_report.parent.mkdir(parents=True, exist_ok=True)
    paths.fairness_report.write_text(json.dumps({"gates": fairness_gates or []}))
    paths.coreml_report.write_text(json.dumps({"variants": {"float16": _variant(21000, package="model_float16.mlpackage")}}))
    paths.onnx_report.write_text(json.dumps({"variants": {"dynamic_int8": _variant(
        20000, file="model_dynamic_int8.ort", gzip_bytes=12000, latency=LATENCY)}}))
    return root / "params.yaml"


def _run(params: Path):
    return materialize_all(load_settings(params), instance=DagsterInstance.ephemeral(), raise_on_error=False,
                           selection=["footprint_report", "release_candidate"])


def test_over_budget_blocks_the_release(tmp_path: Path):
    result = _run(_project(tmp_path, max_bytes=30000))  # float32 TFLite is 40,000 bytes, int8 39,000
    assert not result.success
    (check,) = [e.event_specific_data for e in result.all_events if e.event_type == DagsterEventType.ASSET_CHECK_EVALUATION]
    assert check.check_name == "footprint_gate" and not check.passed
    assert "size in bytes 40000 exceeds gates.on_device.max_bytes = 30000" in check.description
    gates = check.metadata["gates"].value
    assert "| android/float32 max_bytes | 40000.0000 | 30000.0000 | FAIL |" in gates
    assert _failure_message(result).startswith(
        "gate footprint_gate failed on footprint_report: android: none of float32, int8 passes every gate")
    ran = {e.step_key for e in result.all_events if e.event_type == DagsterEventType.STEP_START}
    assert "footprint_report" in ran and "release_candidate" not in ran  # blocked, never started
    assert not (tmp_path / "releases").exists()
    report = json.loads((tmp_path / "reports" / "footprint.json").read_text())
    assert report["platforms"]["android"]["selected"] is None and report["platforms"]["ios"]["selected"] == "float16"


def test_within_budget_the_check_passes_with_measured_vs_budget(tmp_path: Path):
    params = _project(tmp_path, max_bytes=50000)
    result = materialize_all(load_settings(params), instance=DagsterInstance.ephemeral(), selection=["footprint_report"])
    (check,) = [e.event_specific_data for e in result.all_events if e.event_type == DagsterEventType.ASSET_CHECK_EVALUATION]
    assert check.passed
    assert "| ios/float16 max_bytes | 21000.0000 | 50000.0000 | pass |" in check.metadata["gates"].value
    metadata = result.asset_materializations_for_node("footprint_report")[0].metadata
    assert metadata["android_released"].value == "int8"  # the smaller download
    assert metadata["chart"].value.startswith("![size and latency](data:image/png;base64,")
    assert "estimate derived from measured host latency" in metadata["variants"].value


def test_a_variant_failing_its_fairness_gates_is_not_released(tmp_path: Path):
    unfair = {"name": "max_demographic_parity_difference[int8/sex]", "passed": False, "measured": 0.2,
              "threshold": 0.1, "detail": "int8 sex: demographic parity difference 0.2000 exceeds the limit"}
    fair = {**unfair, "name": "max_demographic_parity_difference[ort_dynamic_int8/sex]", "passed": True,
            "measured": 0.05, "detail": "ort_dynamic_int8 sex: within"}
    params = _project(tmp_path, max_bytes=50000, fairness_gates=[unfair, fair])
    result = materialize_all(load_settings(params), instance=DagsterInstance.ephemeral(), selection=["footprint_report"])
    assert result.success
    report = json.loads((tmp_path / "reports" / "footprint.json").read_text())
    android = report["platforms"]["android"]
    assert android["selected"] == "float32"  # int8 is smaller, but failed a fairness gate
    assert android["variants"]["int8"]["failed_gates"] == [unfair["detail"]]
    assert report["platforms"]["onnxruntime"]["variants"]["dynamic_int8"]["passed"]
    assert "fairness_gates" not in report["platforms"]["ios"]["variants"]["float16"]  # Core ML is not scored here
