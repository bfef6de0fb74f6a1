"""`fairness.strength: auto`: the most accurate validation point within the gate's limit and the accuracy gates,
an adaptive sweep, and the fairness gate's one line when no strength meets both."""
from __future__ import annotations

from pathlib import Path

import yaml

from pipelines.core.config import FairnessConfig, FairnessGates, KerasGates, load_settings
from pipelines.training import strength as choice

KEY = "demographic_parity_difference"


def point(strength: float, accuracy: float, disparity: float | None) -> dict:
    return {"strength": strength, "accuracy": accuracy, KEY: disparity}


def test_the_most_accurate_point_within_the_limit_is_chosen():
    points = [point(0, 0.85, 0.20), point(1, 0.84, 0.09), point(2, 0.84, 0.05), point(4, 0.80, 0.01)]
    best, why = choice.choose(points, 0.1, KEY)
    assert best["strength"] == 1  # tie on accuracy with 2: the weaker mitigation
    assert why == ("strength 1: the most accurate on the validation rows (0.8400) with demographic parity "
                   "difference 0.0900 <= 0.1 on the training and validation rows")
    one_class = [point(0, 0.90, 0.0) | {"one_class": True}, point(1, 0.84, 0.09)]
    assert choice.choose(one_class, 0.1, KEY)[0]["strength"] == 1  # answering one class is never chosen
    assert choice.choose(points, None, KEY)[0]["strength"] == 0  # no limit for this grouping: no mitigation needed


def test_no_point_within_the_limit_extends_then_keeps_the_least_disparate_and_says_so():
    points = [point(0, 0.85, 0.30), point(1, 0.84, None), point(2, 0.83, 0.20)]
    assert choice.choose(points, 0.1, KEY) == (None, "")
    assert not any(choice.fair(p, 0.1, KEY) for p in points)  # the sweep then tries stronger points
    assert choice.extension([0.0, 1.0, 2.0]) == [4.0, 8.0, 16.0] and choice.extension([0.0]) == [1.0, 2.0, 4.0]
    best, why = choice.none_within(points, 0.1, KEY)
    assert best["strength"] == 2
    assert why == ("no strength meets demographic parity difference <= 0.1 on the validation rows (disparity on the "
                   "training and validation rows): strength 0 reaches 0.8500 at 0.3000, strength 1 reaches 0.8400 at "
                   "undefined, strength 2 reaches 0.8300 at 0.2000; strength 2 (the least disparate) is kept, not released")


# Boston's validation points (measured: examples/boston-mortgage, race:male, 143 validation rows)
BOSTON = [point(0, 0.9021, 0.2541), point(1, 0.9021, 0.1300), point(2, 0.8951, 0.0393),
          point(4, 0.8741, 0.0159) | {"one_class": True}]


def test_the_accuracy_floor_is_the_highest_keras_gate_on_the_validation_baselines():
    floor, text = choice.accuracy_floor(KerasGates(), logistic=0.9091, majority=0.8741)
    assert round(floor, 4) == 0.8841  # majority + 0.01 is above logistic - 0.03 = 0.8791
    assert text == "accuracy within 0.03 of logistic regression (0.9091), 0.01 above the majority class (0.8741)"
    floor, text = choice.accuracy_floor(KerasGates(min_accuracy=0.95), logistic=0.9091, majority=0.8741)
    assert floor == 0.95 and text.startswith("accuracy >= 0.95, accuracy within 0.03")
    none = KerasGates(min_gain_over_majority=None, max_gap_to_logistic=None)
    assert choice.accuracy_floor(none, 0.9, 0.8) == (None, "")


def test_auto_chooses_within_both_the_fairness_limit_and_the_accuracy_floor():
    floor, text = choice.accuracy_floor(KerasGates(), logistic=0.9091, majority=0.8741)
    best, why = choice.choose(BOSTON, 0.1, KEY, floor, text)
    assert best["strength"] == 2  # 0 and 1 are more accurate but over the limit; 4 answers one class
    assert why.endswith("<= 0.1 on the training and validation rows, and accuracy within 0.03 of logistic "
                        "regression (0.9091), 0.01 above the majority class (0.8741) on the validation rows")
    assert choice.choose(BOSTON, None, KEY, floor, text)[0]["strength"] == 0  # no limit: the most accurate
    too_accurate = KerasGates(max_gap_to_logistic=0.01)  # floor 0.8991: strength 2 (0.8951) misses it
    floor, text = choice.accuracy_floor(too_accurate, logistic=0.9091, majority=0.8741)
    assert choice.choose(BOSTON, 0.1, KEY, floor, text) == (None, "")
    assert any(choice.fair(p, 0.1, KEY) for p in BOSTON)  # a fair point exists: stronger ones would not help
    assert choice.accurate(point(0, 0.8991, 0.0), 0.89909999999)  # equal at 6 decimals is equal


