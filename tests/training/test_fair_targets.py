"""`fairness.method: bound`'s extra heads: networks trained on fair targets (the reductions baseline's soft decisions,
massaged labels), the disparity measured over the groups the gate measures, and accuracy gates judged with the
paired bootstrap interval on small test splits."""
from __future__ import annotations

import numpy as np
import pytest

from pipelines.core.config import FairnessConfig, KerasGates, TrainConfig
from pipelines.core.gates import model_gates
from pipelines.training import targets
from pipelines.training.baselines import gain_interval
from tests.training.test_stacked import _gap, _synthetic


def test_massaged_targets_move_each_groups_rate_and_keep_the_best_ranked_rows():
    labels = np.repeat(["a", "b"], [100, 100])
    y = np.concatenate([np.arange(100) < 70, np.arange(100) < 30]).astype(float)  # rates 0.7 and 0.3, overall 0.5
    score = np.concatenate([np.linspace(1, 0, 100), np.linspace(1, 0, 100)])
    equal = targets.massaged(labels, y, score, 1.0)
    assert equal[:100].mean() == 0.5 and equal[100:].mean() == 0.5
    assert equal[:50].all() and not equal[50:100].any()  # the 50 best-ranked rows of group a
    reversed_half = targets.massaged(labels, y, score, 1.5)
    assert reversed_half[:100].mean() == 0.4 and reversed_half[100:].mean() == 0.6  # half the gap the other way
    assert (targets.massaged(labels, y, score, 0.0) == y).all()  # nothing closed: the labels (ranked as the score)


def test_extra_heads_are_named_and_massaged_only_for_demographic_parity():
    assert targets.extra_heads("demographic_parity") == [2.0, 3.0, 3.5]
    assert targets.extra_heads("equalized_odds") == [2.0]
    assert [targets.head_name(k) for k in (0.05, 2.0, 3.5)] == [
        "bound 0.05", "distilled from ExponentiatedGradient", "massaged x1.5"]
    assert all(k > 1 for k in targets.extra_heads("demographic_parity"))  # never a bound (bounds are at most 1)


def test_teachers_give_soft_and_fair_targets_for_any_rows():
    x, y, _, member = _synthetic(800)
    labels = member.astype(str)
    teachers, facts = targets.fit_targets(x, y, labels, FairnessConfig(), seed=0)
    assert facts["method"] == "fairlearn ExponentiatedGradient" and "fitted" in facts
    out = teachers.on(x[:300], y[:300], labels[:300])
    soft = out[targets.DISTILLED]
    assert soft.shape == (300,) and soft.min() >= 0 and soft.max() <= 1 and len(np.unique(soft)) > 2
    assert _gap(soft, member[:300]) < 0.5 * _gap(y[:300], member[:300])  # the mixture narrows the gap
    assert _gap(out[3.0], member[:300]) < 0.02  # massaged x1: the same rate in both groups
    equalized = targets.fit_targets(x, y, labels, FairnessConfig(constraint="equalized_odds"), seed=0)[0]
    assert set(equalized.on(x[:10], y[:10], labels[:10])) == {targets.DISTILLED}


def test_each_head_learns_its_own_targets():
    from pipelines.training.stacked import train_stacked
    from pipelines.training.train import predict_keras

    x, y, groups, _ = _synthetic(600)
    own = np.column_stack([y, 1 - y])  # head 2 is taught the opposite
    trained = train_stacked(x, y, x, y, TrainConfig(hidden_units=[8], epochs=10, batch_size=64), [1.0, 1.0],
                            groups=groups, val_groups=groups, bounds=[1.0, 1.0], targets=own, val_targets=own)
    right = [np.mean((predict_keras(model, x) >= 0.5) == (y > 0.5)) for model, _ in trained]
    assert right[0] > 0.7 and right[1] < 0.3, right  # each head follows its own targets
    assert trained[1][1]["val_accuracy"][-1] < 0.3  # the history's accuracy is against the labels


