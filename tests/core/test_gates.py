"""Release gates: verdicts with reasons, and the stop at the first failure."""
from __future__ import annotations

import pytest

from pipelines.core.config import ConversionGates, KerasGates
from pipelines.core.errors import PipelineError
from pipelines.core.gates import model_gates, require_all, variant_gates

KERAS, CONVERSION = KerasGates(min_accuracy=0.8), ConversionGates(min_agreement_with_keras=0.97)


def test_model_gate_passes_at_and_above_the_threshold():
    for accuracy in (0.8, 0.85):
        (result,) = model_gates({"overall": {"accuracy": accuracy}}, KERAS)
        assert result.name == "min_accuracy"
        assert result.passed
        assert result.measured == accuracy and result.threshold == 0.8
        assert f"{accuracy:.4f}" in result.detail and "0.8000" in result.detail
        assert "below" not in result.detail


def test_model_gate_fails_below_the_threshold_and_says_why():
    (result,) = model_gates({"overall": {"accuracy": 0.75}}, KERAS)
    assert not result.passed
    # the reason states what was measured, against which threshold, and that it fell short
    assert result.detail.startswith("test accuracy 0.7500 is below")
    assert "0.8000" in result.detail
    as_dict = result.as_dict()
    assert {k: as_dict[k] for k in ("name", "passed", "measured", "threshold")} == {
        "name": "min_accuracy", "passed": False, "measured": 0.75, "threshold": 0.8,
    }
    assert as_dict["detail"] == result.detail


def test_variant_gates_one_per_variant():
    report = {"variants": {"float32": {"agreement_with_keras": 0.995}, "int8": {"agreement_with_keras": 0.9}}}
    results = {r.name: r for r in variant_gates(report, CONVERSION)}
    assert set(results) == {"min_agreement[float32]", "min_agreement[int8]"}
    assert results["min_agreement[float32]"].passed
    assert not results["min_agreement[int8]"].passed
    assert results["min_agreement[int8]"].threshold == 0.97
    assert results["min_agreement[int8]"].detail.startswith("int8 agreement 0.9000 is below")


def test_require_all_passes_silently_when_every_gate_passes():
    report = {"variants": {"float32": {"agreement_with_keras": 1.0}}}
    require_all(model_gates({"overall": {"accuracy": 0.9}}, KERAS) + variant_gates(report, CONVERSION))


def test_require_all_raises_naming_the_failed_gate():
    report = {"variants": {"float32": {"agreement_with_keras": 1.0}, "int8": {"agreement_with_keras": 0.5}}}
    results = model_gates({"overall": {"accuracy": 0.9}}, KERAS) + variant_gates(report, CONVERSION)
    with pytest.raises(PipelineError, match=r"gate min_agreement\[int8\] failed: int8 agreement 0.5000 is below"):
        require_all(results)


def test_require_all_names_the_first_failure():
    report = {"variants": {"int8": {"agreement_with_keras": 0.5}}}
    results = model_gates({"overall": {"accuracy": 0.1}}, KERAS) + variant_gates(report, CONVERSION)
    with pytest.raises(PipelineError, match="gate min_accuracy failed"):
        require_all(results)


def test_baseline_gates_name_both_figures():
    from pipelines.core.config import KerasGates

    evaluation = {"overall": {"accuracy": 0.71},
                  "baselines": {"majority_class": {"class": 0, "accuracy": 0.70},
                                "logistic_regression": {"accuracy": 0.76, "auc": 0.8}}}
    results = {g.name: g for g in model_gates(evaluation, KerasGates())}
    assert set(results) == {"min_gain_over_majority", "max_gap_to_logistic"}  # no floor unless params set one
    assert results["min_gain_over_majority"].passed  # 0.71 >= 0.70 + 0.01
    gap = results["max_gap_to_logistic"]
    assert not gap.passed and gap.threshold == pytest.approx(0.73)
    assert gap.detail == ("test accuracy 0.7100 is more than gates.keras.max_gap_to_logistic = 0.0300 below "
                          "logistic regression's 0.7600 (same split and inputs)")
    learned_nothing = {**evaluation, "overall": {"accuracy": 0.70}}
    majority = {g.name: g for g in model_gates(learned_nothing, KerasGates())}["min_gain_over_majority"]
    assert not majority.passed and "does not beat the majority-class rate 0.7000" in majority.detail
