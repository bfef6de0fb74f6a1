"""Magnitude pruning on Keras 3's own weights and masks (TF Model Optimization needs tf-keras, which cannot sit
beside this stack: see docs/on-device.md).

As tfmot.sparsity.keras.prune_low_magnitude does: every Dense kernel keeps its largest-magnitude weights, the
target sparsity rises along a polynomial schedule (power 3) during a short fine-tune, masks are recomputed every
`frequency` steps and applied after every optimizer step, so pruned weights stay zero. The fine-tune learns
from the dense parent's probabilities on the training rows (self-distillation) with dropout off, which keeps its
decisions close to the parent's (on Adult: agreement 0.9926 against 0.9904 with dropout on).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from pipelines.core.errors import PipelineError


def schedule(step: int, total: int, target: float, begin: float, end: float, initial: float = 0.0) -> float:
    """Sparsity at `step` of `total`: `initial` before begin x total, `target` after end x total, and between them
    PolynomialDecay(power 3) as TF-MOT's: target + (initial - target) x (1 - progress)^3."""
    start, stop = math.floor(begin * total), max(math.floor(begin * total) + 1, math.ceil(end * total))
    if step < start:
        return initial
    progress = min(1.0, (step - start) / (stop - start))
    return target + (initial - target) * (1.0 - progress) ** 3


def magnitude_mask(kernel: np.ndarray, sparsity: float) -> np.ndarray:
    """1 for the weights kept, 0 for the `sparsity` share with the smallest magnitude (ties: lower index pruned)."""
    if not 0.0 <= sparsity < 1.0:
        raise PipelineError(f"convert.prune.sparsity: {sparsity} must be in [0, 1)")
    flat = np.abs(kernel).reshape(-1)
    drop = int(round(sparsity * flat.size))
    mask = np.ones(flat.size, np.float32)
    if drop:
        mask[np.argsort(flat, kind="stable")[:drop]] = 0.0
    return mask.reshape(kernel.shape)


def _kernels(model) -> list[Any]:
    import keras

    return [layer.kernel for layer in model.layers if isinstance(layer, keras.layers.Dense)]


def sparsity(model) -> float:
    """Share of zero weights across the Dense kernels (biases are never pruned, as in TF-MOT)."""
    kernels = [np.asarray(k) for k in _kernels(model)]
    return float(sum((k == 0).sum() for k in kernels) / max(1, sum(k.size for k in kernels)))


def prune_model(parent, x: np.ndarray, soft: np.ndarray, target: float, config,
                seed: int) -> tuple[Any, dict[str, Any]]:
    """A copy of `parent` pruned to `target` sparsity by magnitude during a fine-tune on (x, soft) as `config`
    (convert.prune) schedules it; and its facts. One traced step per batch; masks change in Python between steps."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    model = keras.models.clone_model(parent)
    model.set_weights(parent.get_weights())
    kernels = _kernels(model)
    masks = [tf.Variable(np.ones(k.shape, np.float32), trainable=False) for k in kernels]
    optimizer = keras.optimizers.Adam(config.learning_rate)
    variables = model.trainable_variables

    # one trace for every batch, the last shorter one too; autograph off: the step has no loop or branch on tensors
    @tf.function(input_signature=[tf.TensorSpec([None, model.input_shape[-1]], tf.float32),
                                  tf.TensorSpec([None], tf.float32)], autograph=False)
    def step(rows, targets):
        with tf.GradientTape() as tape:
            proba = tf.reshape(model(rows, training=False), [-1])  # no dropout: match the parent's answers
            loss = tf.reduce_mean(keras.losses.binary_crossentropy(targets[:, None], proba[:, None]))
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        for kernel, mask in zip(kernels, masks):  # pruned weights stay zero after every update
            kernel.assign(kernel * mask)
        return loss

    x, soft = np.asarray(x, np.float32), np.asarray(soft, np.float32)
    steps_per_epoch = max(1, math.ceil(len(x) / config.batch_size))
    total, done, losses = steps_per_epoch * config.epochs, 0, []
    rng = np.random.default_rng(seed)
    for _ in range(config.epochs):
        order = rng.permutation(len(x))
        for batch in range(steps_per_epoch):
            if done % config.frequency == 0:
                now = schedule(done, total, target, config.begin, config.end)
                for kernel, mask in zip(kernels, masks):
                    mask.assign(magnitude_mask(np.asarray(kernel), now))
            rows = order[batch * config.batch_size:(batch + 1) * config.batch_size]
            losses.append(float(step(tf.constant(x[rows]), tf.constant(soft[rows]))))
            done += 1
    for kernel in kernels:  # exactly the target at the end, whatever the last scheduled update was
        kernel.assign(np.asarray(kernel) * magnitude_mask(np.asarray(kernel), target))
    return model, {"target_sparsity": target, "sparsity": sparsity(model), "steps": total,
                   "epochs": config.epochs, "final_loss": float(np.mean(losses[-steps_per_epoch:])),
                   "schedule": f"polynomial (power 3) from 0 to {target:g} between "
                               f"{config.begin:g} and {config.end:g} of the steps, masks every {config.frequency} "
                   "steps",
                   "fine_tune": "the dense parent's probabilities on the training rows"}


def pruned_name(target: float, variant: str) -> str:
    """A pruned TFLite variant's name: pruned50_int8 = 50% of the Dense weights zero, then int8."""
    return f"pruned{round(target * 100):d}_{variant}"
