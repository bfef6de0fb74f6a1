"""Device-tier arithmetic, the selection rule, footprint budgets as gates, and the report files."""
from __future__ import annotations

import copy

import pytest

from pipelines.core.config import DeviceTier, OnDeviceGates, Params
from pipelines.core.errors import PipelineError
from pipelines.core.gates import (
    GateResult,
    footprint_gates,
    on_device_gates,
    select_variant,
)
from pipelines.mobile.footprint import (
    LABEL,
    build_footprint,
    footprint_chart,
    footprint_rows,
    footprint_table,
    tier_estimate,
)

GROUPS = {"sex": {"demographic_parity_difference": 0.10, "accuracy_gap": 0.05}}


def _latency(p50: float, p95: float, mean: float) -> dict:
    return {"p50_ms": p50, "p95_ms": p95, "mean_ms": mean, "batch_rows_per_s": 1e6}


def synthetic_reports() -> tuple[dict, dict]:
    """tflite.json and coreml.json as the mobile steps write them, with round numbers."""
    def variant(size, accuracy, agreement, dpd, latency=None, **extra):
        facts = {"size_bytes": size, "accuracy": accuracy, "auc": 0.9, "agreement_with_keras": agreement,
                 "precision": "x", "groups": {"sex": {"demographic_parity_difference": dpd, "accuracy_gap": 0.05}}, **extra}
        if latency:
            facts |= {"latency": latency, "keras_to_litert_p50_ratio": 100.0}
        return facts

    tflite = {
        "host": {"cpu": "test cpu"},
        "keras": {"accuracy": 0.85, "auc": 0.9, "groups": GROUPS, "latency": _latency(1.0, 2.0, 1.2)},
        "variants": {
            "float32": variant(40000, 0.85, 1.0, 0.10, _latency(0.010, 0.020, 0.012), file="model_float32.tflite"),
            "float16": variant(20000, 0.85, 1.0, 0.10, _latency(0.010, 0.020, 0.012), file="model_float16.tflite"),
            "int8": variant(10000, 0.84, 0.98, 0.10, _latency(0.008, 0.016, 0.010), file="model_int8.tflite"),
        },
    }
    coreml = {"variants": {
        "float16": variant(21000, 0.85, 1.0, 0.10, package="model_float16.mlpackage"),
        "palette6": variant(12000, 0.849, 0.995, 0.11, package="model_palette6.mlpackage"),
        "palette4": variant(9000, 0.85, 0.995, 0.20, package="model_palette4.mlpackage"),  # parity gap too wide
    }}
    return tflite, coreml


def params(**footprint) -> Params:
    tiers = {"low": {"slowdown": 10.0, "active_power_w": 2.0, "battery_mah": 1000, "battery_voltage": 4.0,
                     "inferences_per_day": 1000}}
    return Params.model_validate({"data": {"source": "x.csv", "label": "y", "positive_label": "1",
                                           "sensitive_features": ["sex"]},
                                  "devices": {"tiers": tiers},
                                  "gates": {"on_device": {"max_p95_ms": {"low": 1.0}, **footprint}}})


def _sections(p: Params):
    return p.devices, p.gates.on_device


def test_tier_estimate_matches_hand_arithmetic():
    tier = DeviceTier(slowdown=10, active_power_w=2.0, battery_mah=1000, battery_voltage=4.0, inferences_per_day=1000)
    estimate = tier_estimate(_latency(0.01, 0.02, 0.012), tier)
    assert estimate["p50_ms"] == pytest.approx(0.1) and estimate["p95_ms"] == pytest.approx(0.2)
    assert estimate["energy_mj"] == pytest.approx(0.2)  # 2 W x 0.1 ms: the median, not the mean (0.12 ms)
    assert estimate["daily_energy_j"] == pytest.approx(0.2)  # 0.2 mJ x 1,000 a day
    # 1,000 mAh x 4 V = 4 Wh = 14,400 J
    assert estimate["daily_battery_share"] == pytest.approx(0.2 / 14400)
    assert estimate["label"] == LABEL == "estimate derived from measured host latency"


def _gate(passed: bool) -> GateResult:
    return GateResult("g", passed, 0.0, 0.0, "")


def test_selection_takes_the_smallest_variant_passing_every_gate():
    sizes = {"float32": 400, "float16": 200, "int8": 100, "int4": 50}
    verdicts = {"float32": [_gate(True)], "float16": [_gate(True), _gate(True)],
                "int8": [_gate(True), _gate(False)], "int4": [_gate(False)]}
    assert select_variant(sizes, verdicts) == "float16"
    verdicts["int8"] = [_gate(True)]
    assert select_variant(sizes, verdicts) == "int8"
    assert select_variant({"a": 10, "b": 10}, {"a": [_gate(True)], "b": [_gate(True)]}) == "a"  # tie: first listed
    assert select_variant(sizes, {name: [_gate(False)] for name in sizes}) is None