def test_no_point_within_both_names_both_figures_in_one_line():
    floor, text = choice.accuracy_floor(KerasGates(), logistic=0.9091, majority=0.8741)
    best, why = choice.none_within(BOSTON, 0.0232051, KEY, floor, text)
    assert best["strength"] == 2  # the least disparate that answers both classes
    assert "\n" not in why
    assert why == ("no strength meets demographic parity difference <= 0.0232 and accuracy within 0.03 of logistic "
                   "regression (0.9091), 0.01 above the majority class (0.8741) on the validation rows (disparity "
                   "on the training and validation rows): strength 0 reaches 0.9021 at 0.2541, strength 1 reaches "
                   "0.9021 at 0.1300, strength 2 reaches 0.8951 at 0.0393; strength 4 answers one class only; "
                   "strength 2 (the least disparate) is kept, not released")


def test_the_strength_gate_fails_only_when_auto_found_no_strength_within_both():
    kept = {"strength": 2.0, "within_gates": False, "accuracy_floor": 0.8841, "chosen_by": "no strength meets ...",
            "validation": BOSTON}
    gate = choice.strength_gate(kept)
    assert not gate.passed and gate.detail == "no strength meets ..." and (gate.measured, gate.threshold) == (0.8951, 0.8841)
    assert choice.strength_gate(kept | {"within_gates": True}).passed
    pinned = {"strength": 3.0, "auto": False, "chosen_by": "pinned in params fairness.strength", "validation": []}
    assert choice.strength_gate(pinned).passed  # pinned or private: the test-row gates judge it


def test_the_limit_is_the_fairness_gates_for_the_constrained_grouping():
    gates = FairnessGates(max_demographic_parity_difference={"sex": 0.05, "race": 0.15})
    assert choice.gate_limit(gates, "demographic_parity", "sex") == 0.05
    assert choice.gate_limit(gates, "demographic_parity", "sex:race") is None  # unlisted: reported, not gated
    assert choice.gate_limit(FairnessGates(), "equalized_odds", "sex") == 0.2
    assert choice.strengths(FairnessConfig(method="penalty", sweep=[0, 2], strength=3)) == [0.0, 2.0, 3.0]
    assert choice.strengths(FairnessConfig(sweep=[0, 2])) == [0.0, 2.0]  # auto by default


def test_auto_strength_is_chosen_recorded_and_reused_by_the_trade_off(small_project: Path):
    from pipelines.catalog import step_function
    from pipelines.core.io import read_json
    from pipelines.core.paths import MITIGATION_FILE, ArtifactPaths

    path = small_project / "params.yaml"
    params = yaml.safe_load(path.read_text())
    params["fairness"] |= {"strength": "auto", "sweep": [0, 1], "sample_rows": 1000}  # ~1,260 training rows
    path.write_text(yaml.safe_dump(params))
    settings = load_settings(path)
    for name in ("raw_dataset", "validated_dataset", "data_drift", "dataset_splits", "trained_model"):
        step_function(name)(settings)
    folder = ArtifactPaths(small_project).trained_model
    facts = read_json(folder / MITIGATION_FILE)
    assert facts["auto"] is True and facts["chosen_by"].startswith(f"strength {facts['strength']:g}: ")
    assert abs(facts["sweep_rows"] - 1000) <= 10 and facts["training_rows"] > facts["sweep_rows"] + 100
    assert f"stratified sample of {facts['sweep_rows']} of the {facts['training_rows']}" in facts["chosen_by"]
    trained = sorted(p.name for p in (folder / "sweep").glob("*.keras"))
    assert {"strength_0.keras", "strength_1.keras"} <= set(trained)
    assert {p["strength"] for p in facts["validation"]} == {float(p.stem.split("_")[1]) for p in (folder / "sweep").glob("*.keras")}
    report = step_function("fairness_tradeoff")(settings)
    assert report.summary["deployed_strength"] == facts["strength"]


