"""The mitigation sweep trained_model runs: every strength trained at once, measured on the validation rows, and
the deployed strength chosen (pipelines.training.strength) within the fairness limit and the accuracy gates."""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from pipelines.core.config import Settings
from pipelines.data.features import FeatureSpec, encode_features, encode_labels, encoded_chunks
from pipelines.training.keras_model import fit_sweep, predict_rows


class Sweep(NamedTuple):
    fitted: dict[float, tuple]  # strength -> (model, history)
    points: list[dict[str, Any]]  # validation accuracy and disparity per strength
    chosen: float
    why: str
    sweep_rows: int
    baseline: dict[str, Any] | None  # the fitted reductions baseline (target: baseline), reused by the trade-off
    choice: dict[str, Any]  # within_gates, limit, accuracy_floor, validation_baselines (auto only)


def sweep(settings: Settings, train: pd.DataFrame, validation: pd.DataFrame, spec: FeatureSpec) -> Sweep:
    """Train every sweep strength and choose the deployed one.

    With `fairness.strength: auto` the deployed one is the most accurate on the validation rows whose disparity
    on the constrained grouping is within the fairness gate's limit and whose validation accuracy meets
    gates.keras (logistic regression and the majority class fitted on the sweep's training rows, scored on the
    validation rows). The disparity is measured on the training and validation rows together (groups of at
    least gates.fairness.min_group_size), since a validation split alone is too small for stable group rates; a
    strength whose model answers one class only is never chosen. When no strength meets the limit, the sweep
    tries three doublings of its top strength (trained together); when still none meets both, the least
    disparate is kept and `within_gates` is false: the fairness gate on trained_model stops the run.
    Above `fairness.sample_rows` training rows the sweep trains on a stratified sample (label x constrained
    groups) and the deployed strength is then trained again on every training row.
    """
    from concurrent.futures import ThreadPoolExecutor

    from pipelines.training import strength as choice
    from pipelines.training.metrics import group_metrics, intersection_name
    from pipelines.training.mitigation import constrained_features, sweep_sample

    params = settings.params
    fairness, threshold = params.fairness, params.train.threshold
    features = constrained_features(fairness, params.data)
    grouping, key = intersection_name(features), choice.DISPARITY[fairness.constraint]
    limit = choice.gate_limit(params.gates.fairness, fairness.constraint, grouping)
    sample = sweep_sample(train, params.data.label, features, fairness)
    y_val = encode_labels(validation, spec)
    rows = pd.concat([sample, validation], ignore_index=True)
    y_rows = encode_labels(rows, spec)
    fitted: dict[float, tuple] = {}
    points: list[dict[str, Any]] = []

    def fit(strengths: list[float]) -> None:
        fitted.update(fit_sweep(settings, sample, validation, spec, strengths))  # all at once: about one training
        for each in strengths:
            (proba,), (on_rows,) = predict_rows([fitted[each][0]], validation, spec), \
                predict_rows([fitted[each][0]], rows, spec)
            facts = group_metrics(y_rows, on_rows, rows[features], threshold,
                                  intersection=True, min_group_size=params.gates.fairness.min_group_size)[grouping]
            points.append({"strength": each, "accuracy": float(np.mean((proba >= threshold) == (y_val > 0.5))),
                           key: facts[key], "grouping": grouping,
                           "one_class": bool(len(np.unique(proba >= threshold)) < 2)})

    auto, baseline, simple = fairness.strength == "auto", None, None
    with ThreadPoolExecutor(max_workers=1) as pool:  # liblinear/lbfgs and TensorFlow both release the GIL
        fitting = pool.submit(baseline_disparity, settings, sample, rows, spec, features) \
            if auto and fairness.target == "baseline" else None
        scoring = pool.submit(validation_baselines, settings, sample, validation, spec) if auto else None
        fit(choice.strengths(fairness))
        if fitting is not None:
            disparity, baseline = fitting.result()
            limit, bound = choice.baseline_limit(limit, disparity)
        simple = scoring.result() if scoring is not None else None
    facts: dict[str, Any] = {}
    if not auto:
        chosen, why = float(fairness.strength), "pinned in params fairness.strength"
    else:
        floor, floor_text = choice.accuracy_floor(params.gates.keras, simple["logistic_regression"]["accuracy"],
                                                  simple["majority_class"]["accuracy"])
        best, why = choice.choose(points, limit, key, floor, floor_text)
        if best is None and not any(choice.fair(p, limit, key) for p in points):  # stronger may be fairer
            fit(choice.extension(list(fitted)))
            best, why = choice.choose(points, limit, key, floor, floor_text)
        facts = {"within_gates": best is not None, "limit": limit, "accuracy_floor": floor,
                 "validation_baselines": {k: v["accuracy"] for k, v in simple.items()}}
        if best is None:
            best, why = choice.none_within(points, limit, key, floor, floor_text)
        chosen = best["strength"]
        if fairness.target == "baseline":
            why += f" ({bound})"
    if len(sample) < len(train):
        fitted[chosen] = fit_sweep(settings, train, validation, spec, [chosen])[chosen]
        why += (f"; the sweep trained on a stratified sample of {len(sample)} of the {len(train)} training rows, "
                "the deployed model on all of them")
    return Sweep(fitted, points, chosen, why, len(sample), baseline, facts)


def validation_baselines(settings: Settings, sample: pd.DataFrame, validation: pd.DataFrame,
                         spec: FeatureSpec) -> dict[str, dict[str, Any]]:
    """Logistic regression and the majority class fitted on the sweep's training rows, scored on the validation
    rows: the same baselines the accuracy gate judges on the test rows (pipelines.training.baselines)."""
    from pipelines.training.baselines import baselines

    return baselines(encode_features(sample, spec), encode_labels(sample, spec), encoded_chunks(validation, spec),
                     encode_labels(validation, spec), settings.params.train.threshold, settings.params.train.seed)


def baseline_disparity(settings: Settings, sample: pd.DataFrame, rows: pd.DataFrame, spec: FeatureSpec,
                       features: list[str]) -> tuple[float | None, dict[str, Any]]:
    """The reductions baseline (fit on the sweep's training rows) measured like the sweep points: its disparity on
    the constrained grouping over the sample and validation rows; and the fitted baseline."""
    from pipelines.training import strength as choice
    from pipelines.training.metrics import group_metrics, intersection_name
    from pipelines.training.mitigation import constraint_labels, reductions_baseline

    params = settings.params
    decide, fitted = reductions_baseline(encode_features(sample, spec), encode_labels(sample, spec),
                                         constraint_labels(sample, features), params.fairness)
    facts = group_metrics(encode_labels(rows, spec), decide(encoded_chunks(rows, spec)), rows[features], 0.5,
                          intersection=True, min_group_size=params.gates.fairness.min_group_size)
    return facts[intersection_name(features)][choice.DISPARITY[params.fairness.constraint]], fitted
