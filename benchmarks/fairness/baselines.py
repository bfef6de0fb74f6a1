"""The reference models of the benchmark, fit on a run's training rows and measured on its test rows.

Every figure goes through the pipeline's own code: the feature encoding (pipelines.data.features), the reductions
baseline (pipelines.training.mitigation) and the group metrics (pipelines.training.metrics), so a baseline's
accuracy, DPD and EOD mean what the pipeline's reports mean.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from pipelines.core.config import Settings
from pipelines.data.features import encode_features, encode_labels, fit_feature_spec
from pipelines.training.metrics import group_metrics, intersection_name
from pipelines.training.mitigation import constrained_features, constraint_labels, reductions_baseline

# name -> what the row is, for the page's legend
METHODS = {
    "majority": "always the training split's majority class",
    "logistic": "logistic regression (the pipeline's baseline settings)",
    "eg_randomized": "fairlearn ExponentiatedGradient(LogisticRegression), one seeded draw from its randomized mixture",
    "eg_thresholded": "the same ExponentiatedGradient, deterministic: its mixture's probability >= 0.5",
    "grid_search": "fairlearn GridSearch(LogisticRegression) over max(10, 2^dimensions) Lagrange multipliers "
                   "(fairlearn's advice; at most 64), its best trade-off",
    "keras_unmitigated": "the project's Keras model (build_model, train_model), no mitigation",
}


def constrained_grouping(settings: Settings) -> tuple[list[str], str]:
    """The sensitive features the constraint covers and the name of their grouping in the metrics."""
    features = constrained_features(settings.params.fairness, settings.params.data)
    return features, intersection_name(features) if len(features) > 1 else features[0]


def measure(settings: Settings, test: pd.DataFrame, y_test: np.ndarray, decisions: np.ndarray) -> dict[str, float]:
    """Accuracy, DPD and EOD of 0/1 decisions on the test rows, over the constrained grouping's groups with at least
    gates.fairness.min_group_size rows (as the fairness gate counts them)."""
    features, grouping = constrained_grouping(settings)
    facts = group_metrics(y_test, decisions, test[features], 0.5, intersection=True,
                          min_group_size=settings.params.gates.fairness.min_group_size)[grouping]
    return {"accuracy": float(np.mean((decisions >= 0.5) == (y_test > 0.5))),
            "dpd": facts["demographic_parity_difference"], "eod": facts["equalized_odds_difference"]}


def grid_size(groups: int, parity: bool) -> int:
    """fairlearn's advice, 2^dimensions Lagrange multipliers (one dimension per group but one; twice that for
    equalized odds), at least its default 10 and at most 64 fits."""
    return min(64, max(10, 2 ** ((groups - 1) * (1 if parity else 2))))


def _grid_search(x: np.ndarray, y: np.ndarray, labels: np.ndarray, settings: Settings):
    from fairlearn.reductions import DemographicParity, EqualizedOdds, GridSearch
    from sklearn.linear_model import LogisticRegression

    parity = settings.params.fairness.constraint == "demographic_parity"
    moment = DemographicParity() if parity else EqualizedOdds()
    search = GridSearch(LogisticRegression(solver="liblinear"), moment, grid_size=grid_size(len(set(labels)), parity))
    search.fit(x, y.astype(int), sensitive_features=labels)
    return search


def _keras(settings: Settings, x_train, y_train, x_val, y_val, x_test) -> np.ndarray:
    from pipelines.training.train import predict_keras, train_model

    model, _ = train_model(x_train, y_train, x_val, y_val, settings.params.train)
    return (predict_keras(model, x_test) >= settings.params.train.threshold).astype(np.float32)


def baseline_decisions(settings: Settings, splits: dict[str, pd.DataFrame], keras: bool = True,
                       ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Each method's 0/1 decisions on the test rows, fit on the train split (Keras also stops early on validation),
    with what the frontier reuses: the encoded splits, the constraint's labels, the fitted baselines."""
    from sklearn.linear_model import LogisticRegression

    train, validation, test = splits["train"], splits["validation"], splits["test"]
    data, fairness = settings.params.data, settings.params.fairness
    spec = fit_feature_spec(train, data)
    x = {name: encode_features(frame, spec).astype(np.float64) for name, frame in splits.items()}
    y_train, y_test = encode_labels(train, spec), encode_labels(test, spec)
    features, _ = constrained_grouping(settings)
    labels = constraint_labels(train, features)
    decisions: dict[str, np.ndarray] = {}
    decisions["majority"] = np.full(len(y_test), float(np.mean(y_train) >= 0.5))
    logistic = LogisticRegression(max_iter=2000, random_state=settings.params.train.seed).fit(x["train"], y_train)
    decisions["logistic"] = (logistic.predict_proba(x["test"])[:, 1] >= 0.5).astype(float)
    decide, facts = reductions_baseline(x["train"], y_train, labels, fairness)
    decisions["eg_randomized"] = decide(x["test"])
    decisions["eg_thresholded"] = (facts["fitted"]._pmf_predict(x["test"])[:, 1] >= 0.5).astype(float)
    search = _grid_search(x["train"], y_train, labels, settings)
    decisions["grid_search"] = np.asarray(search.predict(x["test"]), float)
    if keras:
        decisions["keras_unmitigated"] = _keras(settings, x["train"].astype(np.float32), y_train,
                                                x["validation"].astype(np.float32), encode_labels(validation, spec),
                                                x["test"].astype(np.float32))
    return decisions, {"x": x, "labels": labels, "y_train": y_train, "y_test": y_test, "eg": facts["fitted"],
                       "search": search}


