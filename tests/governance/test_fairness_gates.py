"""Fairness gates: a biased model or a variant that hurts one group is blocked, with the group and the margin."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipelines.core.config import FairnessConfig, FairnessGates
from pipelines.core.errors import PipelineError
from pipelines.core.gates import require_all
from pipelines.governance.fairness import (
    compact_failures,
    evaluate_models,
    fairness_gates,
    flagged_text,
    models_table,
)
from pipelines.training.mitigation import check_groups

RNG = np.random.default_rng(0)
N = 400
GROUPS = pd.DataFrame({"sex": np.repeat(["F", "M"], N // 2), "race": np.tile(["a", "b"], N // 2)})
Y = (RNG.random(N) < 0.4).astype(int)
FAIR = np.where(Y == 1, 0.8, 0.2)  # perfectly accurate, same rates in every group
GATES = FairnessGates(max_demographic_parity_difference=0.1, max_equalized_odds_difference=0.1,
                            max_group_accuracy_drop=0.02, min_group_size=20)


def _report(probas: dict[str, np.ndarray], groups: pd.DataFrame = GROUPS, y: np.ndarray = Y, gates=GATES):
    return evaluate_models(y, probas, groups, FairnessConfig(bootstrap=50), 0.5, gates.min_group_size)


def _by_name(results):
    return {g.name: g for g in results}


def test_an_accurate_model_with_equal_rates_passes_every_gate():
    results = fairness_gates(_report({"keras": FAIR, "int8": FAIR}), GATES)
    assert results and all(g.passed for g in results)
    names = {g.name for g in results}
    assert {"max_demographic_parity_difference[keras/sex]", "max_equalized_odds_difference[int8/sex:race]",
            "max_group_accuracy_drop[int8/race]"} <= names
    require_all(results)


def test_a_model_that_predicts_group_membership_is_blocked_naming_the_groups():
    biased = np.where(GROUPS["sex"] == "M", 0.9, 0.1)  # decisions = membership, whatever the label
    results = _by_name(fairness_gates(_report({"keras": biased}), GATES))
    gate = results["max_demographic_parity_difference[keras/sex]"]
    assert not gate.passed and gate.measured == pytest.approx(1.0) and gate.threshold == 0.1
    assert "selection rate M 1.000 vs F 0.000" in gate.detail
    assert "exceeds gates.fairness.max_demographic_parity_difference = 0.1000" in gate.detail
    assert not results["max_equalized_odds_difference[keras/sex]"].passed
    assert results["max_demographic_parity_difference[keras/race]"].passed  # race is balanced within each sex
    with pytest.raises(PipelineError, match=r"gate max_demographic_parity_difference\[keras/sex\] failed: keras sex"):
        require_all(list(results.values()))


def test_a_variant_that_hurts_one_group_is_blocked_and_the_float_model_is_not():
    variant = FAIR.copy()
    women = np.flatnonzero(GROUPS["sex"] == "F")[:10]
    variant[women] = 1 - variant[women]  # 10 of 200 decisions for F flip to wrong: -0.05 for F only
    report = _report({"keras": FAIR, "int8": variant})
    results = _by_name(fairness_gates(report, GATES))
    drop = results["max_group_accuracy_drop[int8/sex]"]
    assert not drop.passed and drop.measured == pytest.approx(0.05)
    assert drop.detail == ("int8 sex: F accuracy 1.0000 -> 0.9500 vs keras (drop 0.0500, CI [0.0224, 0.0665], 10 "
                           "decisions changed) exceeds gates.fairness.max_group_accuracy_drop = 0.0200")
    assert results["max_demographic_parity_difference[keras/sex]"].passed
    changes = report["models"]["int8"]["quantization"]["sex"]["groups"]
    assert changes["M"]["change"] == 0.0 and changes["F"]["change"] == pytest.approx(-0.05)
    assert "| int8 | 0.9750 | sex |" in models_table(report)


def test_a_group_drop_whose_paired_interval_straddles_the_limit_passes_and_says_so():
    variant = FAIR.copy()
    women = np.flatnonzero(GROUPS["sex"] == "F")[:5]
    variant[women] = 1 - variant[women]  # 5 of 200: drop 0.025 over the 0.02 limit, by 1 row
    report = _report({"keras": FAIR, "int8": variant})
    drop = _by_name(fairness_gates(report, GATES))["max_group_accuracy_drop[int8/sex]"]
    low, high = [-c for c in reversed(report["models"]["int8"]["quantization"]["sex"]["groups"]["F"]["ci"])]
    assert low <= 0.02 < high  # the paired bootstrap (same rows, keras vs int8) cannot tell it over
    assert drop.passed and drop.measured == pytest.approx(0.025)
    assert drop.detail == (f"int8 sex: F accuracy 1.0000 -> 0.9750 vs keras (drop 0.0250, CI [{low:.4f}, {high:.4f}], "
                           "5 decisions changed) is over gates.fairness.max_group_accuracy_drop = 0.0200, but the "
                           "interval straddles the limit: the test split cannot tell it over")
    point = evaluate_models(Y, {"keras": FAIR, "int8": variant}, GROUPS, FairnessConfig(bootstrap=0), 0.5, 20)
    judged = _by_name(fairness_gates(point, GATES))["max_group_accuracy_drop[int8/sex]"]  # no interval: the point
    assert not judged.passed and judged.detail.startswith("int8 sex: F accuracy 1.0000 -> 0.9750 vs keras (drop "
                                                          "0.0250, 5 decisions changed) exceeds")


def test_small_groups_are_flagged_not_gated_and_not_a_crash():
    groups = GROUPS.copy()
    groups.loc[:4, "race"] = "c"  # five rows: too few for a stable estimate
    report = _report({"keras": FAIR}, groups)
    assert {"grouping": "race", "group": "c", "rows": 5} in report["flagged_groups"]
    assert all(g.passed for g in fairness_gates(report, GATES))
    assert "race=c (5)" in flagged_text(report) and "not gated" in flagged_text(report)


def test_a_grouping_with_fewer_than_two_large_groups_fails_as_unmeasurable():
    gates = GATES.model_copy(update={"min_group_size": 150})  # every sex:race group has 100 rows
    results = _by_name(fairness_gates(_report({"keras": FAIR}, gates=gates), gates))
    gate = results["max_demographic_parity_difference[keras/sex:race]"]
    assert not gate.passed
    assert "only 0 group(s) have at least gates.fairness.min_group_size = 150 test rows" in gate.detail
    assert results["max_demographic_parity_difference[keras/sex]"].passed


def _few_negatives(negatives: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Group F (200 rows) has `negatives` negatives and every one of them is a false positive; M has 100 negatives
    and none is: a false positive rate gap of 1.0 over F's few negatives, the same true positive rate everywhere."""
    groups = pd.DataFrame({"sex": np.repeat(["F", "M"], 200)})
    y = np.ones(400, int)
    y[:negatives] = 0
    y[200:300] = 0
    proba = np.where(y == 1, 0.9, 0.1)
    proba[:negatives] = 0.9
    return groups, y, proba


