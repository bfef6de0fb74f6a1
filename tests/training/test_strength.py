"""`fairness.strength: auto`: the most accurate validation point within the gate's limit, an adaptive sweep, and
a clear statement when no strength meets the limit."""
from __future__ import annotations

from pathlib import Path

import yaml

from pipelines.core.config import FairnessConfig, FairnessGates, load_settings
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


def test_no_point_within_the_limit_extends_then_deploys_the_least_disparate_and_says_so():
    points = [point(0, 0.85, 0.30), point(1, 0.84, None), point(2, 0.83, 0.20)]
    assert choice.choose(points, 0.1, KEY) == (None, "")
    assert choice.extension([0.0, 1.0, 2.0]) == [4.0, 8.0, 16.0] and choice.extension([0.0]) == [1.0, 2.0, 4.0]
    best, why = choice.least_disparate(points, 0.1, KEY)
    assert best["strength"] == 2
    assert why.startswith("strength 2: no strength tried (0, 1, 2) meets demographic parity difference <= 0.1")


def test_the_limit_is_the_fairness_gates_for_the_constrained_grouping():
    gates = FairnessGates(max_demographic_parity_difference={"sex": 0.05, "race": 0.15})
    assert choice.gate_limit(gates, "demographic_parity", "sex") == 0.05
    assert choice.gate_limit(gates, "demographic_parity", "sex:race") is None  # unlisted: reported, not gated
    assert choice.gate_limit(FairnessGates(), "equalized_odds", "sex") == 0.2
    assert choice.strengths(FairnessConfig(sweep=[0, 2], strength=3)) == [0.0, 2.0, 3.0]
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
    best, why = choice.least_disparate([{**point(0.0, 0.7, None), "one_class": True}], None, KEY)
    assert best["strength"] == 0.0 and "answers both classes" in why


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
    if "no strength tried" not in facts["chosen_by"]:  # within the limit: at most the baseline's disparity
        limit = float(facts["chosen_by"].split("disparity ")[-1].rstrip(")"))
        assert chosen[KEY] <= limit
    import joblib

    from pipelines.core.paths import BASELINE_FILE

    saved = joblib.load(ArtifactPaths(small_project).trained_model / BASELINE_FILE)  # the trade-off reuses it
    step_function("fairness_tradeoff")(settings)
    report = read_json(ArtifactPaths(small_project).fairness_tradeoff)
    assert "fitted" not in report["baseline"] and report["baseline"]["oracle_calls"] == saved["oracle_calls"]
