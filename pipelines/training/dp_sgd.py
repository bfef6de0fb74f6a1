"""DP-SGD for the Keras model (Abadi et al. 2016): Poisson-sampled batches, per-example gradients clipped to an
L2 norm, Gaussian noise on their sum, then the optimizer step (Adam: post-processing of the noisy gradient).

Per-example gradients come from one batched forward pass and `tape.jacobian` of the per-example loss vector
(TensorFlow vectorizes it with pfor): no loop over rows. Sampling is Poisson (each row joins each step's batch
independently with probability q = batch_size / rows), which is what the accountant (pipelines.training.accountant)
assumes; the noisy sum is divided by the expected batch size q x rows. The step count is fixed in advance and the
accountant is charged for every step taken; validation rows only report progress (no early stopping, no weights
chosen by validation).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from pipelines.core.config import DpConfig, TrainConfig
from pipelines.core.progress import Progress
from pipelines.training.accountant import Budget, plan


def dp_plan(rows: int, config: DpConfig) -> tuple[float, int]:
    """Sampling rate and step count of a DP-SGD run over `rows` training rows."""
    rate = min(1.0, config.batch_size / rows)
    return rate, max(1, math.ceil(config.epochs / rate))


def budget(rows: int, config: DpConfig) -> Budget:
    """The noise and epsilon of the run, checked against `max_epsilon` (one line if it cannot be met)."""
    rate, steps = dp_plan(rows, config)
    return plan(noise_multiplier=config.noise_multiplier, target_epsilon=config.target_epsilon,
                max_epsilon=config.max_epsilon, delta=config.delta, sampling_rate=rate, steps=steps,
                what="privacy.dp")


def clipped_noisy_sum(per_example: list, l2_clip: float, noise_std: float, seed_stream=None):
    """Clip each row's gradient (all variables together) to `l2_clip` and add N(0, noise_std^2) to the sum.

    `per_example` holds one tensor per variable with the rows on axis 0. Returns (sums, per-row norms before
    clipping)."""
    import tensorflow as tf

    squares = [tf.reduce_sum(tf.reshape(tf.square(g), [tf.shape(g)[0], -1]), axis=1) for g in per_example]
    norms = tf.sqrt(tf.add_n(squares))
    scale = tf.minimum(1.0, l2_clip / tf.maximum(norms, 1e-12))
    sums = []
    for index, g in enumerate(per_example):
        shape = tf.concat([tf.shape(g)[:1], tf.ones([tf.rank(g) - 1], tf.int32)], 0)
        total = tf.reduce_sum(g * tf.reshape(scale, shape), axis=0)
        noise = tf.random.stateless_normal(tf.shape(total), seed=seed_stream[index]) * noise_std \
            if seed_stream is not None else tf.random.normal(tf.shape(total)) * noise_std
        sums.append(total + noise)
    return sums, norms


def per_example_gradients(model, x, y, sample_weight=None):
    """Each row's gradient of its (weighted) binary cross-entropy, for every trainable variable: [rows, ...]."""
    import keras
    import tensorflow as tf

    with tf.GradientTape() as tape:
        proba = model(x, training=True)[:, 0]
        losses = keras.losses.binary_crossentropy(y[:, None], proba[:, None])
        if sample_weight is not None:
            losses = losses * sample_weight
    return tape.jacobian(losses, model.trainable_variables, experimental_use_pfor=True)


def train_dp(x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray, config: TrainConfig,
             dp: DpConfig, planned: Budget, sample_weight: np.ndarray | None = None
             ) -> tuple[Any, dict[str, list[float]], dict[str, Any]]:
    """Train the project's MLP with DP-SGD under the planned budget; return it, its history and the privacy facts."""
    import keras
    import tensorflow as tf

    from pipelines.training.train import build_model, seed_everything

    seed_everything(config.seed, config.threads)
    model = build_model(x_train.shape[1], config.model_copy(update={"learning_rate": dp.learning_rate}))
    optimizer = model.optimizer
    rows = len(x_train)
    rate, steps = planned.sampling_rate, planned.steps
    expected = rate * rows
    noise_std = planned.noise_multiplier * dp.l2_clip
    weights = np.ones(rows, np.float32) if sample_weight is None else sample_weight.astype(np.float32)

    @tf.function(input_signature=[tf.TensorSpec([None, x_train.shape[1]], tf.float32),
                                  tf.TensorSpec([None], tf.float32), tf.TensorSpec([None], tf.float32),
                                  tf.TensorSpec([len(model.trainable_variables), 2], tf.int32)])
    def step(x, y, w, seeds):
        grads = per_example_gradients(model, x, y, w)
        sums, norms = clipped_noisy_sum(grads, dp.l2_clip, noise_std, tf.unstack(seeds))
        optimizer.apply_gradients(zip([s / expected for s in sums], model.trainable_variables))
        return tf.reduce_mean(norms)

    rng = np.random.default_rng(config.seed)
    history: dict[str, list[float]] = {"loss": [], "accuracy": [], "val_loss": [], "val_accuracy": [],
                                       "grad_norm": [], "epsilon": []}
    steps_per_epoch = max(1, round(1 / rate))
    from pipelines.training.accountant import epsilon as spent

    norms = []
    with Progress("DP-SGD steps", steps) as bar:
        for index in range(steps):
            chosen = np.flatnonzero(rng.random(rows) < rate)  # Poisson sampling; an empty batch is noise only
            seeds = rng.integers(0, 2**31 - 1, size=(len(model.trainable_variables), 2), dtype=np.int32)
            norms.append(float(step(x_train[chosen], y_train[chosen].astype(np.float32), weights[chosen], seeds)))
            if (index + 1) % steps_per_epoch == 0 or index + 1 == steps:
                for name, (x, y) in {"": (x_train, y_train), "val_": (x_val, y_val)}.items():
                    loss, accuracy, _ = model.evaluate(x, y, batch_size=4096, verbose=0)
                    history[f"{name}loss"].append(float(loss))
                    history[f"{name}accuracy"].append(float(accuracy))
                history["grad_norm"].append(float(np.mean(norms)))
                history["epsilon"].append(spent(planned.noise_multiplier, rate, index + 1, planned.delta))
                norms = []
            bar.advance(note=f"epsilon {history['epsilon'][-1]:.3g}" if history["epsilon"] else "")
    model.compile(optimizer=optimizer, loss="binary_crossentropy", metrics=["accuracy", keras.metrics.AUC(name="auc")])
    facts = {"method": "dp_sgd", **planned.facts(), "l2_clip": dp.l2_clip, "expected_batch_size": expected,
             "sampling": "poisson", "rows": rows, "target_epsilon": dp.target_epsilon,
             "max_epsilon": dp.max_epsilon, "learning_rate": dp.learning_rate, "unit": "example"}
    return model, history, facts
