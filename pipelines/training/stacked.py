"""Every sweep strength trained at once: K copies of the MLP stacked into one set of tensors.

Head k is the project's network (pipelines.training.train.build_model) with its own weights, its own loss
(binary cross-entropy + strength_k x the batch's group gap, or Kamiran-Calders weights ^ strength_k) and its
own early stopping. The heads share only the input pipeline: the same shuffled batches go through all of them
in one einsum per layer, so K strengths cost about one training on a CPU, where a small MLP's step is
dominated by per-step overhead rather than arithmetic. The summed loss has no cross terms, so each head's
gradient, and its Adam update (elementwise), is the one it would get trained alone; every head starts from the
same seeded initial weights a lone training would. What differs from training the strengths one by one is only
the random draws (shuffling order and dropout masks), so results agree within run-to-run noise
(tests/training/test_stacked.py states the tolerance).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipelines.core.config import TrainConfig
from pipelines.core.progress import Progress
from pipelines.training.metrics import roc_auc
from pipelines.training.streamed import StreamedRows


@dataclass
class _Stopping:
    """Keras EarlyStopping(monitor="val_loss", restore_best_weights=True) for one head."""

    patience: int | None
    fixed: int | None = None  # train exactly this many epochs and keep the last weights (no validation watched)
    best: float = math.inf
    best_weights: list[np.ndarray] | None = None
    best_epochs: int = 0  # epochs run when the kept weights were reached
    wait: int = 0
    stopped_after: int | None = None  # epochs run when it stopped (None: still training)
    history: dict[str, list[float]] = field(default_factory=dict)

    def update(self, epoch: int, val_loss: float, weights: list[np.ndarray]) -> None:
        if self.fixed is not None:
            self.best_weights, self.best_epochs = weights, epoch + 1
            if epoch + 1 >= self.fixed:
                self.stopped_after = epoch + 1
            return
        if val_loss < self.best or self.best_weights is None:
            self.best, self.best_weights, self.wait, self.best_epochs = val_loss, weights, 0, epoch + 1
        else:
            self.wait += 1
            if self.patience is not None and self.wait >= self.patience:
                self.stopped_after = epoch + 1


def _bce(labels, proba):
    """Per-row binary cross-entropy with Keras's clipping, for every head: [heads, rows]. `labels` is [rows] (the
    same for every head) or [heads, rows] (each head's own targets)."""
    from keras import ops

    labels = labels[None, :] if len(labels.shape) == 1 else labels
    return ops.binary_crossentropy(ops.broadcast_to(labels, ops.shape(proba)), proba)


def _rows_tensors(x) -> Callable[..., Any]:
    """A function making a batch's model inputs from constant tensors holding all rows: a dense matrix
    is gathered; CompactRows (pipelines.data.features) are gathered and one-hot expanded in the graph, so millions
    of training rows never exist as one float matrix."""
    import tensorflow as tf

    from pipelines.data.features import CompactRows, expand_tensor

    if isinstance(x, CompactRows):
        numeric, codes = tf.constant(x.numeric, tf.float32), tf.constant(x.codes, tf.int32)
        return lambda batch: expand_tensor(tf.gather(numeric, batch), tf.gather(codes, batch), list(x.sizes))
    dense = tf.constant(np.asarray(x, np.float32))
    return lambda batch: tf.gather(dense, batch)


def _width(x) -> int:
    return x.width if hasattr(x, "width") else x.shape[1]


AUC_BINS = 4096  # a streamed epoch's running AUC counts its predictions in this many equal bins (ties within a bin
# count half): the rows' predictions are not kept, and the figure is within a bin's share of pairs of the exact one


def _binned_auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """ROC AUC from the counts of positive and negative rows per probability bin (ties within a bin half)."""
    n_pos, n_neg = positive.sum(), negative.sum()
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    below = np.cumsum(negative) - negative
    return float((positive * below).sum() + 0.5 * (positive * negative).sum()) / (float(n_pos) * float(n_neg))


def _streamed_pass(x_train: StreamedRows, config: TrainConfig, step: Callable[..., Any], per_row: tuple,
                   heads: int) -> Callable[[], tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """One epoch over the tf.data batches: per-head summed batch losses, accuracy and (binned) AUC, added up batch
    by batch. The batches carry their per-row figures (x_train.figures), or `per_row` holds the labels, weights,
    groups and targets of every row, gathered by the batches' row positions."""
    import tensorflow as tf

    from pipelines.data.features import expand_tensor

    dataset, sizes = x_train.dataset(config.batch_size, config.seed), list(x_train.sizes)
    inputs = [tf.TensorSpec([None, len(x_train.spec.numeric)], tf.float32),
              tf.TensorSpec([None, len(sizes)], tf.int32), tf.TensorSpec([None], tf.int64)]

    if x_train.figures is None:
        @tf.function(input_signature=inputs, autograph=False)
        def batch_step(numeric, codes, positions):
            y = tf.gather(per_row[0], positions)
            per_head, proba = step(expand_tensor(numeric, codes, sizes), y,
                                   *(tf.gather(t, positions) for t in per_row[1:]))
            return per_head * tf.cast(tf.shape(positions)[0], tf.float32), proba, y
    else:
        @tf.function(input_signature=inputs + list(dataset.element_spec[3:]), autograph=False)
        def batch_step(numeric, codes, positions, y, w, members, t):
            per_head, proba = step(expand_tensor(numeric, codes, sizes), y, w, members, t)
            return per_head * tf.cast(tf.shape(positions)[0], tf.float32), proba, y
    cells = np.arange(heads)[:, None] * AUC_BINS

    def epoch() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        sums, right = np.zeros(heads, np.float64), np.zeros(heads, np.int64)
        positive, negative = np.zeros(heads * AUC_BINS, np.int64), np.zeros(heads * AUC_BINS, np.int64)
        for batch in dataset:
            summed, proba, y = (t.numpy() for t in batch_step(*batch))
            sums += summed
            truth = y > 0.5
            right += ((proba >= 0.5) == truth[None, :]).sum(axis=1)
            binned = (cells + np.clip((proba * AUC_BINS).astype(np.int64), 0, AUC_BINS - 1)).reshape(-1)
            mask = np.broadcast_to(truth[None, :], proba.shape).reshape(-1)
            positive += np.bincount(binned[mask], minlength=heads * AUC_BINS)
            negative += np.bincount(binned[~mask], minlength=heads * AUC_BINS)
        pos, neg = positive.reshape(heads, -1), negative.reshape(heads, -1)
        return sums, right / len(x_train), np.array([_binned_auc(pos[k], neg[k]) for k in range(heads)])

    return epoch


DUAL_RATE = 0.2  # multiplier step per batch: a pair 0.05 outside its bound gains 1 within 100 steps
SHARPNESS = 2.0  # the constraints' soft decision: sigmoid(SHARPNESS x (logit p - logit threshold)); 1 at threshold
# 0.5 is the probability itself. A group's mean probability is near its base rate, so bounding it asks far more than
# bounding its selection rate where base rates differ; too sharp, and the one cheap way to equal soft decisions is
# to push every row far below the threshold (the gradient vanishes elsewhere): 4 collapsed Adult's tight heads
VIOLATION_WEIGHT = 10.0  # validation loss per unit of gap above the bound: 0.01 outweighs a typical epoch's gain
EVAL_CHUNK = 65_536  # validation rows per forward pass: [heads, rows, units] activations stay bounded
Block = tuple[int, int, str, float, float]  # first column, columns, constraint, ratio, floor


def _blocks(columns: int, constraint: str, side: tuple[tuple[int, str, float, float], ...]) -> list[Block]:
    """(first column, columns, constraint, ratio, floor) of each block of group indicators: the constrained grouping
    (ratio 1, no floor), then the `side` blocks, which take the last columns."""
    first = columns - sum(width for width, _, _, _ in side)
    out = [(0, first, constraint, 1.0, 0.0)]
    for width, kind, ratio, floor in side:
        out.append((first, width, kind, ratio, floor))
        first += width
    return out


def _pairs(blocks: list[Block]) -> tuple[np.ndarray, np.ndarray]:
    """Every pair of groups compared within a block (and, for equalized odds, within the true positives and within
    the true negatives): a [group columns, pairs] matrix of +1/-1 (one group's mean minus the other's) and each
    pair's block index. The gate's figure is the largest such gap, so bounding every pair bounds it exactly."""
    columns, pairs, owner = 0, [], []
    for index, (_, width, kind, _, _) in enumerate(blocks):
        for _cell in range(1 if kind == "demographic_parity" else 2):
            for i in range(width):
                for j in range(i + 1, width):
                    pairs.append((columns + i, columns + j))
                    owner.append(index)
            columns += width
    matrix = np.zeros((columns, len(pairs)), np.float32)
    for k, (i, j) in enumerate(pairs):
        matrix[i, k], matrix[j, k] = 1.0, -1.0
    return matrix, np.asarray(owner, np.int64)


def _pair_bounds(bounds: list[float], blocks: list[Block], owner: np.ndarray) -> np.ndarray:
    """[heads, pairs]: the largest gap each pair may have: the head's bound on the constrained block, bound x the
    block's ratio (at least its floor) on a side block (an unconstrained head's side blocks never bind: 1)."""
    ratios = np.asarray([ratio for _, _, _, ratio, _ in blocks], np.float32)[owner]
    floors = np.asarray([floor for _, _, _, _, floor in blocks], np.float32)[owner]
    out = np.maximum(np.asarray(bounds, np.float32)[:, None] * ratios[None, :], floors[None, :])
    side = owner[None, :] > 0
    return np.where(side & (np.asarray(bounds)[:, None] >= 1.0), 1.0, out).astype(np.float32).reshape(len(bounds), -1)


def train_stacked(
    x_train: Any, y_train: np.ndarray | None, x_val: Any, y_val: np.ndarray, config: TrainConfig,
    strengths: list[float], *, sample_weights: np.ndarray | None = None, groups: np.ndarray | None = None,
    val_groups: np.ndarray | None = None, constraint: str = "demographic_parity", bounds: list[float] | None = None,
    epochs: list[int] | None = None, best_epochs: list[int] | None = None, val_mask: np.ndarray | None = None,
    targets: np.ndarray | None = None, val_targets: np.ndarray | None = None,
    side: tuple[tuple[int, str, float, float], ...] = (),
) -> list[tuple[Any, dict[str, list[float]]]]:
    """Train one network per strength together; return each as (plain Keras network, per-epoch history).

    `x_train` and `x_val` are the encoded matrix or pipelines.data.features.CompactRows (the same values);
    `x_train` may also be pipelines.training.streamed.StreamedRows: a split file read as tf.data batches each epoch;
    with its `figures` each batch carries its labels, weights, groups and targets (y_train, sample_weights, groups and
    targets are then not given), and the epoch's accuracy and AUC are added up batch by batch (AUC binned).

    `sample_weights` is [rows, heads] (reweighing, class weights) or None; with `groups` (one-hot, [rows, groups])
    head k's loss adds strengths[k] x the batch's group gap, as pipelines.training.train._penalized does.
    With `bounds` (one per head, `strengths` then only name the heads) the training is primal-dual instead: head k
    keeps two Lagrange multipliers per pair of groups (per pair and true label for equalized odds), one for
    d <= bounds[k] and one for -d <= bounds[k], d being one group's mean soft decision minus the other's (see
    SHARPNESS); its loss adds (first - second) x d, and after every step each multiplier rises by DUAL_RATE x (its
    side's d - bounds[k]) and stays >= 0: a pair within the bound loses its penalty, a pair outside it gets a
    growing one; the largest |d| is the gate's figure. The batch's d is an unbiased estimate, so a small group's
    noise does not raise its multipliers (|d| would). `side` ((columns, constraint, ratio, floor) per further block
    of `groups`' last columns) adds limits on other groupings (the fairness gate's other limits,
    pipelines.training.limits): head k keeps each pair of a block within max(ratio x bounds[k], floor) the same
    way; heads with bound 1 (unconstrained) ignore them.
    Validation loss (what early stopping watches) adds VIOLATION_WEIGHT x the gaps above the bound: a fixed
    weight, so the watched figure does not rise merely because the multipliers grew.
    `epochs` (one per head) trains each head that many epochs without early stopping (chosen by cross-validation,
    pipelines.training.bounded); `best_epochs`, when given a list, receives the epochs at each head's kept weights.
    Cross-validation in one training: a head with weight 0 on a row does not train on it (nor count it in its
    group rates), and `val_mask` ([validation rows, heads], 0/1) names the validation rows each head is judged on.
    `targets` ([rows, heads], in [0, 1]) and `val_targets` ([validation rows, heads]) replace the labels in each
    head's cross-entropy (training targets of pipelines.training.targets); the labels still define the groups of
    equalized odds and the accuracy in the history.
    History per head, like Keras fit's: loss, accuracy and auc running over the epoch's batches (dropout on),
    val_loss (with the penalty on the whole validation split), val_accuracy and val_auc; it ends when that head's
    early stopping fired, and the network holds its best weights.
    """
    import keras
    import tensorflow as tf
    from keras import ops

    from pipelines.training.train import (
        build_model,
        fairness_gap,
        group_sums,
        patience_epochs,
        planned_epochs,
        seed_everything,
    )

    heads, rows, width = len(strengths), len(x_train), _width(x_train)
    seed_everything(config.seed, config.threads)
    start = build_model(width, config).get_weights()  # what a lone training of any strength starts from
    variables = [keras.Variable(np.stack([w] * heads), name=f"stacked_{i}") for i, w in enumerate(start)]
    optimizer = keras.optimizers.Adam(config.learning_rate)
    optimizer.build(variables)
    dropout_seed = keras.random.SeedGenerator(config.seed)
    # rows from a split file whose batches carry their own labels, weights, groups and targets (BatchFigures)
    carried = isinstance(x_train, StreamedRows) and x_train.figures is not None
    penalty = np.asarray(strengths, np.float32) if groups is not None or carried else np.zeros(heads, np.float32)
    if carried:
        columns = x_train.figures.columns
    else:
        weights = np.ones((rows, heads), np.float32) if sample_weights is None else \
            np.asarray(sample_weights, np.float32)
        groups = np.zeros((rows, 1), np.float32) if groups is None else np.asarray(groups, np.float32)
        columns = groups.shape[1]
    val_groups = np.zeros((len(x_val), columns), np.float32) if val_groups is None else \
        val_groups.astype(np.float32)

    def forward(x, training: bool):
        """[heads, rows] probabilities; no hidden layer (hidden_units []) is a linear network."""
        hidden = ops.einsum("bi,kio->kbo", x, variables[0]) + variables[1][:, None, :]
        for layer in range(2, len(variables), 2):
            hidden = ops.relu(hidden)
            if training and config.dropout:
                hidden = keras.random.dropout(hidden, config.dropout, seed=dropout_seed)
            hidden = ops.einsum("kbi,kio->kbo", hidden, variables[layer]) + variables[layer + 1][:, None, :]
        return ops.sigmoid(hidden[:, :, 0])

    strength_t = ops.convert_to_tensor(penalty)
    dual = bounds is not None
    blocks = _blocks(columns, constraint, side)
    pairing, owner = _pairs(blocks)
    pairing_t, both_t = tf.constant(pairing), tf.constant(np.abs(pairing))
    allowed = tf.constant(_pair_bounds([0.0] * heads if bounds is None else bounds, blocks, owner))  # heads x pairs
    # |difference| <= bound as two constraints, difference <= bound and -difference <= bound, a multiplier each: the
    # batch's signed difference is an unbiased estimate, where its absolute value is biased up by the noise of small
    # groups (a pair of 3-row groups in a batch shows a gap of about 0.2 with equal rates)
    above = tf.Variable(tf.zeros(allowed.shape), trainable=False)
    below = tf.Variable(tf.zeros(allowed.shape), trainable=False)

    def parts(proba, labels, members, mask=None):
        pieces = [group_sums(proba, labels, members[:, a:a + w], c, mask) for a, w, c, _, _ in blocks]
        return tuple(ops.concatenate(list(p), -1) for p in zip(*pieces))

    def differences(sums, sizes):
        """One group's mean minus the other's for every pair, 0 where either has no row: [heads, pairs]."""
        present = ops.cast(ops.matmul(ops.cast(sizes > 0, "float32"), both_t) > 1.5, "float32")
        return present * ops.matmul(sums / ops.maximum(sizes, 1.0), pairing_t)

    cut = math.log(config.threshold / (1.0 - config.threshold))

    def decided(proba):
        """Each row's soft decision (see SHARPNESS)."""
        clipped = ops.clip(proba, 1e-7, 1.0 - 1e-7)
        return ops.sigmoid(SHARPNESS * (ops.log(clipped) - ops.log(1.0 - clipped) - cut))

    def gaps(proba, labels, members, training: bool = False, mask=None):
        if not dual:
            return strength_t * fairness_gap(proba, labels, members, constraint)  # [heads]
        signed = differences(*parts(decided(proba), labels, members, mask))  # [heads, pairs]
        if training:
            return ops.sum((above - below) * signed, axis=-1), signed
        return VIOLATION_WEIGHT * ops.sum(ops.relu(ops.abs(signed) - allowed), axis=-1)

    def step(x, y, w, members, t):
        with tf.GradientTape() as tape:
            proba = forward(x, training=True)
            per_head = ops.sum(_bce(ops.transpose(t), proba) * ops.transpose(w), axis=1) / \
                ops.cast(ops.shape(x)[0], "float32")
            penalty_terms = gaps(proba, y, members, training=True, mask=ops.cast(w > 0, "float32"))
            if dual:
                penalty_terms, signed = penalty_terms
            per_head = per_head + penalty_terms
            total = ops.sum(per_head)
        optimizer.apply_gradients(zip(tape.gradient(total, variables), variables))
        if dual:
            signed = tf.stop_gradient(signed)
            above.assign(tf.nn.relu(above + DUAL_RATE * (signed - allowed)))
            below.assign(tf.nn.relu(below + DUAL_RATE * (-signed - allowed)))
        return per_head, proba

    streamed = isinstance(x_train, StreamedRows)
    if carried:  # rows and their figures from the split's Parquet file (tf.data)
        streamed_pass = _streamed_pass(x_train, config, step, (), heads)
    else:
        y_train = np.asarray(y_train, np.float32)
        y_all = tf.constant(y_train)
        t_all = tf.constant(np.repeat(y_train[:, None], heads, 1) if targets is None else targets.astype(np.float32))
        w_all, g_all = tf.constant(weights), tf.constant(groups)
    if streamed and not carried:  # rows from the split's Parquet file (tf.data); per-row figures gathered by position
        streamed_pass = _streamed_pass(x_train, config, step, (y_all, w_all, g_all, t_all), heads)
    elif not streamed:
        train_batch = _rows_tensors(x_train)
        batches = math.ceil(rows / config.batch_size)

        # autograph off here and below: it would rewrite every Python function the step calls (1-2 s a training)
        # while none has a loop or branch on tensors; the batch loop is an explicit tf.while_loop
        @tf.function(input_signature=[tf.TensorSpec([rows], tf.int32)], autograph=False)
        def epoch_pass(order):
            """One epoch in the graph (no Python per batch): per-head summed batch losses, predictions in `order`."""
            def body(index, sums, predictions):
                batch = order[index * config.batch_size:(index + 1) * config.batch_size]
                per_head, proba = step(train_batch(batch), tf.gather(y_all, batch), tf.gather(w_all, batch),
                                       tf.gather(g_all, batch), tf.gather(t_all, batch))
                return (index + 1, sums + per_head * tf.cast(tf.shape(batch)[0], tf.float32),
                        predictions.write(index, tf.transpose(proba)))

            start = (tf.constant(0), tf.zeros([heads]), tf.TensorArray(tf.float32, size=batches, infer_shape=False))
            _, sums, predictions = tf.while_loop(lambda index, *_: index < batches, body, start)
            return sums, tf.transpose(predictions.concat())

    val_rows = len(x_val)
    val_batch = _rows_tensors(x_val)

    @tf.function(input_signature=[tf.TensorSpec([], tf.int32), tf.TensorSpec([], tf.int32)], autograph=False)
    def predict_val(start, stop):
        return forward(val_batch(tf.range(start, stop)), training=False)

    judged = np.ones((val_rows, heads), np.float32) if val_mask is None else val_mask.astype(np.float32)

    @tf.function(input_signature=[tf.TensorSpec([heads, None], tf.float32), tf.TensorSpec([None], tf.float32),
                                  tf.TensorSpec([None, columns], tf.float32),
                                  tf.TensorSpec([None, heads], tf.float32), tf.TensorSpec([None, heads], tf.float32)],
                 autograph=False)
    def penalized(proba, y, members, mask, wanted):
        bce = ops.sum(_bce(ops.transpose(wanted), proba) * ops.transpose(mask), axis=1) / \
            ops.maximum(ops.sum(mask, axis=0), 1.0)
        return bce + (gaps(proba, y, members, mask=mask) if dual else gaps(proba, y, members))

    def evaluate(y, members):
        """Validation loss (penalty over the whole split) and probabilities, the forward pass in chunks."""
        proba = np.concatenate([predict_val(i, min(i + EVAL_CHUNK, val_rows)).numpy()
                                for i in range(0, val_rows, EVAL_CHUNK)], axis=1)
        return penalized(proba, y, members, judged, val_wanted).numpy(), proba

    patience = patience_epochs(rows, config)
    stops = [_Stopping(patience, None if epochs is None else epochs[k]) for k in range(heads)]
    rng = np.random.default_rng(config.seed)
    y_val_t = y_val.astype(np.float32)
    val_wanted = np.repeat(y_val_t[:, None], heads, 1) if val_targets is None else val_targets.astype(np.float32)
    planned = planned_epochs(rows, config) if epochs is None else max(epochs)
    with Progress(f"training epochs ({heads} networks)", planned) as bar:
        for epoch in range(planned):
            if streamed:
                sums, accuracy, auc = streamed_pass()
            else:
                order = rng.permutation(rows).astype(np.int32)
                sums, predicted = (t.numpy() for t in epoch_pass(order))
                y_seen = np.asarray(y_train)[order]
                accuracy = np.array([np.mean((predicted[k] >= 0.5) == (y_seen > 0.5)) for k in range(heads)])
                auc = np.array([roc_auc(y_seen, predicted[k]) for k in range(heads)])
            losses, seen = sums, rows
            val_loss, val_proba = evaluate(y_val_t, val_groups)
            snapshot = [v.numpy() for v in variables]
            for k, stop in enumerate(stops):
                if stop.stopped_after is not None:
                    continue
                own = judged[:, k] > 0
                figures = {"loss": losses[k] / seen, "accuracy": accuracy[k], "auc": auc[k], "val_loss": val_loss[k],
                           "val_accuracy": np.mean((val_proba[k][own] >= 0.5) == (y_val_t[own] > 0.5)),
                           "val_auc": roc_auc(y_val_t[own], val_proba[k][own])}
                for name, value in figures.items():
                    stop.history.setdefault(name, []).append(float(value))
                stop.update(epoch, float(val_loss[k]), [w[k] for w in snapshot])
            bar.advance(note=f"val_loss {float(np.min(val_loss)):.4f} (best network)")
            if all(stop.stopped_after is not None for stop in stops):
                break
    if best_epochs is not None:
        best_epochs[:] = [stop.best_epochs for stop in stops]
    trained = []
    for stop in stops:
        network = build_model(width, config)
        network.set_weights(stop.best_weights)
        network.optimizer.build(network.trainable_variables)  # saved and reloaded with matching optimizer slots
        trained.append((network, stop.history))
    return trained
