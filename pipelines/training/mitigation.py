"""Fairness mitigation inputs for training, and fairlearn's reductions baseline.

The mitigation acts on training only (a group-gap penalty in the loss, or Kamiran-Calders sample
weights), so the result is one plain Keras network that converts to TFLite and Core ML like an
unmitigated one, and needs no sensitive feature at prediction time. The baseline, fairlearn's
ExponentiatedGradient over LogisticRegression, is a randomized ensemble: a reference point, not one network.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from pipelines.core.config import DataConfig, FairnessConfig
from pipelines.core.errors import PipelineError
from pipelines.training.metrics import groupings, intersection_name


def constrained_features(config: FairnessConfig, data: DataConfig) -> list[str]:
    """The sensitive features the constraint covers (fairness.features, default all of them)."""
    features = config.features or data.sensitive_features
    for feature in features:
        if feature not in data.sensitive_features:
            raise PipelineError(f"fairness.features: '{feature}' is not one of data.sensitive_features")
    return list(features)


def check_groups(frame: pd.DataFrame, features: list[str], split: str) -> None:
    """Every sensitive feature needs two groups in the split, or there is nothing to compare."""
    for feature in features:
        if feature not in frame.columns:
            raise PipelineError(f"data.sensitive_features: column '{feature}' is not in the {split} split")
        values = frame[feature].astype("string").fillna("(missing)")
        if values.nunique() < 2:
            raise PipelineError(f"data.sensitive_features: column '{feature}' has a single value "
                                f"({values.iloc[0]!r}) in the {split} split; groups cannot be compared")


def constraint_labels(frame: pd.DataFrame, features: list[str]) -> np.ndarray:
    """One group label per row: the feature's value, or the intersection of several (`Female:White`)."""
    labels = groupings(frame[features], intersection=True)
    return labels[intersection_name(features)] if len(features) > 1 else labels[features[0]]


def group_indicators(labels: np.ndarray, vocabulary: list[str]) -> np.ndarray:
    """One-hot group membership (rows of an unseen group are all zeros and take no part in the penalty)."""
    codes = pd.Categorical(labels, categories=vocabulary).codes
    onehot = np.zeros((len(labels), len(vocabulary)), dtype=np.float32)
    rows = np.flatnonzero(codes >= 0)
    onehot[rows, codes[rows]] = 1.0
    return onehot


def stratified_sample(frame: pd.DataFrame, columns: list[str], rows: int | None, seed: int) -> pd.DataFrame:
    """At most about `rows` rows, each (label, group) cell keeping its share (at least one row of each cell; a
    missing value is a cell of its own); the frame itself when it is not larger. Rows keep their order."""
    if rows is None or len(frame) <= rows:
        return frame
    codes = frame.groupby(columns, dropna=False, sort=False, observed=True).ngroup().to_numpy()
    return frame.iloc[stratified_positions(codes, rows, seed)]


def stratified_positions(cells: np.ndarray, rows: int, seed: int) -> np.ndarray:
    """The sorted positions `stratified_sample` keeps, from a cell number per row (any numbering of the cells gives
    the same rows): in each cell, the round(share x rows) rows (at least one) whose positions have the smallest
    seeded keys (`row_keys`). `StratifiedSampler` draws the same rows from cells given a batch at a time."""
    sampler = StratifiedSampler(np.bincount(cells), rows, seed)
    sampler.add(0, cells)
    return sampler.positions()


_GOLDEN, _MIX1, _MIX2 = 0x9E3779B97F4A7C15, np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


def row_keys(positions: np.ndarray, seed: int) -> np.ndarray:
    """A seeded pseudo-random 64-bit key per row position (splitmix64): a random order of the rows that any batch
    can compute for its own rows."""
    z = positions.astype(np.uint64) + np.uint64((seed + 1) * _GOLDEN % (1 << 64))
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


