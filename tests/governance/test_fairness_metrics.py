"""Per-group fairness metrics on hand-counted frames: rates, gaps, intervals, small groups, variant changes."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import demographic_parity_difference, equalized_odds_difference

from pipelines.training.metrics import (
    bootstrap_counts,
    group_metrics,
    quantization_effects,
)

# A: truth [1,1,0,0], decisions [1,1,1,0] -> TP 2, FN 0, FP 1, TN 1: TPR 1, FPR 1/2, selection 3/4, accuracy 3/4
# B: truth [1,0,0,0], decisions [0,0,0,1] -> TP 0, FN 1, FP 1, TN 2: TPR 0, FPR 1/3, selection 1/4, accuracy 1/2
Y = np.array([1, 1, 0, 0, 1, 0, 0, 0])
PROBA = np.array([0.9, 0.8, 0.7, 0.1, 0.2, 0.3, 0.4, 0.6])
GROUPS = pd.DataFrame({"sex": list("AAAABBBB"), "race": list("xyxyxyxy")})


def test_rates_per_group_known_answer():
    a, b = (group_metrics(Y, PROBA, GROUPS[["sex"]], 0.5)["sex"]["groups"][g] for g in "AB")
    assert a == {"count": 4, "positives": 2, "accuracy": 0.75, "selection_rate": 0.75, "true_positive_rate": 1.0,
                 "false_positive_rate": 0.5}
    assert b["count"] == 4 and b["positives"] == 1 and b["accuracy"] == 0.5 and b["selection_rate"] == 0.25
    assert b["true_positive_rate"] == 0.0 and b["false_positive_rate"] == pytest.approx(1 / 3)


def test_gaps_known_answer_and_equal_to_fairlearn():
    sex = group_metrics(Y, PROBA, GROUPS, 0.5)["sex"]
    assert sex["demographic_parity_difference"] == pytest.approx(0.5)
    assert sex["equalized_odds_difference"] == pytest.approx(1.0)  # max(TPR gap 1, FPR gap 1/6)
    assert sex["accuracy_gap"] == pytest.approx(0.25)
    decisions = (PROBA >= 0.5).astype(int)
    assert sex["demographic_parity_difference"] == pytest.approx(
        demographic_parity_difference(Y, decisions, sensitive_features=GROUPS["sex"]))
    assert sex["equalized_odds_difference"] == pytest.approx(
        equalized_odds_difference(Y, decisions, sensitive_features=GROUPS["sex"]))


def test_intersection_groups_are_named_with_a_colon():
    result = group_metrics(Y, PROBA, GROUPS, 0.5, intersection=True)
    assert set(result) == {"sex", "race", "sex:race"}
    assert set(result["sex:race"]["groups"]) == {"A:x", "A:y", "B:x", "B:y"}
    assert sum(g["count"] for g in result["sex:race"]["groups"].values()) == 8


def test_rate_without_a_denominator_is_none_not_zero():
    # group C has no positives: its TPR is undefined (fairlearn would say 0) and takes no part in the gap
    y = np.array([1, 0, 1, 0, 0, 0])
    proba = np.array([0.9, 0.1, 0.2, 0.1, 0.9, 0.1])
    groups = pd.DataFrame({"g": list("AABBCC")})
    facts = group_metrics(y, proba, groups, 0.5)["g"]
    assert facts["groups"]["C"]["true_positive_rate"] is None
    assert facts["groups"]["C"]["false_positive_rate"] == 0.5
    # TPR gap A 1 vs B 0 = 1; FPR gap C 0.5 vs A, B 0 = 0.5
    assert facts["equalized_odds_difference"] == pytest.approx(1.0)


def test_small_groups_are_listed_and_left_out_of_the_gaps():
    y = np.concatenate([Y, [1, 1]])
    proba = np.concatenate([PROBA, [0.9, 0.9]])  # group S selects everyone
    groups = pd.DataFrame({"sex": list("AAAABBBB") + ["S", "S"]})
    facts = group_metrics(y, proba, groups, 0.5, min_group_size=3)["sex"]
    assert facts["small_groups"] == ["S"] and facts["eligible_groups"] == 2
    assert facts["groups"]["S"]["count"] == 2  # still reported
    assert facts["demographic_parity_difference"] == pytest.approx(0.5)  # A vs B only, not 1.0 - 0.25
    everything = group_metrics(y, proba, groups, 0.5)["sex"]
    assert everything["demographic_parity_difference"] == pytest.approx(0.75)


def _interval_width(copies: int) -> tuple[float, float, list[float]]:
    y, proba = np.tile(Y, copies), np.tile(PROBA, copies)
    groups = pd.concat([GROUPS] * copies, ignore_index=True)
    facts = group_metrics(y, proba, groups, 0.5, n_boot=400, seed=1)["sex"]
    low, high = facts["ci"]["demographic_parity_difference"]
    return facts["demographic_parity_difference"], high - low, facts["groups"]["A"]["ci"]["selection_rate"]


def test_intervals_contain_the_estimate_and_shrink_with_more_rows():
    point, narrow_width, _ = _interval_width(100)
    _, wide_width, _ = _interval_width(10)
    facts = group_metrics(np.tile(Y, 100), np.tile(PROBA, 100), pd.concat([GROUPS] * 100), 0.5, n_boot=400, seed=1)
    for group in facts["sex"]["groups"].values():
        for rate, (low, high) in group["ci"].items():
            assert low <= group[rate] <= high, rate
    low, high = facts["sex"]["ci"]["demographic_parity_difference"]
    assert low <= point <= high
    assert narrow_width < wide_width / 2  # 10x the rows: about 1/sqrt(10) of the width


def test_bootstrap_is_seeded_and_keeps_the_row_count():
    counts = np.array([[5, 1, 2, 7], [3, 0, 0, 9]])
    first, again = bootstrap_counts(counts, 50, seed=3), bootstrap_counts(counts, 50, seed=3)
    assert first.shape == (50, 2, 4)
    np.testing.assert_array_equal(first, again)
    assert (first.sum(axis=(1, 2)) == counts.sum()).all()


def test_quantization_effects_name_the_group_that_lost_accuracy():
    variant = PROBA.copy()
    variant[[5, 6]] = 0.9  # B: two right decisions (negatives) turned into false positives
    effects = quantization_effects(Y, PROBA, variant, GROUPS[["sex"]], 0.5, n_boot=200, seed=0)["sex"]
    assert effects["groups"]["A"]["change"] == 0.0 and effects["groups"]["A"]["ci"] == [0.0, 0.0]
    b = effects["groups"]["B"]
    assert b["reference_accuracy"] == 0.5 and b["variant_accuracy"] == 0.0
    assert b["change"] == pytest.approx(-0.5) and b["changed_decisions"] == 2
    assert effects["worst_group"] == "B" and effects["worst_drop"] == pytest.approx(0.5)
    assert b["ci"][0] <= -0.5 <= b["ci"][1]


def test_undefined_disparities_are_reported_not_crashed_on(tmp_path):
    """A one-class model or an empty group leaves a disparity undefined (None): table, CSV rows, chart and the
    baseline comparison say so instead of failing."""
    from pipelines.governance import tradeoff

    undefined = {"accuracy": 0.7, "selection_rate": 0.0, "demographic_parity_difference": None,
                 "equalized_odds_difference": None, "ci": {}}
    defined = {**undefined, "demographic_parity_difference": 0.1, "equalized_odds_difference": 0.2}
    report = {"constraint": "demographic_parity", "method": "penalty", "grouping": "sex",
              "sweep": [{"strength": 0, "deployed": True, "validation": undefined, "test": undefined}],
              "baseline": {"validation": defined, "test": defined}}
    rows = tradeoff.rows(report)
    assert rows[0]["demographic_parity_difference"] is None and rows[1]["demographic_parity_difference"] == 0.1
    assert "| keras (deployed) | 0 | 0.7000 | undefined | undefined | 0.7000 | undefined |" in tradeoff.table(report)
    assert tradeoff.chart(report, tmp_path / "chart.png").stat().st_size > 0
    verdict = tradeoff.compare(undefined, defined, "demographic_parity")
    assert verdict["met"] is False and "undefined for ours" in verdict["undefined"]
