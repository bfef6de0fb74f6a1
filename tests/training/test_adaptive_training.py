"""Training sized to the data: enough optimizer steps on small data, early stopping, class weights, baselines."""
from __future__ import annotations

import numpy as np
import pytest

from pipelines.core.config import TrainConfig
from pipelines.training.baselines import baselines
from pipelines.training.train import class_weights, planned_epochs


def test_auto_epochs_reach_the_minimum_number_of_steps():
    config = TrainConfig()  # epochs: auto, min_steps 1000, batch 256, at most 200 epochs
    assert planned_epochs(27_000, config) == 10  # 106 steps an epoch
    assert planned_epochs(700, config) == 200  # 3 steps an epoch: 334 wanted, capped at max_epochs
    assert planned_epochs(700, TrainConfig(min_steps=300)) == 100
    assert planned_epochs(700, TrainConfig(epochs=7)) == 7  # params can pin it


def test_balanced_class_weights_make_each_class_weigh_the_same():
    y = np.array([1, 0, 0, 0], dtype=np.float32)
    weights = class_weights(y, TrainConfig(class_weight="balanced"))
    assert weights[y == 1].sum() == pytest.approx(weights[y == 0].sum())
    assert class_weights(y, TrainConfig()) is None
    assert class_weights(np.ones(4, dtype=np.float32), TrainConfig(class_weight="balanced")) is None


def test_small_data_learns_more_than_the_majority_rate():
    """700 rows, 30% positive: with 10 epochs of batch 256 (30 steps) the MLP answered the majority class."""
    from pipelines.training.train import predict_keras, train_model

    rng = np.random.default_rng(0)
    x = rng.normal(size=(1000, 6)).astype(np.float32)
    y = ((x[:, 0] + 0.5 * x[:, 1] + rng.normal(scale=0.8, size=1000)) > 0.9).astype(np.float32)
    train, val, test = slice(0, 700), slice(700, 800), slice(800, 1000)
    model, history = train_model(x[train], y[train], x[val], y[val], TrainConfig(hidden_units=[16]))
    accuracy = float(np.mean((predict_keras(model, x[test]) >= 0.5) == y[test]))
    simple = baselines(x[train], y[train], x[test], y[test], 0.5)
    assert accuracy > simple["majority_class"]["accuracy"] + 0.05
    assert accuracy >= simple["logistic_regression"]["accuracy"] - 0.03
    assert 1 <= len(history["loss"]) <= 200
