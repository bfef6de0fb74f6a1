"""Simple baselines every run reports beside the model: the majority class and logistic regression."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from pipelines.training.metrics import roc_auc


def baselines(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray | Iterable[np.ndarray], y_test: np.ndarray,
              threshold: float, seed: int = 0, model_right: np.ndarray | None = None, n_boot: int = 0,
              confidence: float = 0.95) -> dict[str, dict[str, Any]]:
    """Test accuracy of always answering the training majority class, and of a logistic regression on the same
    encoded inputs and split (the figures the model has to beat, or come close to). `x_test` may come as
    consecutive chunks of rows (the same probabilities: each row's is computed on its own). With `model_right` (the
    model's per-row correctness on the same rows) and `n_boot`, each baseline also gets `gain_ci`: the paired
    bootstrap interval of the model's accuracy minus the baseline's (what the accuracy gates judge on small
    test splits)."""
    from sklearn.linear_model import LogisticRegression

    majority_class = float(np.mean(y_train) >= 0.5)
    majority: dict[str, Any] = {"class": int(majority_class), "accuracy": float(np.mean(y_test == majority_class))}
    regression = LogisticRegression(max_iter=2000, random_state=seed).fit(x_train, y_train)
    chunks = [x_test] if isinstance(x_test, np.ndarray) else x_test
    proba = np.concatenate([regression.predict_proba(x)[:, 1] for x in chunks])
    auc = None if np.isnan(area := roc_auc(y_test, proba)) else area
    logistic: dict[str, Any] = {"accuracy": float(np.mean((proba >= threshold) == (y_test > 0.5))), "auc": auc}
    out = {"majority_class": majority, "logistic_regression": logistic}
    if model_right is not None and n_boot:
        for facts, right in ((majority, y_test == majority_class), (logistic, (proba >= threshold) == (y_test > 0.5))):
            facts["gain_ci"] = gain_interval(model_right, right, n_boot, confidence, seed)
    return out


def gain_interval(model_right: np.ndarray, other_right: np.ndarray, n_boot: int, confidence: float,
                  seed: int) -> list[float]:
    """Paired percentile bootstrap interval of accuracy(model) - accuracy(other) on the same rows: resampling rows
    only moves counts between the four (model right, other right) cells."""
    from pipelines.training.metrics import bootstrap_counts

    counts = np.bincount(2 * np.asarray(model_right, int) + np.asarray(other_right, int), minlength=4)
    draws = bootstrap_counts(counts.astype(float), n_boot, seed)  # cells: 00, 01, 10, 11
    gains = (draws[:, 2] - draws[:, 1]) / counts.sum()
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(gains, [tail, 100 - tail])
    return [float(low), float(high)]