def test_a_rate_is_gated_only_over_groups_with_enough_rows_in_its_denominator():
    gates = GATES.model_copy(update={"max_demographic_parity_difference": None})
    groups, y, proba = _few_negatives(5)  # F: 200 rows, but 5 negatives: its false positive rate is 5 rows
    report = _report({"keras": proba}, groups, y, gates)
    facts = report["models"]["keras"]["groups"]["sex"]
    assert facts["groups"]["F"]["false_positive_rate"] == 1.0  # reported
    assert facts["unmeasured_rates"] == {"false_positive_rate": ["F"]}
    assert report["flagged_rates"] == [{"grouping": "sex", "group": "F", "rate": "false_positive_rate", "negatives": 5}]
    assert "TPR or FPR on fewer than 20 positives or negatives, reported but not gated: sex=F FPR (5 negatives)" \
        in flagged_text(report)
    assert flagged_text(report, list_rates=False).endswith(
        "1 TPR or FPR figure(s) on fewer than 20 positives or negatives, reported but not gated (listed in the "
        "fairness check)")
    gate = _by_name(fairness_gates(report, gates))["max_equalized_odds_difference[keras/sex]"]
    assert gate.passed and gate.measured == 0.0  # the true positive rates: equal
    assert "false positive rate leaves out F (5 negatives) (under gates.fairness.min_group_size = 20)" in gate.detail
    groups, y, proba = _few_negatives(40)  # 40 negatives: the same gap is measured and blocks
    gate = _by_name(fairness_gates(_report({"keras": proba}, groups, y, gates), gates))[
        "max_equalized_odds_difference[keras/sex]"]
    assert not gate.passed and gate.measured == 1.0


