"""The deterministic frontier: the deployable (one model, no randomization) points near the reductions baseline.

ExponentiatedGradient's point is a randomized mixture. Where no deterministic model reaches it, the page shows
what deterministic models do reach on the same rows: ExponentiatedGradient thresholded (its mixture's
probability >= 0.5) at several bounds, the project's network distilled from each of those mixtures' soft
decisions, and every Lagrange multiplier's model of GridSearch (each one plain logistic regression).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from pipelines.core.config import Settings
from pipelines.training.mitigation import reductions_baseline

EPS_GRID = (0.002, 0.005, 0.01, 0.02, 0.05)  # ExponentiatedGradient bounds (eps) the frontier is traced at
FAMILIES = {
    "eg_thresholded": "ExponentiatedGradient at bound eps, deterministic: its mixture's probability >= 0.5",
    "eg_distilled": "the project's network (build_model) trained on that mixture's probabilities (soft targets), "
                    "thresholded at train.threshold",
    "grid_search": "one of GridSearch's models (one Lagrange multiplier each; plain logistic regression)",
}


def eg_mixtures(settings: Settings, x_train: np.ndarray, y_train: np.ndarray, labels: np.ndarray,
                fitted: Any = None) -> dict[float, Any]:
    """ExponentiatedGradient fitted at each bound of EPS_GRID (the pipeline's baseline settings otherwise);
    `fitted`, the baseline already fitted at fairness.baseline_eps, is reused."""
    fairness = settings.params.fairness
    mixtures = {}
    for eps in EPS_GRID:
        if fitted is not None and eps == fairness.baseline_eps:
            mixtures[eps] = fitted
            continue
        _, facts = reductions_baseline(x_train, y_train, labels, fairness.model_copy(update={"baseline_eps": eps}))
        mixtures[eps] = facts["fitted"]
    return mixtures


def distil(settings: Settings, x_train: np.ndarray, soft_train: np.ndarray, x_val: np.ndarray,
           soft_val: np.ndarray) -> Any:
    """One Keras model holding one copy of the project's network per column of `soft_train` (no shared weights:
    each copy's gradient is its own), trained on binary cross-entropy against those probabilities, early stopping
    on the validation rows' loss against theirs (train.early_stopping: patience_epochs, best weights kept)."""
    import keras

    from pipelines.training.train import build_model, early_stopping, planned_epochs, seed_everything

    config = settings.params.train
    seed_everything(config.seed)
    inputs = keras.Input(shape=(x_train.shape[1],), name="features")
    heads = []
    for column in range(soft_train.shape[1]):
        network = build_model(x_train.shape[1], config)
        network.name = f"student_{column}"  # Keras wants unique names inside one model
        heads.append(network(inputs))
    model = keras.Model(inputs, keras.layers.Concatenate()(heads) if len(heads) > 1 else heads[0])
    model.compile(optimizer=keras.optimizers.Adam(config.learning_rate), loss="binary_crossentropy")
    callbacks = early_stopping(len(x_train), config)
    model.fit(x_train, soft_train, validation_data=(x_val, soft_val), epochs=planned_epochs(len(x_train), config),
              batch_size=config.batch_size, shuffle=True, callbacks=callbacks, verbose=0)
    return model


def frontier(settings: Settings, x: dict[str, np.ndarray], labels: np.ndarray, y_train: np.ndarray,
             measure, fitted_eg: Any, search: Any) -> dict[str, list[dict[str, Any]]]:
    """Each deterministic model's test figures (`measure` turns 0/1 test decisions into them), per family."""
    mixtures = eg_mixtures(settings, x["train"], y_train, labels, fitted_eg)
    points: dict[str, list[dict[str, Any]]] = {name: [] for name in FAMILIES}
    for eps, mixture in mixtures.items():
        points["eg_thresholded"].append({"eps": eps, **measure(
            (mixture._pmf_predict(x["test"])[:, 1] >= 0.5).astype(float))})
    soft = {split: np.column_stack([m._pmf_predict(x[split])[:, 1] for m in mixtures.values()]).astype(np.float32)
            for split in ("train", "validation")}
    network = distil(settings, x["train"].astype(np.float32), soft["train"], x["validation"].astype(np.float32),
                     soft["validation"])
    proba = np.asarray(network(x["test"].astype(np.float32), training=False)).reshape(len(x["test"]), -1)
    threshold = settings.params.train.threshold
    for column, eps in enumerate(mixtures):
        points["eg_distilled"].append({"eps": eps, **measure((proba[:, column] >= threshold).astype(float))})
    for index, predictor in enumerate(search.predictors_):
        points["grid_search"].append({"index": index, **measure(np.asarray(predictor.predict(x["test"]), float))})
    return points
