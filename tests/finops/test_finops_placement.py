"""Decision matrix (on-device / hybrid / cloud), the offload endpoint's labels, FinOps tags in the manifest."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from pipelines.core.config import Params
from pipelines.finops.endpoint import (
    LABEL_PREFIX,
    endpoint_manifests,
    label_value,
    render_manifests,
)
from pipelines.finops.placement import (
    decision_matrix,
    matrix_table,
    mode_shares,
    privacy_class,
)
from pipelines.release.folder import build_manifest, load_manifest

PARAMS = Params.model_validate({"data": {"source": "x.csv", "label": "y", "positive_label": "1",
                                         "sensitive_features": ["s"]}})
K8S_LABEL = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def _variant(accuracy: float, p95_ms: float = 0.01, energy_mj: float = 0.02, battery: float = 1e-6) -> dict:
    estimate = {"p95_ms": p95_ms, "energy_mj": energy_mj, "daily_battery_share": battery}
    return {"size_bytes": 12_000, "accuracy": accuracy, "estimates": {t: estimate for t in ("low", "mid", "high")}}


def _ctx(gain: float = 0.01, released=None) -> dict:
    released = released if released is not None else _variant(0.85)
    return {"released": {"android": released}, "privacy": "internal", "cloud_usd": {"android": 10.0},
            "hybrid": {"variant": _variant(0.84), "accuracy": 0.85 + gain, "monthly_usd": 1.0}}


def _cells(matrix: list[dict]) -> dict:
    return {(c["tier"], c["connectivity"]): c["mode"] for c in matrix}


def test_hybrid_where_the_cloud_is_fast_enough_and_the_gain_pays():
    cells = _cells(decision_matrix(_ctx(gain=0.01), PARAMS))
    # wifi 40 ms + 50 ms <= 100 ms target; cellular 120 + 50 > 100; offline is always on-device
    assert cells[("low", "wifi")] == "hybrid"
    assert cells[("low", "cellular")] == "on-device"
    assert cells[("high", "offline")] == "on-device"


def test_on_device_when_the_hybrid_gains_too_little():
    matrix = decision_matrix(_ctx(gain=0.0001), PARAMS)
    assert set(_cells(matrix).values()) == {"on-device"}
    assert "hybrid adds +0.0001 accuracy < 0.001" in matrix[0]["reason"]


def test_pii_keeps_inference_on_the_device():
    pii = PARAMS.model_copy(update={"data": PARAMS.data.model_copy(update={"pii": ["name"]})})
    assert privacy_class(pii) == "pii" and privacy_class(PARAMS) == "internal"
    ctx = _ctx(gain=0.05) | {"privacy": "pii"}
    assert set(_cells(decision_matrix(ctx, pii)).values()) == {"on-device"}


def test_cloud_when_on_device_breaks_the_battery_budget_and_none_when_offline():
    hungry = _variant(0.85, battery=0.05)  # 5% of the battery per day > 1%
    ctx = {"released": {"android": hungry}, "privacy": "internal", "cloud_usd": {"android": 10.0}, "hybrid": None}
    matrix = decision_matrix(ctx, PARAMS)
    cells = _cells(matrix)
    assert cells[("mid", "wifi")] == "cloud" and cells[("mid", "cellular")] == "none"  # 170 ms > 100 ms
    assert cells[("mid", "offline")] == "none"
    assert "battery 5.00%/day > 1.00%" in next(c["reason"] for c in matrix if c["connectivity"] == "offline")
    over_budget = ctx | {"cloud_usd": {"android": 500.0}}  # > gates.budgets.max_monthly_usd 100
    assert _cells(decision_matrix(over_budget, PARAMS))[("mid", "wifi")] == "none"


def test_mode_shares_weight_tiers_and_connectivity():
    matrix = decision_matrix(_ctx(gain=0.01), PARAMS)
    shares = mode_shares(matrix, {"low": 0.5, "mid": 0.25, "high": 0.25}, {"wifi": 0.6, "cellular": 0.3, "offline": 0.1})
    assert shares["android"]["hybrid"] == pytest.approx(0.6) and shares["android"]["on-device"] == pytest.approx(0.4)
    assert "| android | low | **hybrid**" in matrix_table(matrix)


def test_endpoint_manifests_carry_the_finops_tags_as_valid_labels():
    text = render_manifests(endpoint_manifests(PARAMS, "adult-income", "7"))
    assert "# build: mlflow models build-docker -m models:/adult-income/7 -n mobile-mlops-offload:7" in text
    assert "# serve: mlflow models serve -m models:/adult-income/7 --env-manager local" in text
    deployment, service = list(yaml.safe_load_all(text))
    assert (deployment["kind"], service["kind"]) == ("Deployment", "Service")
    expected = {"project": "mobile-mlops", "owner": "team_ml-platform", "cost_center": "ml-platform", "environment": "dev"}
    for labels in (deployment["metadata"]["labels"], deployment["spec"]["template"]["metadata"]["labels"],
                   service["metadata"]["labels"]):
        assert {k.removeprefix(LABEL_PREFIX): v for k, v in labels.items() if k.startswith(LABEL_PREFIX)} == expected
        assert all(K8S_LABEL.match(v) and len(v) <= 63 for v in labels.values())
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "mobile-mlops-offload:7"
    assert container["resources"]["requests"] == {"cpu": "500m", "memory": "512Mi"}
    assert deployment["metadata"]["annotations"][f"{LABEL_PREFIX}owner"] == "team:ml-platform"
    assert deployment["metadata"]["annotations"][f"{LABEL_PREFIX}model"] == "models:/adult-income/7"
    assert label_value("alice@example.com") == "alice_example.com" and label_value("-x:") == "x"


def test_release_manifest_carries_the_finops_tags(tmp_path: Path):
    (tmp_path / "model.tflite").write_bytes(b"x")
    lineage = {"data_md5": {}, "raw_dataset_md5": "m", "git_commit": "c", "git_dirty": False, "params_sha256": "p",
               "mlflow_run_id": "r", "model_name": "n", "model_version": "1"}
    build_manifest(tmp_path, lineage, {}, tags=PARAMS.project.tags())
    assert load_manifest(tmp_path).tags == {"project": "mobile-mlops", "owner": "team:ml-platform",
                                            "cost_center": "ml-platform", "environment": "dev"}


def test_pull_request_report_summarizes_the_cost_report():
    from pipelines.release.gitops.tables import summarize

    pair = {"candidate": 3.0, "production": 2.5, "delta": 0.5}
    content = {"schema": "mobile-mlops/cost-report/v1",
               "release": {"serving_usd": 3.0, "training_usd_per_month": 0.01, "monthly_usd": 3.01,
                           "platforms": {"android": {"device_mb_per_month": 0.02, "mode_shares": {"on-device": 1.0}}}},
               "delta_vs_production": {"reference": "production release 6", "serving_usd": pair,
                                       "device_mb_per_month": {"android": {"production": 0.05}}},
               "budgets": {"blocking": True, "verdicts": [{"passed": False, "detail": "monthly cost $3.01 exceeds"}]}}
    text = summarize(content, None, "production v6")
    assert "| serving $/month (downloads + cloud) | 3.0000 | 2.5000 | +0.5000 |" in text
    assert "| android MB per device per month | 0.0200 | 0.0500 | -0.0300 |" in text
    assert "Budgets: **over**: monthly cost $3.01 exceeds" in text