def test_equalized_odds_with_no_rate_measurable_is_reported_not_gated():
    groups = pd.DataFrame({"sex": np.repeat(["F", "M"], 50)})
    y = np.tile([1, 1, 1, 1, 0], 20)  # each group: 40 positives, 10 negatives
    gates = GATES.model_copy(update={"min_group_size": 45, "max_demographic_parity_difference": None})
    proba = np.where(y == 1, 0.9, 0.1)
    report = _report({"keras": proba}, groups, y, gates)
    gate = _by_name(fairness_gates(report, gates))["max_equalized_odds_difference[keras/sex]"]
    assert gate.passed and "equalized odds difference not measured, so not gated" in gate.detail
    assert "true positive rate leaves out F (40 positives), M (40 positives)" in gate.detail
    assert "false positive rate leaves out F (10 negatives), M (10 negatives)" in gate.detail


def test_per_grouping_limits_gate_only_the_named_groupings():
    biased = np.where(GROUPS["sex"] == "M", 0.9, 0.1)
    gates = GATES.model_copy(update={"max_demographic_parity_difference": {"race": 0.1},
                                     "max_equalized_odds_difference": None})
    names = {g.name for g in fairness_gates(_report({"keras": biased}), gates)}
    assert names == {"max_demographic_parity_difference[keras/race]"}
    bad = GATES.model_copy(update={"max_demographic_parity_difference": {"gender": 0.1}})
    with pytest.raises(PipelineError, match="max_demographic_parity_difference: 'gender' is not a grouping"):
        fairness_gates(_report({"keras": FAIR}), bad)


def test_a_sensitive_feature_with_one_value_is_a_clear_error():
    frame = pd.DataFrame({"sex": ["F"] * 5, "race": list("ababa")})
    with pytest.raises(PipelineError, match="data.sensitive_features: column 'sex' has a single value \\('F'\\) "
                                            "in the test split; groups cannot be compared"):
        check_groups(frame, ["race", "sex"], "test")


def test_a_gate_failing_on_several_models_is_one_compact_line():
    biased = np.where(GROUPS["sex"] == "M", 0.9, 0.1)
    nearly = biased.copy()
    nearly[:20] = 0.9  # twenty F rows selected: this variant's gap is 0.9
    gates = GATES.model_copy(update={"max_equalized_odds_difference": None, "max_group_accuracy_drop": None,
                                     "max_demographic_parity_difference": {"sex": 0.1}})
    probas = {"keras": biased, "float16": biased, "int8": nearly, "dynamic": FAIR}
    report = _report(probas)
    line = compact_failures(report, fairness_gates(report, gates))
    assert line == ("sex: demographic parity difference 0.9000 to 1.0000 (keras CI [1.0000, 1.0000]) exceeds "
                    "gates.fairness.max_demographic_parity_difference = 0.1 on keras, float16, int8 (3 of 4)")
    assert "\n" not in line and line.count("0.1") == 1


def test_a_compact_line_counts_models_beyond_the_first_few():
    from pipelines.governance.fairness import _which

    names = [f"v{i}" for i in range(16)]
    assert _which(names, 16) == "every model (16)"
    assert _which(names[:6], 16) == "v0, v1, v2, v3 and 2 more (6 of 16)"
    assert _which(["keras"], 1) == "keras (1 of 1)"


def test_a_gate_line_says_when_the_interval_straddles_the_limit():
    rng = np.random.default_rng(3)
    proba = np.where(GROUPS["sex"] == "M", rng.random(N) < 0.55, rng.random(N) < 0.45).astype(float)
    report = _report({"keras": proba})
    gap = report["models"]["keras"]["groups"]["sex"]["demographic_parity_difference"]
    gates = GATES.model_copy(update={"max_demographic_parity_difference": {"sex": round(gap - 0.01, 4)},
                                     "max_equalized_odds_difference": None})
    results = fairness_gates(report, gates)
    gate = _by_name(results)["max_demographic_parity_difference[keras/sex]"]
    assert not gate.passed and "straddles the limit" in gate.detail
    assert "straddles the limit) exceeds" in compact_failures(report, results)


def test_a_group_too_small_to_measure_is_named_with_its_count_and_the_fix():
    groups = GROUPS.assign(sex=np.where(np.arange(N) < 12, "F", "M"))
    gates = GATES.model_copy(update={"max_equalized_odds_difference": None, "max_group_accuracy_drop": None})
    report = _report({"keras": FAIR, "int8": FAIR}, groups, gates=gates)
    line = compact_failures(report, fairness_gates(report, gates))
    assert line == ("sex: only 1 group(s) have at least gates.fairness.min_group_size = 20 test rows (too small: "
                    "F (12 rows)); the gap cannot be measured: lower gates.fairness.min_group_size to 12, give the "
                    "test split more rows (split.test_size), or set this grouping's limit to null in gates.fairness")
    assert line.count("sex: only") == 1  # keras and int8: one line for the grouping


