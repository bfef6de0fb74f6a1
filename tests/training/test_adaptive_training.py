"""Training sized to the data: enough optimizer steps on small data, early stopping, class weights, baselines."""
from __future__ import annotations

import numpy as np
import pytest

from pipelines.core.config import TrainConfig
from pipelines.training.baselines import baselines
from pipelines.training.train import class_weights, patience_epochs, planned_epochs


def test_auto_epochs_reach_the_minimum_number_of_steps():
    config = TrainConfig()  # epochs: auto, min_steps 1000, batch 256, at most 200 epochs
    assert planned_epochs(27_000, config) == 10  # 106 steps an epoch
    assert planned_epochs(700, config) == 200  # 3 steps an epoch: 334 wanted, capped at max_epochs
    assert planned_epochs(700, TrainConfig(min_steps=300)) == 100
    assert planned_epochs(700, TrainConfig(epochs=7)) == 7  # params can pin it


def test_early_stopping_waits_at_least_min_patience_steps():
    config = TrainConfig()  # patience 5 epochs, at least 200 steps, batch 256
    assert patience_epochs(27_000, config) == 5  # 106 steps an epoch: 5 epochs are 530 steps
    assert patience_epochs(1_000, config) == 50  # 4 steps an epoch: 5 epochs would be 20 steps
    assert patience_epochs(1_000, TrainConfig(min_patience_steps=0)) == 5
    assert patience_epochs(1_000, TrainConfig(early_stopping_patience=None)) is None


@pytest.mark.parametrize("stacked", [False, True])
def test_training_on_noise_stops_only_after_the_patience_steps(stacked):
    """Labels independent of the features: the validation loss stops improving early, and training ends
    patience_epochs after its best epoch (8 epochs of 5 steps for 40 steps), with either trainer."""
    from pipelines.training.stacked import train_stacked
    from pipelines.training.train import train_model

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(320, 4)).astype(np.float32), (rng.random(320) < 0.5).astype(np.float32)
    x_val, y_val = rng.normal(size=(200, 4)).astype(np.float32), (rng.random(200) < 0.5).astype(np.float32)
    config = TrainConfig(hidden_units=[32], epochs=100, batch_size=64, learning_rate=0.01, dropout=0.0,
                         early_stopping_patience=2, min_patience_steps=40)
    assert patience_epochs(len(x), config) == 8
    if stacked:
        (_, history), = train_stacked(x, y, x_val, y_val, config, [0.0])
    else:
        _, history = train_model(x, y, x_val, y_val, config)
    ran, best = len(history["val_loss"]), int(np.argmin(history["val_loss"])) + 1
    assert ran == best + 8 < 100


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