def test_on_device_gates_cover_accuracy_agreement_fairness_and_budgets():
    variant = build_footprint(*synthetic_reports(), *_sections(params()))["platforms"]["android"]["variants"]["int8"]
    gates = {g.name: g for g in on_device_gates(variant, {"accuracy": 0.85, "groups": GROUPS}, params().gates.on_device)}
    assert set(gates) == {"max_accuracy_drop", "min_agreement", "max_parity_increase[sex]", "max_bytes",
                          "max_p95_ms[low]", "max_energy_mj[low]"}
    assert not gates["max_accuracy_drop"].passed and gates["max_accuracy_drop"].measured == pytest.approx(0.01)
    assert not gates["min_agreement"].passed
    assert gates["max_p95_ms[low]"].measured == pytest.approx(0.16) and gates["max_p95_ms[low]"].passed
    assert gates["max_energy_mj[low]"].measured == pytest.approx(0.16)  # power x median (0.008 ms x slowdown)
    assert gates["max_bytes"].detail == "size in bytes 10000 is within gates.on_device.max_bytes = 262144"


def test_build_footprint_releases_the_smallest_passing_variant_per_platform():
    report = build_footprint(*synthetic_reports(), *_sections(params()))
    assert report["platforms"]["android"]["selected"] == "float16"  # int8 fails accuracy and agreement
    assert report["platforms"]["ios"]["selected"] == "palette6"  # palette4 raises the parity gap by 0.10
    int8 = report["platforms"]["android"]["variants"]["int8"]
    assert int8["size_vs_float"] == pytest.approx(0.25) and not int8["passed"]
    assert int8["estimates"]["low"]["label"] == LABEL
    assert report["platforms"]["ios"]["variants"]["palette4"]["estimates"] is None
    assert all(g.passed for g in footprint_gates(report, params().gates.on_device))


def test_footprint_budgets_block_when_no_variant_fits():
    report = build_footprint(*synthetic_reports(), *_sections(params()))
    gates = footprint_gates(report, params(max_bytes=5000).gates.on_device)
    failed = [g for g in gates if not g.passed]
    assert failed[0].name == "android released variant"
    assert failed[0].detail == "android: none of float32, float16, int8 passes every gate"
    budget = next(g for g in failed if g.name == "android/float16 max_bytes")
    assert (budget.measured, budget.threshold) == (20000, 5000)
    assert "exceeds gates.on_device.max_bytes = 5000" in budget.detail
    slow = footprint_gates(report, params(max_p95_ms={"low": 0.1}).gates.on_device)
    assert any(g.name == "android/float16 max_p95_ms[low]" and g.measured == pytest.approx(0.2) for g in slow)
    assert not any(g.name.startswith("ios") and not g.passed for g in slow)  # Core ML has no latency estimate


def test_a_tier_without_a_latency_budget_is_a_config_error():
    report = build_footprint(*synthetic_reports(), *_sections(params()))
    config = OnDeviceGates(max_p95_ms={"mid": 1.0})
    with pytest.raises(PipelineError, match="gates.on_device.max_p95_ms: no budget for device tier 'low'"):
        footprint_gates(report, config)


def test_report_table_rows_and_chart():
    report = build_footprint(*synthetic_reports(), *_sections(params()))
    table = footprint_table(report)
    assert "| android | float16 | 19.5 | nan | 0.50 |" in table and "**released**" in table  # no gzip measured
    assert LABEL in table and "low p95 ms*" in table
    rows = footprint_rows(report)
    assert len(rows) == 6 and [r["variant"] for r in rows if r["released"]] == ["float16", "palette6"]
    png = footprint_chart(copy.deepcopy(report))
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) < 100_000


def test_onnxruntime_platform_and_download_bytes_rank_variants():
    """With gzip bytes measured the smallest download is released (a pruned file is as large as its parent);
    the onnx_model report adds the onnxruntime platform."""
    from pipelines.core.gates import download_sizes

    tflite, coreml = synthetic_reports()
    tflite["variants"]["pruned50_float16"] = {**tflite["variants"]["float16"], "gzip_bytes": 9000, "sparsity": 0.5}
    tflite["variants"]["float16"]["gzip_bytes"] = 18000
    onnx = {"variants": {"float32": {**tflite["variants"]["float32"], "file": "model_float32.ort", "gzip_bytes": 30000},
                         "dynamic_int8": {**tflite["variants"]["float32"], "size_bytes": 15000, "gzip_bytes": 9000,
                                          "file": "model_dynamic_int8.ort"}}}
    for facts in onnx["variants"].values():
        facts.pop("keras_to_litert_p50_ratio")  # onnx_model leaves the ratio to the footprint
    report = build_footprint(tflite, coreml, *_sections(params()), onnx)
    android = report["platforms"]["android"]
    assert android["selected"] == "pruned50_float16" and android["variants"]["pruned50_float16"]["sparsity"] == 0.5
    assert download_sizes(android["variants"])["float32"] == 40000  # no gzip measured: the file bytes
    ort = report["platforms"]["onnxruntime"]
    assert ort["format"] == "onnx" and ort["selected"] == "dynamic_int8"
    assert ort["variants"]["dynamic_int8"]["size_vs_float"] == pytest.approx(15000 / 40000)
    assert ort["variants"]["dynamic_int8"]["keras_to_litert_p50_ratio"] == pytest.approx(100.0)  # 1.0 / 0.010 ms
    assert all(g.passed for g in footprint_gates(report, params().gates.on_device))
    assert [r["gzip_bytes"] for r in footprint_rows(report) if r["platform"] == "onnxruntime"] == [30000, 9000]
    assert "| onnxruntime | dynamic_int8 |" in footprint_table(report)
