"""The Keras model: builder and seeded training loop."""
from __future__ import annotations

from typing import Any

import numpy as np

from pipelines.config import TrainConfig


def seed_everything(seed: int) -> None:
    """Same data + code + params -> same weights (CPU kernels made deterministic)."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def build_model(width: int, config: TrainConfig):
    """An MLP over the encoded feature vector with one sigmoid output."""
    import keras

    inputs = keras.Input(shape=(width,), name="features")
    hidden = inputs
    for units in config.hidden_units:
        hidden = keras.layers.Dense(units, activation="relu")(hidden)
        if config.dropout:
            hidden = keras.layers.Dropout(config.dropout)(hidden)
    outputs = keras.layers.Dense(1, activation="sigmoid", name="probability")(hidden)
    model = keras.Model(inputs, outputs, name="income_mlp")
    model.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate),
        loss="binary_crossentropy",
        metrics=["accuracy", keras.metrics.AUC(name="auc")],
    )
    return model


def train_model(
    x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray, config: TrainConfig
) -> tuple[Any, dict[str, list[float]]]:
    """Fit the model; return it with the per-epoch history."""
    seed_everything(config.seed)
    model = build_model(x_train.shape[1], config)
    history = model.fit(
        x_train, y_train,
        validation_data=(x_val, y_val),
        epochs=config.epochs,
        batch_size=config.batch_size,
        shuffle=True,
        verbose=0,
    )
    return model, {k: [float(v) for v in vals] for k, vals in history.history.items()}


def predict_keras(model, x: np.ndarray) -> np.ndarray:
    """Positive-class probabilities from the Keras model."""
    return model.predict(x, batch_size=4096, verbose=0).reshape(-1)
