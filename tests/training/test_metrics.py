"""Metrics on hand-counted examples: overall, per group, and model agreement."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from pipelines.training.metrics import agreement, classification_metrics, group_metrics

# threshold 0.5 -> predictions [1, 0, 1, 0, 1, 0]: TP=2 (rows 0, 4), FN=1 (row 1), FP=1 (row 2), TN=2
Y_TRUE = np.array([1, 1, 0, 0, 1, 0])
PROBA = np.array([0.9, 0.4, 0.6, 0.1, 0.8, 0.2])
GROUPS = pd.DataFrame({"sex": ["M", "M", "M", "F", "F", "F"], "race": ["a"] * 6})


def test_classification_metrics_known_answer():
    metrics = classification_metrics(Y_TRUE, PROBA, 0.5)
    assert metrics["accuracy"] == pytest.approx(4 / 6)
    assert metrics["precision"] == pytest.approx(2 / 3)
    assert metrics["recall"] == pytest.approx(2 / 3)
    assert metrics["f1"] == pytest.approx(2 / 3)
    assert metrics["selection_rate"] == pytest.approx(0.5)
    # 8 of the 9 positive/negative pairs are ranked correctly (0.4 < 0.6 is the miss)
    assert metrics["auc"] == pytest.approx(8 / 9)
    assert metrics["rows"] == 6


def test_threshold_moves_the_decisions():
    metrics = classification_metrics(Y_TRUE, PROBA, 0.35)
    # predictions [1, 1, 1, 0, 1, 0]: TP=3, FP=1
    assert metrics["recall"] == pytest.approx(1.0)
    assert metrics["precision"] == pytest.approx(3 / 4)
    assert metrics["selection_rate"] == pytest.approx(4 / 6)


def test_single_class_has_no_auc_and_no_division_error():
    metrics = classification_metrics(np.zeros(4, dtype=int), np.array([0.1, 0.2, 0.3, 0.9]), 0.5)
    assert math.isnan(metrics["auc"])
    assert metrics["accuracy"] == pytest.approx(0.75)
    assert metrics["precision"] == 0.0 and metrics["recall"] == 0.0


def test_group_metrics_known_per_group_values_and_gaps():
    result = group_metrics(Y_TRUE, PROBA, GROUPS, 0.5)
    assert set(result) == {"sex", "race"}
    sex = result["sex"]
    # M: true [1,1,0] pred [1,0,1]; F: true [0,1,0] pred [0,1,0]
    # M: TPR 1/2 (one of two positives selected), FPR 1/1; F: TPR 1/1, FPR 0/2
    assert sex["groups"]["M"] == {"accuracy": pytest.approx(1 / 3), "selection_rate": pytest.approx(2 / 3), "count": 3,
                                  "positives": 2, "true_positive_rate": pytest.approx(0.5), "false_positive_rate": pytest.approx(1.0)}
    assert sex["groups"]["F"] == {"accuracy": pytest.approx(1.0), "selection_rate": pytest.approx(1 / 3), "count": 3,
                                  "positives": 1, "true_positive_rate": pytest.approx(1.0), "false_positive_rate": pytest.approx(0.0)}
    assert sex["demographic_parity_difference"] == pytest.approx(1 / 3)
    assert sex["accuracy_gap"] == pytest.approx(2 / 3)
    race = result["race"]
    assert list(race["groups"]) == ["a"]
    assert race["demographic_parity_difference"] is None and race["accuracy_gap"] is None  # one group: no gap


def test_group_metrics_treats_missing_group_as_its_own_group():
    groups = pd.DataFrame({"sex": ["M", "M", "M", "F", "F", None]})
    result = group_metrics(Y_TRUE, PROBA, groups, 0.5)
    groups_seen = result["sex"]["groups"]
    assert set(groups_seen) == {"M", "F", "(missing)"}
    assert groups_seen["(missing)"]["count"] == 1
    assert groups_seen["F"]["count"] == 2
    assert sum(g["count"] for g in groups_seen.values()) == 6


def test_agreement_is_the_share_of_equal_decisions():
    a = np.array([0.9, 0.4, 0.6, 0.5])
    b = np.array([0.7, 0.6, 0.4, 0.5])
    assert agreement(a, b, 0.5) == pytest.approx(2 / 4)
    assert agreement(a, a, 0.5) == 1.0


def test_the_equal_rates_floor_is_the_quantile_of_the_gates_own_figure_for_a_fair_model():
    from pipelines.training.metrics import equal_rates_floor

    rng = np.random.default_rng(7)
    groups = pd.DataFrame({"g": np.repeat(["a", "b", "c", "d"], [35, 50, 300, 10])})
    y = (rng.random(len(groups)) < np.where(groups["g"] == "a", 0.5, 0.85)).astype(int)
    model = np.where(y == 1, 0.9, 0.2) * (rng.random(len(y)) < 0.9)  # overall rates, whatever the group
    floor = equal_rates_floor(y, model, groups, 0.5, share=0.9, min_group_size=30, seed=1)["g"]
    tpr, fpr, selection = np.mean(model[y == 1] >= 0.5), np.mean(model[y == 0] >= 0.5), np.mean(model >= 0.5)
    # fresh fair models drawn row by row, measured by the gate's own group_metrics: about 90% stay within the floor
    # (parity: the same selection rate for every row; equalized odds: the same rates given the label)
    within = {"demographic_parity_difference": 0, "equalized_odds_difference": 0}
    for _ in range(400):
        parity = (rng.random(len(y)) < selection).astype(float)
        odds = np.where(y == 1, rng.random(len(y)) < tpr, rng.random(len(y)) < fpr).astype(float)
        for key, decided in (("demographic_parity_difference", parity), ("equalized_odds_difference", odds)):
            within[key] += group_metrics(y, decided, groups, 0.5, min_group_size=30)["g"][key] <= floor[key]
    assert 0.85 <= within["demographic_parity_difference"] / 400 <= 0.95
    assert 0.85 <= within["equalized_odds_difference"] / 400 <= 0.95
    assert floor["demographic_parity_difference"] > 0.05  # groups of 35 and 50 rows: noisy
    one = equal_rates_floor(y, model, groups.assign(g="x"), 0.5, share=0.9, min_group_size=30)["g"]
    assert one == {"demographic_parity_difference": None, "equalized_odds_difference": None}  # nothing to compare
    large = pd.DataFrame({"g": np.repeat(["a", "b"], 20000)})
    y_large = (rng.random(40000) < 0.6).astype(int)
    assert equal_rates_floor(y_large, y_large * 0.9, large, 0.5, share=0.9)["g"]["demographic_parity_difference"] < 0.02


def test_compact_codes_keep_every_code_in_a_byte_a_row_and_a_categorical_shares_them():
    from pipelines.training.metrics import compact_codes, group_codes

    frame = pd.DataFrame({"few": ["a", "b", "c", "a"] * 50, "many": [f"g{i}" for i in range(200)]})
    full = group_codes(frame)
    compact = compact_codes(full)
    assert compact["few"][1].dtype == np.int8 and compact["many"][1].dtype == np.int16
    for name in full:
        assert list(compact[name][0]) == list(full[name][0])
        np.testing.assert_array_equal(compact[name][1], full[name][1])
    shared = pd.Categorical.from_codes(compact["few"][1], compact["few"][0])
    assert np.shares_memory(shared.codes, compact["few"][1])
    y = np.tile([0.0, 1.0], 100)
    assert group_metrics(y, y, compact, 0.5) == group_metrics(y, y, full, 0.5)
