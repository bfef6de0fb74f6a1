"""`fairness.method: bound`: networks trained towards disparity bounds (primal-dual, pipelines.training.stacked), and
the held-out predictions the bound is chosen on: the validation rows, or k-fold cross-validation on the training
rows when the validation split is small (`fairness.cv_below_rows`)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from pipelines.core.config import Settings
from pipelines.data.features import FeatureSpec, compact_rows, encode_labels
from pipelines.data.split_file import SplitFile
from pipelines.training.keras_model import loss_targets, predict_rows, target_maker
from pipelines.training.limits import Limits, side_blocks, side_indicators
from pipelines.training.streamed import BatchFigures, StreamedRows, training_rows

UNCONSTRAINED = 1.0  # a disparity bound of 1 never binds: the head trains unmitigated


def head_bounds(bound: float, fractions: list[float]) -> list[float]:
    """The heads' bounds, loosest first: unconstrained, then bound x each fraction (six decimals)."""
    return sorted({UNCONSTRAINED} | {round(bound * f, 6) for f in fractions}, reverse=True)


def _targets(settings: Settings, train: pd.DataFrame, validation: pd.DataFrame, spec: FeatureSpec,
             keys: list[float], fold: np.ndarray | None, head_folds: list[int] | None,
             found: dict[str, Any] | None) -> tuple[np.ndarray, np.ndarray] | None:
    """Each head's training and validation targets ([rows, heads]): the labels for bound heads, the fair targets
    (pipelines.training.targets) for the extra heads, their teachers fitted on the rows the head trains on (per
    fold in cross-validation). None when every head is a bound head. `found` receives the reductions baseline's
    facts when its teacher was fitted on every training row."""
    from pipelines.data.features import encode_features
    from pipelines.training.mitigation import constrained_features, constraint_labels
    from pipelines.training.targets import fit_targets

    if all(k <= UNCONSTRAINED for k in keys):
        return None
    params = settings.params
    features = constrained_features(params.fairness, params.data)
    x, y, labels = encode_features(train, spec), encode_labels(train, spec), constraint_labels(train, features)
    y_val = encode_labels(validation, spec)
    train_out = np.repeat(y[:, None], len(keys), 1).astype(np.float32)
    val_out = np.repeat((y if fold is not None else y_val)[:, None], len(keys), 1).astype(np.float32)
    # the fold each head leaves out (None: no cross-validation)
    own: list[int | None] = list(head_folds) if head_folds else [None] * len(keys)
    parts = sorted({own[i] for i, k in enumerate(keys) if k > UNCONSTRAINED}, key=lambda f: -1 if f is None else f)
    for part in parts:
        inside = np.ones(len(train), bool) if part is None else fold != part
        teachers, facts = fit_targets(x[inside], y[inside], labels[inside], params.fairness, params.train.seed)
        if part is None and found is not None:
            found.update(facts)
        on_train = teachers.on(x, y, labels)
        on_val = on_train if fold is not None else teachers.on(encode_features(validation, spec), y_val,
                                                                constraint_labels(validation, features))
        for i, k in enumerate(keys):
            if k > UNCONSTRAINED and own[i] == part:
                train_out[:, i], val_out[:, i] = on_train[k], on_val[k]
    return train_out, val_out