def test_the_gate_disparity_leaves_out_groups_too_small_on_the_test_split():
    from pipelines.training.limits import gated_groups

    test_labels = np.array(["a"] * 40 + ["b"] * 35 + ["c"] * 5)
    assert gated_groups(test_labels, 30) == ["a", "b"]
    assert gated_groups(test_labels, 1) == ["a", "b", "c"]


def test_the_gain_interval_is_the_paired_bootstrap_of_the_accuracy_difference():
    rng = np.random.default_rng(0)
    other = rng.random(200) < 0.70
    model = other.copy()
    model[np.flatnonzero(~other)[:1]] = True  # one row better: 0.705 against 0.700
    low, high = gain_interval(model, other, 500, 0.95, 0)
    assert low >= 0 and 0.005 < high < 0.02  # paired: only the one discordant row moves
    flips = rng.random(200) < 0.3
    noisy = np.where(flips, ~other, other)
    low, high = gain_interval(noisy, other, 500, 0.95, 0)
    assert low < -0.05 < 0.05 < high or low < 0 < high


def _evaluation(accuracy: float, majority: float, gain_ci: list[float] | None):
    facts = {"class": 0, "accuracy": majority} | ({"gain_ci": gain_ci} if gain_ci else {})
    return {"overall": {"accuracy": accuracy},
            "baselines": {"majority_class": facts, "logistic_regression": {"accuracy": accuracy, "auc": 0.7}}}


def test_a_small_test_split_that_cannot_tell_the_model_short_of_the_majority_gain_passes():
    """German credit's split 2: 0.705 against 0.700 + 0.01 on 200 rows; the interval of the gain reaches 0.01."""
    gate = {g.name: g for g in model_gates(_evaluation(0.705, 0.70, [-0.02, 0.035]), KerasGates())}
    majority = gate["min_gain_over_majority"]
    assert majority.passed
    assert majority.detail == ("test accuracy 0.7050 does not beat the majority-class rate 0.7000 by "
                               "gates.keras.min_gain_over_majority = 0.0100, but the interval of the gain "
                               "[-0.0200, +0.0350] reaches +0.0100: the test split cannot tell it short")


def test_no_signal_on_a_test_split_large_enough_to_tell_still_fails():
    gate = {g.name: g for g in model_gates(_evaluation(0.826, 0.829, [-0.006, 0.001]), KerasGates())}
    majority = gate["min_gain_over_majority"]
    assert not majority.passed
    assert majority.detail.endswith("(interval of the gain [-0.0060, +0.0010], all below +0.0100)")
    assert not model_gates(_evaluation(0.70, 0.70, None), KerasGates())[0].passed  # no interval: as before


@pytest.mark.parametrize("gap_ci, passed", [([-0.05, -0.01], True), ([-0.07, -0.04], False)])
def test_the_gap_to_logistic_regression_is_judged_the_same_way(gap_ci, passed):
    evaluation = {"overall": {"accuracy": 0.62},
                  "baselines": {"majority_class": {"class": 0, "accuracy": 0.58},
                                "logistic_regression": {"accuracy": 0.66, "auc": 0.7, "gain_ci": gap_ci}}}
    gap = {g.name: g for g in model_gates(evaluation, KerasGates())}["max_gap_to_logistic"]
    assert gap.passed is passed


def test_the_evaluation_baselines_carry_the_gain_interval_when_given_the_models_rows():
    from pipelines.training.baselines import baselines

    x, y, _, _ = _synthetic(400)
    right = np.ones(200, bool)  # a model right on every test row
    simple = baselines(x[:200], y[:200], x[200:], y[200:], 0.5, 0, right, 200, 0.95)
    for name in ("majority_class", "logistic_regression"):
        low, high = simple[name]["gain_ci"]
        gain = 1 - simple[name]["accuracy"]
        assert low <= gain <= high and low > 0  # a perfect model is confidently ahead of both
    assert "gain_ci" not in baselines(x[:200], y[:200], x[200:], y[200:], 0.5)["majority_class"]  # as before
