"""`fairness.target: frontier`: the head deployed reaches the reductions baseline's point on the held-out rows
where one does, else the choice within the gate's limits; the baseline's point is its expected accuracy and
disparity as a randomized classifier."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import demographic_parity_difference, equalized_odds_difference

from pipelines.training import bound_choice
from pipelines.training.sweep import expected_point

KEY = "demographic_parity_difference"


def _head(bound: float, accuracy: float, disparity: float, share: float = 1.0) -> dict:
    return {"bound": bound, "accuracy": accuracy, KEY: disparity, "pass_share": share, "joint_pass_share": share,
            "other_limits": []}


def test_the_most_accurate_head_at_the_baselines_disparity_is_deployed_not_the_most_accurate_within_the_gate():
    heads = [_head(0.1, 0.86, 0.08), _head(0.05, 0.85, 0.03), _head(0.03, 0.845, 0.018), _head(0.015, 0.83, 0.01)]
    baseline = {"accuracy": 0.84, KEY: 0.02}
    best, why = bound_choice.frontier_choice(heads, baseline, 0.1, KEY, None, "", 0.9, "the rows")
    assert best["bound"] == 0.03
    assert "reaches the reductions baseline's point on the rows" in why and "at most 0.0200" in why
    gate_only, _ = bound_choice.choose(heads, 0.1, KEY, None, "", 0.9, "the rows")
    assert gate_only["bound"] == 0.1  # what target: gate deploys


def test_slack_is_used_only_when_no_head_is_at_the_baselines_disparity():
    heads = [_head(0.1, 0.86, 0.08), _head(0.05, 0.85, 0.028)]
    best, why = bound_choice.frontier_choice(heads, {"accuracy": 0.85, KEY: 0.02}, 0.1, KEY, None, "", 0.9, "rows")
    assert best["bound"] == 0.05 and "at most 0.0200 + 0.01" in why


def test_no_head_reaches_when_every_fair_one_is_too_inaccurate_or_unsure():
    heads = [_head(0.1, 0.86, 0.08), _head(0.015, 0.80, 0.01), _head(0.03, 0.84, 0.015, share=0.5)]
    assert bound_choice.frontier_choice(heads, {"accuracy": 0.84, KEY: 0.02}, 0.1, KEY, None, "", 0.9,
                                        "rows") == (None, "")
    assert bound_choice.frontier_choice(heads, {"accuracy": 0.84, KEY: None}, 0.1, KEY, None, "", 0.9,
                                        "rows") == (None, "")


@pytest.mark.parametrize("key", ["demographic_parity_difference", "equalized_odds_difference"])
def test_the_expected_point_is_the_mean_of_many_draws_of_the_randomized_classifier(key: str):
    rng = np.random.default_rng(1)
    n = 40000
    labels = rng.choice(["a", "b", "c"], n)
    y = (rng.random(n) < np.where(labels == "a", 0.3, 0.5)).astype(float)
    soft = np.clip(0.2 + 0.5 * y + np.where(labels == "b", 0.2, 0.0) - 0.1 * rng.random(n), 0, 1)
    gated = labels != "c"
    point = expected_point(y, soft, labels, gated, key)
    measure = demographic_parity_difference if key == KEY else equalized_odds_difference
    draws = [(rng.random(n) < soft).astype(float) for _ in range(50)]
    assert point["accuracy"] == pytest.approx(np.mean([np.mean(d == y) for d in draws]), abs=0.003)
    assert point[key] == pytest.approx(np.mean([measure(y[gated], d[gated], sensitive_features=labels[gated])
                                                for d in draws]), abs=0.01)
    assert pd.notna(point[key])


def test_a_head_at_the_baselines_point_that_would_fail_another_limit_of_the_gate_is_not_deployed_for_reaching_it():
    heads = [_head(0.1, 0.86, 0.08), _head(0.03, 0.845, 0.018) | {"joint_pass_share": 0.4}]
    assert bound_choice.frontier_choice(heads, {"accuracy": 0.84, KEY: 0.02}, 0.1, KEY, None, "", 0.9,
                                        "rows") == (None, "")
