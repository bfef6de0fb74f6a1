"""Classification metrics overall and per sensitive group."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score


def classification_metrics(y_true: np.ndarray, proba: np.ndarray, threshold: float) -> dict[str, float]:
    """Accuracy, AUC, precision, recall, F1 and selection rate at the decision threshold."""
    y_pred = (proba >= threshold).astype(int)
    both_classes = len(np.unique(y_true)) == 2
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "auc": float(roc_auc_score(y_true, proba)) if both_classes else float("nan"),
        "precision": float(precision_score(y_true, y_pred, zero_division=0)),
        "recall": float(recall_score(y_true, y_pred, zero_division=0)),
        "f1": float(f1_score(y_true, y_pred, zero_division=0)),
        "selection_rate": float(y_pred.mean()),
        "rows": int(len(y_true)),
    }


MISSING_GROUP = "(missing)"


def _group_labels(values: pd.Series) -> np.ndarray:
    """Group names as text; a missing value is its own group (fairlearn rejects missing values)."""
    return values.astype("string").fillna(MISSING_GROUP).to_numpy(dtype=object)


def group_metrics(
    y_true: np.ndarray, proba: np.ndarray, groups: pd.DataFrame, threshold: float
) -> dict[str, dict[str, Any]]:
    """Per sensitive feature: accuracy and selection rate by group, and the gaps (fairlearn MetricFrame)."""
    from fairlearn.metrics import MetricFrame, selection_rate

    y_pred = (proba >= threshold).astype(int)
    result = {}
    for column in groups.columns:
        frame = MetricFrame(
            metrics={"accuracy": accuracy_score, "selection_rate": selection_rate, "count": lambda t, p: len(t)},
            y_true=y_true, y_pred=y_pred, sensitive_features=_group_labels(groups[column]),
        )
        by_group = frame.by_group
        result[column] = {
            "groups": {
                str(g): {"accuracy": float(r["accuracy"]), "selection_rate": float(r["selection_rate"]), "count": int(r["count"])}
                for g, r in by_group.iterrows()
            },
            "demographic_parity_difference": float(by_group["selection_rate"].max() - by_group["selection_rate"].min()),
            "accuracy_gap": float(by_group["accuracy"].max() - by_group["accuracy"].min()),
        }
    return result


def agreement(a: np.ndarray, b: np.ndarray, threshold: float) -> float:
    """Share of rows where two models make the same decision."""
    return float(((a >= threshold) == (b >= threshold)).mean())