GATED = ("eg_randomized", "eg_thresholded", "grid_search", "logistic")  # references put through the fairness gate


def gate_failures(settings: Settings, test: pd.DataFrame, y_test: np.ndarray,
                  decisions: dict[str, np.ndarray]) -> dict[str, list[str]]:
    """Each GATED reference's failed fairness limits on the test split (empty: it passes), judged by the run's own
    fairness gate (pipelines.governance.fairness: every grouping and limit, min_group_size), as `figure grouping`."""
    from pipelines.governance.fairness import evaluate_models, fairness_gates

    params = settings.params
    config = params.fairness.model_copy(update={"bootstrap": 0})  # the verdict is on the point figures
    failures = {}
    for method in GATED:
        report = evaluate_models(y_test, {method: decisions[method]}, test[params.data.sensitive_features], config,
                                 0.5, params.gates.fairness.min_group_size)
        failures[method] = [f"{r.name.split('[')[0].removeprefix('max_')} {r.name.split('/')[-1].rstrip(']')}"
                            for r in fairness_gates(report, params.gates.fairness) if not r.passed]
    return failures


def reference_gates(settings: Settings, splits: dict[str, pd.DataFrame]) -> dict[str, list[str]]:
    """The GATED references fit on the train split and judged on the test split (gate_failures), without Keras."""
    decisions, fit = baseline_decisions(settings, splits, keras=False)
    return gate_failures(settings, splits["test"], fit["y_test"], decisions)


def fit_baselines(settings: Settings, splits: dict[str, pd.DataFrame], keras: bool = True,
                  deterministic: bool = True) -> tuple[dict[str, dict[str, Any]], dict[str, list[dict[str, Any]]],
                                                       dict[str, list[str]]]:
    """Each method's test accuracy, DPD and EOD (baseline_decisions), unless `deterministic` is False the
    deterministic frontier (benchmarks.fairness.frontier) on the same rows, and the references' gate_failures."""
    from benchmarks.fairness.frontier import frontier

    decisions, fit = baseline_decisions(settings, splits, keras)

    def figures(d: np.ndarray) -> dict[str, float]:
        return measure(settings, splits["test"], fit["y_test"], d)

    points = (frontier(settings, fit["x"], fit["labels"], fit["y_train"], figures, fit["eg"], fit["search"])
              if deterministic else {})
    return ({name: figures(d) for name, d in decisions.items()}, points,
            gate_failures(settings, splits["test"], fit["y_test"], decisions))