class StratifiedSampler:
    """A stratified sample drawn from cell numbers given a batch at a time, in memory of the sample and one batch:
    each cell keeps its quota of rows with the smallest keys seen so far. `counts`: the rows per cell number, over
    every row (a first pass)."""

    def __init__(self, counts: np.ndarray, rows: int, seed: int) -> None:
        total = max(int(np.sum(counts)), 1)
        self.quota = np.maximum(1, np.round(np.asarray(counts) * rows / total)).astype(np.int64)
        self.seed = seed
        self.cell = np.zeros(0, np.int64)
        self.key = np.zeros(0, np.uint64)
        self.position = np.zeros(0, np.int64)
        self.full = np.zeros(len(self.quota), bool)  # cells holding their quota
        self.cutoff = np.zeros(len(self.quota), np.uint64)  # a full cell's largest kept key

    def add(self, start: int, cells: np.ndarray) -> None:
        """The cell numbers of the rows at positions start, start + 1, ..."""
        cells = np.asarray(cells, np.int64)
        keys = row_keys(np.arange(start, start + len(cells), dtype=np.int64), self.seed)
        fresh = ~self.full[cells] | (keys < self.cutoff[cells])  # a full cell takes only keys below its largest
        cell = np.concatenate([self.cell, cells[fresh]])
        key = np.concatenate([self.key, keys[fresh]])
        position = np.concatenate([self.position, np.flatnonzero(fresh) + start])
        order = np.lexsort((key, cell))  # by cell, then key (keys are distinct: splitmix64 is a bijection)
        cell, key, position = cell[order], key[order], position[order]
        rank = np.arange(len(cell)) - np.searchsorted(cell, cell, "left")  # place within its cell
        kept = rank < self.quota[cell]
        self.cell, self.key, self.position = cell[kept], key[kept], position[kept]
        last = np.flatnonzero(np.r_[self.cell[1:] != self.cell[:-1], True]) if len(self.cell) else np.zeros(0, int)
        self.full = np.bincount(self.cell, minlength=len(self.quota)) >= self.quota
        self.cutoff[self.cell[last]] = self.key[last]  # each cell's largest kept key (read only where full)

    def positions(self) -> np.ndarray:
        """The sample's positions, sorted."""
        return np.sort(self.position)


class CellNumbers:
    """Cell numbers (0, 1, ...) for the combinations of these columns' values, the same for every batch given (a
    missing value is a value of its own): what stratified_positions takes for a split file, a few bytes a row and no
    string a row."""

    def __init__(self, columns: list[str]) -> None:
        self.columns = columns
        self.values: dict[str, dict[Any, int]] = {c: {} for c in columns}  # each column's values, numbered
        self.cells: dict[tuple, int] = {}  # each combination of numbered values

    def __call__(self, frame: pd.DataFrame) -> np.ndarray:
        numbered = {}
        for column in self.columns:
            codes, uniques = pd.factorize(frame[column], use_na_sentinel=True)
            seen = self.values[column]
            numbers = np.array([0] + [seen.setdefault(v, len(seen) + 1) for v in uniques], np.int64)
            numbered[column] = numbers[codes + 1]
        table = pd.DataFrame(numbered)
        local = table.groupby(self.columns, sort=False).ngroup().to_numpy()  # in order of first appearance
        ids = [self.cells.setdefault(tuple(row), len(self.cells))
               for row in table.drop_duplicates().itertuples(index=False)]
        return np.asarray(ids, np.int32)[local] if len(table) else np.zeros(0, np.int32)


def sweep_sample(train: pd.DataFrame, label: str, features: list[str], config: FairnessConfig) -> pd.DataFrame:
    """The training rows the sweep and the reductions baseline fit on (both must use the same ones: the trade-off
    reuses the baseline trained_model fitted): a stratified sample above `fairness.sample_rows`."""
    return stratified_sample(train, [label, *features], config.sample_rows, config.seed)


def reweighing_weights(labels: np.ndarray, y: np.ndarray, strength: float = 1.0) -> np.ndarray:
    """Kamiran & Calders (2012): weight P(g) P(y) / P(g, y), so label and group are independent once weighted.

    `strength` is an exponent (0: all ones, 1: the full correction); weights are scaled to mean 1.
    """
    frame = pd.DataFrame({"g": labels, "y": np.asarray(y).astype(int)})
    p_g = frame["g"].map(frame["g"].value_counts(normalize=True))
    p_y = frame["y"].map(frame["y"].value_counts(normalize=True))
    p_gy = frame.groupby(["g", "y"])["y"].transform("size") / len(frame)
    weights = ((p_g * p_y / p_gy) ** strength).to_numpy(dtype=np.float64)
    return (weights / weights.mean()).astype(np.float32)


def training_inputs(
    train: pd.DataFrame, validation: pd.DataFrame, y_train: np.ndarray, config: FairnessConfig,
    features: list[str], strength: float,
) -> dict[str, Any]:
    """Keyword arguments for pipelines.training.train.train_model that apply the mitigation at `strength`."""
    if strength == 0:
        return {}
    check_groups(train, features, "train")
    labels = constraint_labels(train, features)
    if config.method == "reweighing":
        return {"sample_weight": reweighing_weights(labels, y_train, strength)}
    vocabulary = sorted(set(labels))
    return {"groups": group_indicators(labels, vocabulary),
            "val_groups": group_indicators(constraint_labels(validation, features), vocabulary),
            "penalty": strength, "constraint": config.constraint}


_FITS: dict[str, dict[str, Any]] = {}  # the last few fits, by rows and settings (pipelines/training fits it for
# the frontier target and as the fair targets' teacher on the same rows; a fit is deterministic, so one suffices)


