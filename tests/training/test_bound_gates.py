"""`fairness.method: bound` weighs every limit the test-split fairness gate applies to the Keras model (each gated
grouping's parity and equalized-odds limits), not only the constrained disparity."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipelines.core.config import FairnessGates
from pipelines.core.errors import PipelineError
from pipelines.training import bound_choice
from pipelines.training.sweep import heldout_figure, other_checks

KEY = "demographic_parity_difference"


def _eod_apart(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two groups with the same selection rate (0.5) but true positive rates 0.9 and 0.5 (false: 0.1 and 0.5)."""
    labels = np.repeat(["a", "b"], n)
    y = np.concatenate([np.arange(n) < n // 2, np.arange(n) < n // 2]).astype(float)
    decided = np.concatenate([np.where(y[:n] > 0.5, rng.random(n) < 0.9, rng.random(n) < 0.1),
                              rng.random(n) < 0.5]).astype(float)
    return labels, y, decided


def test_a_head_within_parity_but_not_equalized_odds_rarely_passes_every_limit():
    rng = np.random.default_rng(0)
    labels, y, decided = _eod_apart(rng, 2000)
    test_labels, test_y = np.repeat(["a", "b"], 500), np.tile(np.arange(500) < 250, 2).astype(float)
    parity = bound_choice.Check("g", KEY, 0.1, labels, test_labels)
    odds = bound_choice.Check("g", "equalized_odds_difference", 0.2, labels, test_labels)
    assert bound_choice.joint_pass_share(y, decided, test_y, [parity], 30, 0) > 0.9
    assert bound_choice.joint_pass_share(y, decided, test_y, [parity, odds], 30, 0) < 0.05
    # one check is the single-limit share, draw for draw
    assert bound_choice.joint_pass_share(y, decided, test_y, [parity], 30, 0) == \
        bound_choice.pass_share(y, decided, labels, test_labels, test_y, 0.1, "demographic_parity", 30, 0)
    assert heldout_figure(y, decided, odds, 0.5, 30) == pytest.approx(0.4, abs=0.05)
    # checks measured on other rows (`more`) are drawn in the same simulated splits
    assert bound_choice.joint_pass_share(y, decided, test_y, [parity], 30, 0, more=((y, decided, [odds]),)) == \
        bound_choice.joint_pass_share(y, decided, test_y, [parity, odds], 30, 0)


def test_the_simulated_gate_leaves_out_a_rate_with_too_few_test_rows_in_its_denominator():
    """As the gate does: a group of 500 test rows with 20 negatives has no false positive rate to gate at 30."""
    rng = np.random.default_rng(0)
    labels, y, decided = _eod_apart(rng, 2000)
    test_labels = np.repeat(["a", "b"], 500)
    odds = bound_choice.Check("g", "equalized_odds_difference", 0.2, labels, test_labels)
    balanced = np.tile(np.arange(500) < 250, 2).astype(float)
    assert bound_choice.joint_pass_share(y, decided, balanced, [odds], 30, 0) < 0.05  # TPR 0.9 vs 0.5
    few = np.tile(np.arange(500) < 480, 2).astype(float)  # 480 positives, 20 negatives a group
    assert bound_choice.joint_pass_share(y, decided, few, [odds], 30, 0) < 0.05  # the TPR gap is still gated
    few_positives = 1 - few  # 20 positives, 480 negatives: only the false positive rates (0.1, 0.5) are gated
    assert bound_choice.joint_pass_share(y, decided, few_positives, [odds], 30, 0) < 0.05
    close = bound_choice.Check("g", "equalized_odds_difference", 0.45, labels, test_labels)
    assert bound_choice.joint_pass_share(y, decided, few_positives, [close], 30, 0) > 0.9  # 0.4 gap, 480 rows
    # the held-out figure the choice names leaves out the same rates: only the false positive rates count here
    fpr = heldout_figure(y, decided, odds, 0.5, 30, few_positives)
    tpr = heldout_figure(y, decided, odds, 0.5, 30, few)
    assert fpr == pytest.approx(0.4, abs=0.05) and tpr == pytest.approx(0.4, abs=0.05) and fpr != tpr
    assert heldout_figure(y, decided, odds, 0.5, 30, np.tile(np.arange(500) < 490, 2).astype(float)) == tpr
    assert heldout_figure(y, decided, odds, 0.5, 600, few) is None  # no group has 600 test rows


def _point(bound, accuracy, disparity, share, others=(), joint=None):
    return {"strength": bound, "bound": bound, "accuracy": accuracy, KEY: disparity, "pass_share": share,
            "joint_pass_share": joint, "one_class": False, "other_limits": [list(o) for o in others]}


OVER = ("male", "equalized_odds_difference", 0.31, 0.2)
UNDER = ("male", "equalized_odds_difference", 0.12, 0.2)


def test_a_head_meeting_parity_but_not_equalized_odds_is_not_chosen_when_another_meets_both():
    points = [_point(1.0, 0.80, 0.04, 0.95, [OVER], 0.1), _point(0.5, 0.78, 0.05, 0.95, [UNDER], 0.92)]
    best, why = bound_choice.choose(points, 0.1, KEY, None, "", 0.9, "the rows")
    assert best["bound"] == 0.5
    assert why == ("bound 0.5: the most accurate on the rows (0.7800) with demographic parity difference 0.0500 <= "
                   "0.1 and the fairness gate's 1 other limit in 92% of simulated test splits "
                   "(fairness.pass_share = 0.9)")
    assert bound_choice.unmet(points[0]) == ["equalized odds difference 0.3100 > 0.2 on male"]
    points[1]["joint_pass_share"] = 0.6  # within every limit on the rows, all of them together less sure
    best, why = bound_choice.choose(points, 0.1, KEY, None, "", 0.9, "the rows")
    assert best["bound"] == 0.5 and why.endswith("(fairness.pass_share = 0.9), and within the fairness gate's 1 "
                                                 "other limit on the rows (all limits in 60% of the splits)")


def test_where_no_head_meets_every_limit_the_bound_decides_and_the_line_names_the_miss():
    points = [_point(1.0, 0.80, 0.04, 0.95, [OVER], 0.1), _point(0.5, 0.70, 0.30, 0.99, [UNDER], 0.0)]
    best, why = bound_choice.choose(points, 0.1, KEY, 0.75, "accuracy >= 0.75", 0.9, "the rows")
    assert best["bound"] == 1.0
    assert why == ("bound 1: the most accurate on the rows (0.8000) with demographic parity difference 0.0400 <= 0.1 "
                   "in 95% of simulated test splits (fairness.pass_share = 0.9) and accuracy >= 0.75; no head is also "
                   "within every other limit of gates.fairness: equalized odds difference 0.3100 > 0.2 on male")


def test_the_checks_are_the_gates_own_limits_over_every_gated_grouping():
    held = pd.DataFrame({"race": ["x", "y"] * 50, "male": ["0", "1", "1", "0"] * 25})
    gates = FairnessGates(max_demographic_parity_difference={"race": 0.1, "race:male": 0.15},
                          max_equalized_odds_difference=0.2)
    checks = other_checks(gates, held, held, "race", KEY)
    assert [(c.grouping, c.figure, c.limit) for c in checks] == [
        ("race", "equalized_odds_difference", 0.2), ("male", "equalized_odds_difference", 0.2),
        ("race:male", KEY, 0.15), ("race:male", "equalized_odds_difference", 0.2)]
    assert list(checks[2].labels[:2]) == ["x:0", "y:1"]
    assert other_checks(FairnessGates(max_demographic_parity_difference=None, max_equalized_odds_difference=None),
                        held, held, "race", KEY) == []
    with pytest.raises(PipelineError, match=r"^gates.fairness.max_equalized_odds_difference: 'sex' is not a "
                                            r"grouping \(race, male, race:male\)$"):
        other_checks(FairnessGates(max_equalized_odds_difference={"sex": 0.2}), held, held, "race", KEY)
