"""materialize() smoke test of the whole graph on a small slice of the real data."""
from __future__ import annotations

import json
from pathlib import Path

import yaml
from dagster import DagsterInstance

from assets.build import materialize_all
from cli.runner import _failure_message
from pipelines.core.config import load_settings
from pipelines.release.folder import verify_release


def _materialize(project: Path):
    return materialize_all(load_settings(project / "params.yaml"), instance=DagsterInstance.ephemeral(),
                           raise_on_error=False)


def test_whole_graph_materializes_to_a_verified_release(small_project: Path):
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from pipelines.catalog import STAGES
    from pipelines.core import tracing

    spans, provider = InMemorySpanExporter(), TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    tracing.use(provider)  # the SDK's in-memory exporter: what OTEL_TRACES_EXPORTER=otlp would send
    try:
        result = _materialize(small_project)
    finally:
        tracing.use(None)
    assert result.success
    finished = {span.name: span for span in spans.get_finished_spans()}
    assert sorted(finished) == sorted(f"step {name}" for name in STAGES)  # one span per step, each once
    assert 0.5 < finished["step model_evaluation"].attributes["mobile_mlops.accuracy"] <= 1
    assert finished["step release_candidate"].attributes["mobile_mlops.release_number"] == 1
    releases = list((small_project / "releases" / "adult-income").iterdir())
    assert len(releases) == 1
    # signed with the key pair generated on first use inside the project; its public half is at the committed path
    keys = [small_project / "keys" / "release-signing.pub"]
    manifest = verify_release(releases[0], keys)
    assert (small_project / "keys" / "private" / "release-signing.pem").is_file()
    footprint = json.loads((releases[0] / "footprint.json").read_text())
    android = footprint["platforms"]["android"]
    released = {android["variants"][android["selected"]]["file"], "model_int8.tflite"}  # + the offload device model
    assert released | {"feature_spec.json", "footprint.json", "offload.json"} <= set(manifest.files)
    assert {n for n in manifest.files if n.endswith(".tflite")} == released
    assert any(name.startswith("model.mlpackage/") for name in manifest.files)
    offload = json.loads((releases[0] / "offload.json").read_text())["app_config"]
    assert offload["device_model"] == "model_int8.tflite"
    assert offload["delta"] in yaml.safe_load((small_project / "params.yaml").read_text())["offload"]["deltas"]
    assert manifest.lineage.data_md5 and manifest.lineage.mlflow_run_id
    raw = result.asset_materializations_for_node("raw_dataset")[0]
    from pipelines.core.hashing import dvc_md5

    assert raw.tags["dagster/data_version"] == dvc_md5(small_project / "data/raw/dataset.parquet")
    spec = json.loads((releases[0] / "feature_spec.json").read_text())["spec"]
    excluded = set(spec["excluded"])
    assert {"sex", "race"} <= excluded  # sensitive features are evaluation-only by default
    checks = [e.event_specific_data for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]
    assert {"accuracy_gate", "agreement_gate", "expectations", "footprint_gate", "fairness_gate"} <= {c.check_name for c in checks}
    assert all(c.passed for c in checks), [c.check_name for c in checks if not c.passed]
    fairness = json.loads((small_project / "reports" / "fairness.json").read_text())
    onnx = json.loads((small_project / "reports" / "onnx.json").read_text())
    assert {f"ort_{v}" for v in onnx["variants"]} <= set(fairness["models"])  # ORT variants: fairness-gated too
    assert any(g["name"].startswith("max_demographic_parity_difference[ort_") for g in fairness["gates"])
    # the simple baselines of the same split, in the card and the signed manifest the pull request shows
    card = (releases[0] / "model_card.md").read_text()
    assert "Simple baselines on the same test rows and inputs: Keras accuracy " in card
    assert "logistic regression 0." in card and "majority class 0." in card
    assert set(manifest.metrics["simple_baselines"]) == {"logistic_regression", "majority_class"}
    # the release read the gated stages' verdicts: its manifest lists their blocking gates, judged once upstream
    from pipelines.catalog import verdicts_read
    from pipelines.core.verdict import read_verdict

    verdicts = {name: read_verdict(small_project, name) for name in verdicts_read("release_candidate")}
    assert set(verdicts) == {"validated_dataset", "data_drift", "trained_model", "model_evaluation", "tflite_model",
                             "footprint_report", "fairness_report", "finops_report"}
    judged = [g["name"] for v in verdicts.values() for c in v["checks"] if c["blocking"] for g in c["gates"]]
    assert [g["name"] for g in manifest.metrics["gates"]] == judged and "min_accuracy" in judged
    for check in checks:  # each Dagster check is its stage's verdict entry
        entry = next(c for c in verdicts[check.asset_key.to_user_string()]["checks"] if c["name"] == check.check_name)
        assert (check.passed, check.description) == (entry["passed"], entry["description"])
    # re-running only the release on the same inputs (as `dvc repro` does after a change to release code) publishes
    # nothing new: the candidate's content equals release 1's, which it names
    from pipelines.release.steps import release_candidate

    again = release_candidate(load_settings(small_project / "params.yaml"))
    assert again.summary["release_number"] == 1 and again.summary["model_version"] == manifest.lineage.model_version
    assert sorted(p.name for p in (small_project / "releases" / "adult-income").iterdir()) == ["1"]
    verify_release(small_project / "releases" / "adult-income" / "1", keys)


def test_missing_source_fails_before_training_with_one_line(small_project: Path):
    params = yaml.safe_load((small_project / "params.yaml").read_text())
    params["data"]["source"] = "nowhere.csv"
    (small_project / "params.yaml").write_text(yaml.safe_dump(params))
    result = _materialize(small_project)
    assert not result.success
    assert _failure_message(result) == f"raw_dataset: data.source: file not found: {small_project / 'nowhere.csv'}"
    assert not (small_project / "models").exists()
    assert not (small_project / "releases").exists()


def test_failed_gate_blocks_release(small_project: Path):
    params = yaml.safe_load((small_project / "params.yaml").read_text())
    params["gates"]["keras"]["min_accuracy"] = 0.999
    (small_project / "params.yaml").write_text(yaml.safe_dump(params))
    result = _materialize(small_project)
    assert not result.success
    assert "min_accuracy" in _failure_message(result)
    verdict = json.loads((small_project / "reports/gates/model_evaluation.json").read_text())
    assert _failure_message(result) == verdict["message"]  # the line `mobile-mlops stage` / `dvc repro` stops with
    assert not (small_project / "releases").exists()
    assert not (small_project / "models" / "tflite").exists()