def fit_heads(settings: Settings, train: pd.DataFrame | SplitFile, validation: pd.DataFrame, spec: FeatureSpec,
              bounds: list[float], epochs: list[int] | None = None, best_epochs: list[int] | None = None,
              fold: np.ndarray | None = None, head_folds: list[int] | None = None,
              found: dict[str, Any] | None = None, limits: Limits | None = None) -> list[tuple[Any, dict]]:
    """One network per head, trained together (primal-dual): [(plain Keras network, history)] in `bounds` order.
    A head's key is its bound (at most 1), or an extra head's key (pipelines.training.targets: trained on fair
    targets, unconstrained). `limits`: the constrained grouping's gated groups (default: every group of the
    training rows) and the gate's other limits, which the bound heads train towards too (pipelines.training.limits).

    With `fold` (a fold number per training row) and `head_folds` (one per head), head k leaves out the rows of
    fold head_folds[k], and is judged (early stopping) on them: the training rows are its validation rows too.
    """
    from pipelines.training.mitigation import constrained_features, constraint_labels, group_indicators
    from pipelines.training.stacked import train_stacked
    from pipelines.training.train import class_weights

    params = settings.params
    features = constrained_features(params.fairness, params.data)
    if isinstance(train, SplitFile) and (fold is not None or max(bounds) > UNCONSTRAINED):
        raise ValueError("rows read from a split file train bound heads only, without folds")
    side = limits.side if limits else []
    if isinstance(train, SplitFile):  # each batch read makes its own labels, weights, groups and targets
        vocabulary = sorted(limits.groups) if limits else sorted(set().union(*(
            set(constraint_labels(frame, features)) for _, frame in train.batches(columns=features))))
        val_members = np.concatenate([group_indicators(constraint_labels(validation, features), vocabulary),
                                      side_indicators(validation, side)], axis=1)
        positives = sum(float(encode_labels(frame, spec).sum()) for _, frame in train.batches(columns=[spec.label])
                        ) / max(len(train), 1)
        figures = BatchFigures(spec, features, vocabulary, side, len(bounds),
                               lambda y: class_weights(y, params.train, positives), target_maker(settings, spec))
        return train_stacked(StreamedRows(train, spec, figures), None, compact_rows(validation, spec),
                             encode_labels(validation, spec), params.train, bounds, val_groups=val_members,
                             constraint=params.fairness.constraint, bounds=[min(b, UNCONSTRAINED) for b in bounds],
                             epochs=epochs, best_epochs=best_epochs, side=side_blocks(side))
    y_train, labels = encode_labels(train, spec), constraint_labels(train, features)
    side_members = side_indicators(train, side)
    wanted = _targets(settings, train, validation, spec, bounds, fold, head_folds, found)
    vocabulary = sorted(limits.groups) if limits else sorted(set(labels))
    balance = class_weights(y_train, params.train)
    weights = np.ones((len(train), len(bounds)), np.float32) if balance is None else \
        np.repeat(balance[:, None], len(bounds), axis=1)
    judged = None
    if fold is not None:
        left_out = fold[:, None] == np.asarray(head_folds)[None, :]
        weights, judged, validation = weights * ~left_out, left_out, train
    targets = loss_targets(settings, train, spec, y_train)  # train.distill: the teacher's soft labels, mixed
    members = np.concatenate([group_indicators(labels, vocabulary), side_members], axis=1)
    del labels, side_members
    val_members = np.concatenate([group_indicators(constraint_labels(validation, features), vocabulary),
                                  side_indicators(validation, side)], axis=1)
    return train_stacked(training_rows(train, spec), targets, compact_rows(validation, spec),
                         encode_labels(validation, spec), params.train, bounds, sample_weights=weights,
                         groups=members,
                         val_groups=val_members,
                         constraint=params.fairness.constraint, bounds=[min(b, UNCONSTRAINED) for b in bounds],
                         epochs=epochs, best_epochs=best_epochs, val_mask=judged,
                         targets=None if wanted is None else wanted[0],
                         val_targets=None if wanted is None else wanted[1], side=side_blocks(side))


class Heldout(NamedTuple):
    fitted: dict[float, tuple]  # bound -> (model, history): the deployable networks, trained on every training row
    rows: pd.DataFrame  # the held-out rows every head is measured on
    probas: dict[float, np.ndarray]  # bound -> probabilities on those rows
    how: str  # which rows, in words
    baseline: dict[str, Any] | None  # the reductions baseline fitted on every training row (a teacher), or None
    own: tuple[float, ...] = ()  # cross-validation: heads judged on their deployed network's own training answers


def folds(frame: pd.DataFrame, columns: list[str], k: int, seed: int) -> np.ndarray:
    """A fold number per row, each (label, group) cell spread evenly over the folds (seeded)."""
    codes = frame.groupby(columns, dropna=False, sort=False, observed=True).ngroup().to_numpy()
    order = np.random.default_rng(seed).permutation(len(frame))
    fold = np.empty(len(frame), dtype=np.int64)
    ranked = order[np.argsort(codes[order], kind="stable")]  # cell by cell, random within a cell
    fold[ranked] = np.arange(len(frame)) % k
    return fold


def one_answer(proba: np.ndarray, threshold: float) -> bool:
    """Whether the decisions at `threshold` are the same class for every row."""
    decided = proba >= threshold
    return bool(decided.all() or not decided.any())


def cross_validated(validation: pd.DataFrame, fairness: Any) -> bool:
    """Whether the heads are judged by k-fold cross-validation: fewer validation rows than fairness.cv_below_rows."""
    return len(validation) < fairness.cv_below_rows


