"""Simple baselines every run reports beside the model: the majority class and logistic regression."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np


def baselines(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray | Iterable[np.ndarray], y_test: np.ndarray,
              threshold: float, seed: int = 0, model_right: np.ndarray | None = None, n_boot: int = 0,
              confidence: float = 0.95) -> dict[str, dict[str, Any]]:
    """Test accuracy of always answering the training majority class, and of a logistic regression on the same
    encoded inputs and split (the figures the model has to beat, or come close to). `x_test` may come as
    consecutive chunks of rows (the same probabilities: each row's is computed on its own). With `model_right` (the
    model's per-row correctness on the same rows) and `n_boot`, each baseline also gets `gain_ci`: the paired
    bootstrap interval of the model's accuracy minus the baseline's (what the accuracy gates judge on small
    test splits)."""
    with BaselineTally(x_train, y_train, threshold, seed) as tally:
        start = 0
        for x in [x_test] if isinstance(x_test, np.ndarray) else x_test:
            stop = start + len(x)
            tally.add(x, y_test[start:stop], None if model_right is None else model_right[start:stop])
            start = stop
        return tally.figures(n_boot if model_right is not None else 0, confidence)


class BaselineTally:
    """The baselines fitted on training rows, then their test counts gathered chunk by chunk: right answers, the
    logistic regression's exact AUC (pipelines.training.auc) and, beside the model's correctness, the paired
    (model right, baseline right) cells."""

    def __init__(self, x_train: np.ndarray, y_train: np.ndarray, threshold: float, seed: int = 0) -> None:
        from sklearn.linear_model import LogisticRegression

        from pipelines.training.auc import AucTally

        self.majority_class = float(np.mean(y_train) >= 0.5)
        self.regression = LogisticRegression(max_iter=2000, random_state=seed).fit(x_train, y_train)
        self.threshold, self.seed, self.auc = threshold, seed, AucTally()
        self.rows = 0
        self.right = {"majority_class": 0, "logistic_regression": 0}
        self.paired = {name: np.zeros(4, np.int64) for name in self.right}  # cells 00, 01, 10, 11

    def add(self, x: np.ndarray, y: np.ndarray, model_right: np.ndarray | None = None) -> None:
        """One chunk: encoded rows, their labels and (optionally) the model's correctness on them."""
        proba = self.regression.predict_proba(x)[:, 1]
        self.auc.add(y, proba)
        rights = {"majority_class": y == self.majority_class,
                  "logistic_regression": (proba >= self.threshold) == (y > 0.5)}
        self.rows += len(y)
        for name, right in rights.items():
            self.right[name] += int(np.count_nonzero(right))
            if model_right is not None:
                self.paired[name] += np.bincount(2 * np.asarray(model_right, int) + np.asarray(right, int),
                                                 minlength=4)

    def figures(self, n_boot: int = 0, confidence: float = 0.95) -> dict[str, dict[str, Any]]:
        """What `baselines` returns; `gain_ci` with `n_boot` (the model's correctness given to every `add`)."""
        auc = None if np.isnan(area := self.auc.value()) else area
        majority: dict[str, Any] = {"class": int(self.majority_class),
                                    "accuracy": self.right["majority_class"] / self.rows}
        logistic: dict[str, Any] = {"accuracy": self.right["logistic_regression"] / self.rows, "auc": auc}
        out = {"majority_class": majority, "logistic_regression": logistic}
        if n_boot:
            for name, facts in out.items():
                facts["gain_ci"] = gain_counts_interval(self.paired[name], n_boot, confidence, self.seed)
        return out

    def close(self) -> None:
        self.auc.close()

    def __enter__(self) -> BaselineTally:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def gain_interval(model_right: np.ndarray, other_right: np.ndarray, n_boot: int, confidence: float,
                  seed: int) -> list[float]:
    """Paired percentile bootstrap interval of accuracy(model) - accuracy(other) on the same rows: resampling rows
    only moves counts between the four (model right, other right) cells."""
    counts = np.bincount(2 * np.asarray(model_right, int) + np.asarray(other_right, int), minlength=4)
    return gain_counts_interval(counts, n_boot, confidence, seed)


def gain_counts_interval(counts: np.ndarray, n_boot: int, confidence: float, seed: int) -> list[float]:
    """gain_interval from the (model right, other right) cells 00, 01, 10, 11."""
    from pipelines.training.metrics import bootstrap_counts

    draws = bootstrap_counts(np.asarray(counts).astype(float), n_boot, seed)
    gains = (draws[:, 2] - draws[:, 1]) / counts.sum()
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(gains, [tail, 100 - tail])
    return [float(low), float(high)]