def test_a_limit_tighter_than_the_split_can_tell_is_said_in_the_line():
    # groups of 30 and 40 rows: a model with the same rates for every group still measures gaps above 0.1 often
    rng = np.random.default_rng(5)
    groups = pd.DataFrame({"race": np.repeat(["a", "b", "c"], [30, 40, 330])})
    y = (rng.random(N) < 0.7).astype(int)
    proba = np.where(groups["race"] == "a", 0.2, np.where(y == 1, 0.9, 0.3))  # group a never selected
    gates = GATES.model_copy(update={"max_equalized_odds_difference": None, "max_group_accuracy_drop": None})
    report = _report({"keras": proba}, groups, y, gates)
    floor = report["equal_rates_floor"]["figures"]["race"]["demographic_parity_difference"]
    assert report["equal_rates_floor"]["share"] == 0.9 and floor > 0.1
    larger = [report["equal_rates_floor"]["larger"][f]["race"]["demographic_parity_difference"]
              for f in ("1.5", "2", "2.5")]
    assert floor > larger[0] > larger[1] > larger[2] > 0.1  # more rows, less noise; here never enough
    line = compact_failures(report, fairness_gates(report, gates), 0.2)
    assert line.endswith(
        f"exceeds gates.fairness.max_demographic_parity_difference = 0.1 on keras (1 of 1) (a model with the same "
        f"rates for every group measures {floor:.4f} or more on 10% of test splits with these groups; "
        f"{larger[0]:.4f}, {larger[1]:.4f}, {larger[2]:.4f} with 1.5, 2 and 2.5 times the rows (split.test_size 0.3, "
        "0.4, 0.5)); these limits are below what the test split can tell: more test rows alone stay over them at "
        "these group sizes; gate larger groups (gates.fairness.min_group_size), or set the grouping's limit to null "
        "in gates.fairness")
    # groups of 60 and 80 rows: over 0.1 here, within it on a test split twice as large (a shipped test file: no size)
    sizes = pd.DataFrame({"race": np.repeat(["a", "b", "c"], [60, 80, 260])})
    proba = np.where(sizes["race"] == "a", 0.2, np.where(y == 1, 0.9, 0.3))
    report = _report({"keras": proba}, sizes, y, gates)
    floors = report["equal_rates_floor"]
    assert floors["figures"]["race"]["demographic_parity_difference"] > 0.1 >= \
        floors["larger"]["2.5"]["race"]["demographic_parity_difference"]
    line = compact_failures(report, fairness_gates(report, gates))
    assert line.endswith("times the rows); these limits are below what the test split can tell: give it more rows "
                         "(split.test_size), or gate larger groups (gates.fairness.min_group_size)")
    # larger groups (200 rows each): the same failure, no such note
    gates = gates.model_copy(update={"max_demographic_parity_difference": {"sex": 0.1}})
    big = _report({"keras": np.where(GROUPS["sex"] == "M", 0.9, 0.1)}, gates=gates)
    assert big["equal_rates_floor"]["figures"]["sex"]["demographic_parity_difference"] < 0.1
    assert "with the same rates" not in compact_failures(big, fairness_gates(big, gates))


def test_the_stop_line_names_the_test_share_the_splits_used(tmp_path):
    """split.auto_test_size may raise the share: the advice scales the share dataset_splits recorded."""
    from pipelines.core.config import load_settings
    from pipelines.core.io import write_json
    from pipelines.core.paths import ArtifactPaths
    from pipelines.governance.gates import test_share

    params = tmp_path / "params.yaml"
    params.write_text("data:\n  source: t.csv\n  label: y\n  positive_label: 1\n  sensitive_features: [race]\n")
    settings = load_settings(params)
    assert test_share(settings) == 0.2  # nothing recorded yet: split.test_size
    write_json(ArtifactPaths(tmp_path).metrics("dataset_splits"), {"test_share": 0.3, "test_rows": 300})
    assert test_share(settings) == 0.3
    assert test_share(load_settings(params, {"data.test_source": "t.test.csv"})) is None  # a shipped test file