def heldout(settings: Settings, train: pd.DataFrame, validation: pd.DataFrame, spec: FeatureSpec,
            bounds: list[float], limits: Limits | None = None,
            unfit: Callable[[np.ndarray, np.ndarray], bool] | None = None) -> Heldout:
    """Train the heads and predict held-out rows. With at least `cv_below_rows` validation rows: early stopping
    and measurement on the validation rows. Below: k-fold cross-validation on the training rows (each fold's
    heads stop early on the fold left out, which they then predict); the deployed heads train on every training
    row for the median of the folds' epochs, and the held-out rows are every training row (out of fold) plus the
    validation rows. A deployed head whose own answers on the training rows are not what its folds measured is
    judged on those answers instead of its folds': one that answers one class on every training row (the accuracy
    rule leaves it out: its folds did not collapse, it did), or one whose answers there break a limit its folds'
    out-of-fold answers met, on the very rows it was fitted to (`unfit`, given both)."""
    from pipelines.training.mitigation import constrained_features

    fairness = settings.params.fairness
    found: dict[str, Any] = {}
    if not cross_validated(validation, fairness):
        fitted = dict(zip(bounds, fit_heads(settings, train, validation, spec, bounds, found=found, limits=limits)))
        probas = dict(zip(bounds, predict_rows([fitted[b][0] for b in bounds], validation, spec)))
        return Heldout(fitted, validation, probas, f"the {len(validation)} validation rows", found or None)
    features = constrained_features(fairness, settings.params.data)
    k = fairness.cv_folds
    fold = folds(train, [settings.params.data.label, *features], k, fairness.seed)
    heads = [(b, f) for f in range(k) for b in bounds]  # every fold's heads in one training
    stopped: list[int] = []
    models = fit_heads(settings, train, validation, spec, [b for b, _ in heads], best_epochs=stopped,
                       fold=fold, head_folds=[f for _, f in heads], limits=limits)
    predicted = predict_rows([model for model, _ in models], train, spec)
    out = {b: np.zeros(len(train), np.float32) for b in bounds}
    for (b, f), proba in zip(heads, predicted):
        out[b][fold == f] = proba[fold == f]
    epochs = [max(1, int(np.median([e for (hb, _), e in zip(heads, stopped) if hb == b]))) for b in bounds]
    fitted = dict(zip(bounds, fit_heads(settings, train, validation, spec, bounds, epochs=epochs, found=found,
                                        limits=limits)))
    on_validation = dict(zip(bounds, predict_rows([fitted[b][0] for b in bounds], validation, spec)))
    own = []
    for b, proba in zip(bounds, predict_rows([fitted[b][0] for b in bounds], train, spec)):
        if one_answer(proba, settings.params.train.threshold) or (unfit is not None and unfit(proba, out[b])):
            # the deployed network's training towards the bound went another way than its folds' on all the rows
            # (CPS: a bound 0.05 head at demographic parity difference 0.28 on its own training rows, 0.37 on
            # the test split, where its folds measured 0.049 out of fold): it is judged on its own answers
            out[b] = proba
            own.append(b)
    rows = pd.concat([train, validation], ignore_index=True)
    probas = {b: np.concatenate([out[b], on_validation[b]]) for b in bounds}
    return Heldout(fitted, rows, probas,
                   f"{k}-fold cross-validation on the {len(train)} training rows plus the {len(validation)} "
                   f"validation rows (fewer than fairness.cv_below_rows = {fairness.cv_below_rows})", found or None,
                   tuple(own))


def logistic_heldout(settings: Settings, held: Heldout, train: pd.DataFrame, validation: pd.DataFrame,
                     spec: FeatureSpec) -> dict[str, float]:
    """Accuracy of logistic regression and of the majority class on the same held-out rows (out of fold in
    cross-validation), as the accuracy gate will judge them on the test rows."""
    from pipelines.data.features import encode_features
    from pipelines.training.baselines import baselines
    from pipelines.training.mitigation import constrained_features

    params = settings.params
    threshold, seed = params.train.threshold, params.train.seed
    if held.rows is validation:
        simple = baselines(encode_features(train, spec), encode_labels(train, spec), encode_features(validation, spec),
                           encode_labels(validation, spec), threshold, seed)
        return {k: v["accuracy"] for k, v in simple.items()}
    features = constrained_features(params.fairness, params.data)
    fold = folds(train, [params.data.label, *features], params.fairness.cv_folds, params.fairness.seed)
    right = {"majority_class": 0.0, "logistic_regression": 0.0}
    parts = [(train[fold != k], train[fold == k]) for k in range(params.fairness.cv_folds)] + [(train, validation)]
    for inside, left_out in parts:
        simple = baselines(encode_features(inside, spec), encode_labels(inside, spec), encode_features(left_out, spec),
                           encode_labels(left_out, spec), threshold, seed)
        for name in right:
            right[name] += simple[name]["accuracy"] * len(left_out)
    return {name: total / len(held.rows) for name, total in right.items()}
