"""The fairness gate's other limits as training constraints (pipelines.training.limits): a bound head also keeps
the gated groupings it is not bound on within their limits, and an unconstrained head ignores them."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipelines.core.config import TrainConfig
from pipelines.training.bound_choice import Check
from pipelines.training.limits import SIDE_FLOOR, side_blocks, side_indicators, side_limits


def _two_groupings(n: int = 1600, seed: int = 3):
    """`a` barely relates to the label; `b` (independent of `a`) predicts it through the first feature."""
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, 2, n), rng.integers(0, 2, n)
    x = np.column_stack([rng.normal(size=n) + 1.2 * b, rng.normal(size=n), rng.normal(size=n)]).astype(np.float32)
    y = (x[:, 0] + 0.5 * x[:, 1] + 0.4 * rng.normal(size=n) > 0.6).astype(np.float32)
    return x, y, a, b


def test_a_bound_head_also_keeps_another_grouping_within_its_limit():
    from pipelines.training.stacked import train_stacked
    from pipelines.training.train import predict_keras

    x, y, a, b = _two_groupings()
    onehot = np.eye(2, dtype=np.float32)
    config = TrainConfig(hidden_units=[8], epochs=15, batch_size=64, early_stopping_patience=None)
    bounds = [1.0, 0.1]

    def trained(groups, side):
        """Each head's gap in mean probability between `b`'s groups (what the constraint bounds)."""
        models = train_stacked(x, y, x, y, config, bounds, groups=groups, val_groups=groups, bounds=bounds, side=side)
        probas = [predict_keras(model, x) for model, _ in models]
        return [float(abs(p[b == 1].mean() - p[b == 0].mean())) for p in probas]

    alone = trained(onehot[a], ())
    with_side = trained(np.concatenate([onehot[a], onehot[b]], 1), ((2, "demographic_parity", 1.0, 0.0),))
    assert alone[1] > 0.2, alone  # bound on `a` only: `b`'s gap stays
    assert with_side[1] < 0.13, (alone, with_side)  # `b` kept near the bound x ratio (0.1) too
    assert with_side[0] > 0.2, with_side  # the unconstrained head ignores the side limit


def test_side_limits_follow_the_gate_checks_and_their_gated_groups():
    test = pd.DataFrame({"race": ["w"] * 50 + ["b"] * 40 + ["h"] * 5, "male": ["1"] * 60 + ["0"] * 35})
    checks = [Check("race", "demographic_parity_difference", 0.1, test["race"].to_numpy(), test["race"].to_numpy()),
              Check("race:male", "equalized_odds_difference", 0.2, np.array([]), np.array(
                  [f"{r}:{m}" for r, m in zip(test["race"], test["male"])])),
              Check("male", "demographic_parity_difference", 0.1, np.array([]), np.array(["1"] * 95))]
    side = side_limits(checks, 0.05, 30, ["race", "male"])
    assert [(s.grouping, s.columns, s.constraint, s.ratio, s.groups) for s in side] == [
        ("race", ["race"], "demographic_parity", 2.0, ["b", "w"]),  # `h` has 5 test rows: not gated
        ("race:male", ["race", "male"], "equalized_odds", 4.0, ["b:0", "w:1"])]  # `male` has one group: dropped
    assert side_blocks(side) == ((2, "demographic_parity", 2.0, pytest.approx(0.1 * SIDE_FLOOR)),
                                 (2, "equalized_odds", 4.0, pytest.approx(0.2 * SIDE_FLOOR)))
    rows = pd.DataFrame({"race": ["w", "h", "b"], "male": ["1", "1", "0"]})
    assert side_indicators(rows, side).tolist() == [[0, 1, 0, 1], [0, 0, 0, 0], [1, 0, 1, 0]]


def test_every_pair_of_a_block_is_bounded_and_side_blocks_leave_the_unconstrained_head_free():
    from pipelines.training.stacked import _blocks, _pair_bounds, _pairs

    blocks = _blocks(5, "demographic_parity", ((2, "equalized_odds", 2.0, 0.07),))  # 3 groups, then 2 groups x 2 cells
    matrix, owner = _pairs(blocks)
    assert matrix.shape == (3 + 4, 3 + 1 + 1) and owner.tolist() == [0, 0, 0, 1, 1]
    means = np.array([0.2, 0.5, 0.9, 0.1, 0.4, 0.3, 0.3], np.float32)  # pair gaps: the gate's spreads
    assert np.abs(means @ matrix) == pytest.approx([0.3, 0.7, 0.4, 0.3, 0.0])
    bounds = _pair_bounds([1.0, 0.05, 0.02], blocks, owner)
    assert bounds.tolist() == [[1.0] * 5, pytest.approx([0.05, 0.05, 0.05, 0.1, 0.1]),
                               pytest.approx([0.02, 0.02, 0.02, 0.07, 0.07])]  # a tight head: the side floor