def _fit_key(x: np.ndarray, y: np.ndarray, labels: np.ndarray, config: FairnessConfig) -> str:
    import hashlib

    digest = hashlib.sha256()
    for part in (np.ascontiguousarray(x, np.float64), np.asarray(y).astype(np.int8), np.asarray(labels).astype(str)):
        digest.update(part.tobytes())
    digest.update(f"{x.shape}{config.constraint}{config.baseline_eps}{config.baseline_max_iter}".encode())
    return digest.hexdigest()


def reductions_baseline(
    x_train: np.ndarray, y_train: np.ndarray, labels: np.ndarray, config: FairnessConfig,
) -> tuple[BaselineDecider, dict[str, Any]]:
    """fairlearn ExponentiatedGradient(LogisticRegression) under the same constraint, fit on the same rows.

    Returns a function giving 0/1 decisions (one seeded draw from the randomized ensemble, as a
    deployment of it would make) and facts about the fit. The liblinear solver keeps each of the ~20
    inner fits short. A fit on the same rows and settings earlier in the process is reused.
    """
    key = _fit_key(x_train, y_train, labels, config)
    if key in _FITS:
        return baseline_decider(_FITS[key]["fitted"], config.seed), dict(_FITS[key])
    from fairlearn.reductions import (
        DemographicParity,
        EqualizedOdds,
        ExponentiatedGradient,
    )
    from sklearn.linear_model import LogisticRegression

    moment = DemographicParity() if config.constraint == "demographic_parity" else EqualizedOdds()
    estimator = LogisticRegression(solver="liblinear")
    reduction = ExponentiatedGradient(estimator, moment, eps=config.baseline_eps, max_iter=config.baseline_max_iter)
    reduction.fit(x_train.astype(np.float64), np.asarray(y_train).astype(int), sensitive_features=labels)

    facts = {"method": "fairlearn ExponentiatedGradient", "estimator": "LogisticRegression(solver='liblinear')",
             "constraint": config.constraint, "eps": config.baseline_eps, "max_iter": config.baseline_max_iter,
             "oracle_calls": int(reduction.n_oracle_calls_), "predictors": int(len(reduction.predictors_)),
             "randomized": True,
             "inputs": "the Keras model's encoded features (sensitive features only in the constraint)"}
    while len(_FITS) >= 8:
        _FITS.pop(next(iter(_FITS)))
    _FITS[key] = facts | {"fitted": reduction}
    return baseline_decider(reduction, config.seed), dict(_FITS[key])


def soft_decisions(reduction: Any, x: np.ndarray) -> np.ndarray:
    """A fitted ExponentiatedGradient's probability of answering 1 for each row: its mixture's expectation (what
    the fair targets distil and the frontier target measures), not one draw."""
    return reduction._pmf_predict(x.astype(np.float64))[:, 1]


def baseline_decider(reduction: Any, seed: int) -> BaselineDecider:
    """0/1 decisions of a fitted ExponentiatedGradient (`BaselineDecider`)."""
    return BaselineDecider(reduction, seed)


class BaselineDecider:
    """0/1 decisions of a fitted ExponentiatedGradient: one seeded draw from its randomized ensemble, for a matrix or
    for consecutive chunks of rows. One RandomState runs through the chunks, so the draws (one uniform per row, in
    order) and the decisions are those of the whole matrix at once. `stream()` gives the same decisions a chunk per
    call."""

    def __init__(self, reduction: Any, seed: int) -> None:
        self.reduction, self.seed = reduction, seed

    def __call__(self, x: Any) -> np.ndarray:
        predict = self.stream()
        return np.concatenate([predict(chunk) for chunk in ([x] if isinstance(x, np.ndarray) else x)])

    def stream(self) -> Callable[[np.ndarray], np.ndarray]:
        state = np.random.RandomState(self.seed)  # what predict makes of random_state=seed
        return lambda chunk: np.asarray(self.reduction.predict(chunk.astype(np.float64), random_state=state),
                                        dtype=np.float32)


def save_baseline(facts: dict[str, Any], target) -> None:
    """The fitted baseline (joblib) beside the model, so the trade-off step does not fit it again."""
    import joblib

    joblib.dump(facts, target)


def load_baseline(source, config: FairnessConfig) -> tuple[BaselineDecider, dict[str, Any]] | None:
    """The baseline trained_model fitted under these params, or None (then the caller fits it)."""
    import joblib

    if not source.exists():
        return None
    facts = joblib.load(source)
    if (facts["constraint"], facts["eps"], facts["max_iter"]) != (config.constraint, config.baseline_eps,
                                                                  config.baseline_max_iter):
        return None
    return baseline_decider(facts["fitted"], config.seed), facts
