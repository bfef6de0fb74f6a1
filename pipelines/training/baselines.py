"""Simple baselines every run reports beside the model: the majority class and logistic regression."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np


def baselines(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray | Iterable[np.ndarray], y_test: np.ndarray,
              threshold: float, seed: int = 0) -> dict[str, dict[str, Any]]:
    """Test accuracy of always answering the training majority class, and of a logistic regression on the same
    encoded inputs and split (the figures the model has to beat, or come close to). `x_test` may come as
    consecutive chunks of rows (the same probabilities: each row's is computed on its own)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    majority_class = float(np.mean(y_train) >= 0.5)
    majority = {"class": int(majority_class), "accuracy": float(np.mean(y_test == majority_class))}
    regression = LogisticRegression(max_iter=2000, random_state=seed).fit(x_train, y_train)
    chunks = [x_test] if isinstance(x_test, np.ndarray) else x_test
    proba = np.concatenate([regression.predict_proba(x)[:, 1] for x in chunks])
    auc = float(roc_auc_score(y_test, proba)) if len(np.unique(y_test)) == 2 else None
    logistic = {"accuracy": float(np.mean((proba >= threshold) == (y_test > 0.5))), "auc": auc}
    return {"majority_class": majority, "logistic_regression": logistic}
