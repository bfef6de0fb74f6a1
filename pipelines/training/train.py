"""The Keras model: builder and seeded training loop."""
from __future__ import annotations

import contextlib
import math
from typing import Any

import numpy as np

from pipelines.core.config import TrainConfig
from pipelines.core.progress import Progress


def _losses(logs: dict | None) -> str:
    """An epoch's losses for the progress line."""
    return " ".join(f"{k} {float(v):.4f}" for k, v in (logs or {}).items() if k in ("loss", "val_loss"))


def seed_everything(seed: int, threads: int = 0) -> None:
    """Same data + code + params -> same weights (CPU kernels made deterministic); `threads` (train.threads, 0:
    TensorFlow's default) sets TensorFlow's intra-op threads unless TensorFlow already ran in this process (its
    thread pool is fixed then). The weights do not depend on it."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    if threads and tf.config.threading.get_intra_op_parallelism_threads() != threads:
        # "cannot be modified after initialization": the process keeps the pool it has
        with contextlib.suppress(RuntimeError):
            tf.config.threading.set_intra_op_parallelism_threads(threads)


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
    model = keras.Model(inputs, outputs, name="network")
    model.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate),
        loss="binary_crossentropy",
        metrics=["accuracy", keras.metrics.AUC(name="auc")],
    )
    return model


def fairness_gap(proba, labels, groups, constraint: str = "demographic_parity"):
    """Differentiable group gap of a batch (keras.ops, so it runs inside the training step).

    Demographic parity: the share-weighted mean |group mean probability - overall mean probability|.
    Equalized odds: the same within the true positives and within the true negatives, summed.
    Rows with no group (all-zero indicators) take no part. `proba` may be [rows] or [heads, rows] (one gap per
    head, pipelines.training.stacked).
    """
    from keras import ops

    def gap(p, member):
        sizes = ops.sum(member, axis=0)
        total = ops.maximum(ops.sum(sizes), 1.0)
        sums = ops.matmul(p, member)  # [..., groups]
        means = sums / ops.maximum(sizes, 1.0)
        overall = ops.sum(sums, axis=-1, keepdims=True) / total
        return ops.sum(sizes / total * ops.abs(means - overall), axis=-1)

    proba, labels, groups = (ops.cast(t, "float32") for t in (proba, labels, groups))
    if constraint == "demographic_parity":
        return gap(proba, groups)
    positive = ops.expand_dims(labels, 1)
    return gap(proba, groups * positive) + gap(proba, groups * (1.0 - positive))


def group_sums(proba, labels, groups, constraint: str = "demographic_parity", mask=None):
    """Per group of a batch: (sum of `proba`, rows), each [heads, groups] for demographic parity, [heads, 2 x groups]
    for equalized odds (within the true positives, then the true negatives). `mask` ([rows, heads], 0/1) keeps only
    each head's own rows (the folds of a cross-validation). What pipelines.training.stacked's primal-dual training
    compares group by group."""
    from keras import ops

    def sums(p, member):
        member = ops.expand_dims(ops.transpose(mask), -1) * member[None] if mask is not None else member[None]
        shape = (ops.shape(p)[0],) + tuple(ops.shape(member)[1:])
        totals = ops.einsum("kr,krg->kg", p, ops.broadcast_to(member, shape))
        return totals, ops.broadcast_to(ops.sum(member, axis=1), ops.shape(totals))

    proba, labels, groups = (ops.cast(t, "float32") for t in (proba, labels, groups))
    mask = None if mask is None else ops.cast(mask, "float32")
    if constraint == "demographic_parity":
        return sums(proba, groups)
    positive = ops.expand_dims(labels, 1)
    halves = sums(proba, groups * positive), sums(proba, groups * (1.0 - positive))
    return tuple(ops.concatenate([a, b], -1) for a, b in zip(*halves))


def _penalized(network, strength: float, constraint: str, config: TrainConfig):
    """A training-only wrapper: loss = binary cross-entropy + strength x fairness_gap. The network is what is saved.

    Targets are [label, group indicators...]; metrics see the label column only.
    """
    import keras

    class FairnessPenalized(keras.Model):
        def __init__(self):
            super().__init__(name="fairness_penalized")
            self.network = network

        def call(self, inputs, training=False):
            return self.network(inputs, training=training)

        def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
            labels, groups = y[:, :1], y[:, 1:]
            loss = super().compute_loss(x, labels, y_pred, sample_weight, training)
            return loss + strength * fairness_gap(y_pred[:, 0], labels[:, 0], groups, constraint)

        def compute_metrics(self, x, y, y_pred, sample_weight=None):
            return super().compute_metrics(x, y[:, :1], y_pred, sample_weight)

    wrapper = FairnessPenalized()
    wrapper.compile(optimizer=keras.optimizers.Adam(config.learning_rate), loss="binary_crossentropy",
                    metrics=["accuracy", keras.metrics.AUC(name="auc")])
    return wrapper


def planned_epochs(rows: int, config: TrainConfig) -> int:
    """`train.epochs`, or with `auto` enough epochs for `min_steps` optimizer steps on `rows` (at most max_epochs):
    700 rows in batches of 256 take 3 steps an epoch, so 10 epochs would be 30 steps and learn nothing."""
    if config.epochs != "auto":
        return config.epochs
    steps_per_epoch = max(1, math.ceil(rows / config.batch_size))
    return max(1, min(config.max_epochs, math.ceil(config.min_steps / steps_per_epoch)))


def patience_epochs(rows: int, config: TrainConfig) -> int | None:
    """Epochs early stopping waits for a better validation loss: `early_stopping_patience`, or enough epochs for
    `min_patience_steps` optimizer steps when that is more (None: no early stopping). 5 epochs of a 1,000-row data
    set are 20 steps, and a validation loss over a few hundred rows is noisy enough to stop there by chance."""
    if config.early_stopping_patience is None:
        return None
    steps_per_epoch = max(1, math.ceil(rows / config.batch_size))
    return max(config.early_stopping_patience, math.ceil(config.min_patience_steps / steps_per_epoch))


def early_stopping(rows: int, config: TrainConfig) -> list[Any]:
    """Keras fit's early stopping on the validation loss, best weights kept, after `patience_epochs` (none when
    that is None)."""
    import keras

    patience = patience_epochs(rows, config)
    return [] if patience is None else [keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience,
                                                                      restore_best_weights=True)]


def class_weights(y: np.ndarray, config: TrainConfig, positives: float | None = None) -> np.ndarray | None:
    """Per-row weights making each class weigh the same in the loss (`class_weight: balanced`), else None.
    `positives`: the positive share of all the rows, when `y` is one batch of them."""
    if config.class_weight != "balanced":
        return None
    positives = float(np.mean(y)) if positives is None else positives
    if positives in (0.0, 1.0):
        return None
    return np.where(y > 0.5, 0.5 / positives, 0.5 / (1 - positives)).astype(np.float32)


def train_model(
    x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray, config: TrainConfig, *,
    sample_weight: np.ndarray | None = None, groups: np.ndarray | None = None, val_groups: np.ndarray | None = None,
    penalty: float = 0.0, constraint: str = "demographic_parity",
) -> tuple[Any, dict[str, list[float]]]:
    """Fit the model; return it with the per-epoch history.

    Mitigation (pipelines.training.mitigation) comes in as `sample_weight`, or as a `penalty` on the gap between
    the `groups` (one-hot rows) in each batch; either way the returned model is the plain functional network.
    """
    import keras

    seed_everything(config.seed, config.threads)
    model = build_model(x_train.shape[1], config)
    balance = class_weights(y_train, config)
    if balance is not None:
        sample_weight = balance if sample_weight is None else sample_weight * balance
    epochs = planned_epochs(len(x_train), config)
    bar = Progress("training epochs", epochs)
    callbacks = [keras.callbacks.LambdaCallback(on_epoch_end=lambda _, logs: bar.advance(note=_losses(logs)))]
    callbacks += early_stopping(len(x_train), config)
    fitted, y_fit, val = model, y_train, (x_val, y_val)
    if penalty > 0:
        if groups is None or val_groups is None:
            raise ValueError("a fairness penalty needs group indicators for the training and validation rows")
        fitted = _penalized(model, penalty, constraint, config)
        y_fit = np.column_stack([y_train, groups]).astype(np.float32)
        val = (x_val, np.column_stack([y_val, val_groups]).astype(np.float32))
    with bar:
        history = fitted.fit(
            x_train, y_fit,
            sample_weight=sample_weight,
            validation_data=val,
            epochs=epochs,
            batch_size=config.batch_size,
            shuffle=True,
            callbacks=callbacks,
            verbose=0,
        )
    if fitted is not model:  # keep the optimizer that trained the weights, so the saved model reloads cleanly
        model.compile(optimizer=fitted.optimizer, loss=model.loss, metrics=["accuracy", keras.metrics.AUC(name="auc")])
    return model, {k: [float(v) for v in vals] for k, vals in history.history.items()}


PREDICT_CHUNK = 65_536  # rows per call: bounded memory on large splits


def predict_keras(model, x: np.ndarray) -> np.ndarray:
    """Positive-class probabilities from the Keras model: the model called on chunks of rows (inference mode).
    `model.predict` builds a dataset and a predict function on every call, which costs more than the rows."""
    if len(x) == 0:
        return np.zeros(0, np.float32)
    x = np.asarray(x, np.float32)
    return np.concatenate([np.asarray(model(x[i:i + PREDICT_CHUNK], training=False)).reshape(-1)
                           for i in range(0, len(x), PREDICT_CHUNK)])