def test_the_baseline_target_takes_the_smaller_limit_and_says_which():
    assert choice.baseline_limit(0.05, 0.012) == (0.012, "limit: the reductions baseline's disparity 0.0120")
    assert choice.baseline_limit(0.05, 0.08)[0] == 0.05 and "gate's limit 0.05 is below" in choice.baseline_limit(0.05, 0.08)[1]
    assert choice.baseline_limit(None, 0.03)[0] == 0.03
    assert choice.baseline_limit(0.05, None) == (0.05, "the reductions baseline's disparity is undefined: the gate's limit applies")


def test_one_class_models_without_a_limit_still_get_a_reason():
    best, why = choice.none_within([{**point(0.0, 0.7, None), "one_class": True}], None, KEY)
    assert best["strength"] == 0.0 and why.startswith("no strength answers both classes on the validation rows")
    assert "strength 0 answers one class only" in why


def test_baseline_target_limits_auto_to_the_baseline_disparity(small_project: Path):
    from pipelines.catalog import step_function
    from pipelines.core.io import read_json
    from pipelines.core.paths import MITIGATION_FILE, ArtifactPaths

    path = small_project / "params.yaml"
    params = yaml.safe_load(path.read_text())
    params["fairness"] |= {"strength": "auto", "sweep": [0, 2], "target": "baseline", "baseline_max_iter": 10}
    path.write_text(yaml.safe_dump(params))
    settings = load_settings(path)
    for name in ("raw_dataset", "validated_dataset", "data_drift", "dataset_splits", "trained_model"):
        step_function(name)(settings)
    facts = read_json(ArtifactPaths(small_project).trained_model / MITIGATION_FILE)
    assert "reductions baseline's disparity" in facts["chosen_by"]
    chosen = next(p for p in facts["validation"] if p["strength"] == facts["strength"])
    if facts["within_gates"]:  # within the limit: at most the baseline's disparity
        assert chosen[KEY] <= facts["limit"] and f"disparity {facts['limit']:.4f})" in facts["chosen_by"]
    import joblib

    from pipelines.core.paths import BASELINE_FILE

    saved = joblib.load(ArtifactPaths(small_project).trained_model / BASELINE_FILE)  # the trade-off reuses it
    step_function("fairness_tradeoff")(settings)
    report = read_json(ArtifactPaths(small_project).fairness_tradeoff)
    assert "fitted" not in report["baseline"] and report["baseline"]["oracle_calls"] == saved["oracle_calls"]


def test_auto_with_no_strength_within_the_accuracy_gates_stops_at_the_fairness_gate(small_project: Path):
    from assets.checks import strength_gate
    from pipelines.catalog import step_function
    from pipelines.core.io import read_json
    from pipelines.core.paths import MITIGATION_FILE, ArtifactPaths

    path = small_project / "params.yaml"
    params = yaml.safe_load(path.read_text())
    params["fairness"] |= {"strength": "auto", "sweep": [0]}
    params["gates"]["keras"] = {"min_accuracy": 0.6, "min_gain_over_majority": None, "max_gap_to_logistic": 0.0}
    params["train"]["epochs"] = 1  # one epoch stays below logistic regression on the validation rows
    path.write_text(yaml.safe_dump(params))
    settings = load_settings(path)
    for name in ("raw_dataset", "validated_dataset", "data_drift", "dataset_splits", "trained_model"):
        step_function(name)(settings)
    facts = read_json(ArtifactPaths(small_project).trained_model / MITIGATION_FILE)
    logistic = facts["validation_baselines"]["logistic_regression"]
    assert 0.7 < logistic < 0.95 and 0.5 < facts["validation_baselines"]["majority_class"] < 0.9
    point = facts["validation"][0]
    assert point["accuracy"] < logistic  # one epoch (seeded) stays below logistic regression
    assert facts["within_gates"] is False and facts["accuracy_floor"] == logistic
    result = strength_gate(settings)
    assert not result.passed
    assert result.description.startswith(f"no strength meets demographic parity difference <= 0.5 and accuracy >= "
                                         f"0.6, accuracy within 0 of logistic regression ({logistic:.4f}) on the "
                                         f"validation rows")
    assert f"strength 0 reaches {point['accuracy']:.4f} at " in result.description
