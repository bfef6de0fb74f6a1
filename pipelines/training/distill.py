"""Distillation: a LightGBM teacher on the network's encoded inputs (so no sensitive column), and the soft targets
the student network learns from (train.distill).

The interface to any training routine is one array: `student_targets(frame)` gives, per row, the value the
binary cross-entropy should pull the network's probability towards. With train.distill: none it is the 0/1
label; with a teacher, mix x the teacher's temperature-softened probability + (1 - mix) x the label. Keras's
binary cross-entropy takes such soft targets as they are. Fairness weights (reweighing) and equalized-odds
conditioning keep using the hard labels (encode_labels).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from pipelines.core.config import DistillConfig
from pipelines.core.errors import PipelineError

TEACHER_FILE = "teacher.txt"  # the LightGBM booster as text, inside models/teacher/
TEACHERS = ("lightgbm",)


def fit_teacher(x: np.ndarray, y: np.ndarray, config: DistillConfig, seed: int):
    """A LightGBM classifier on the encoded training rows (deterministic; one thread: on a shared 2-core machine
    OpenMP threads waiting for each other made 300 rounds take 81 s instead of 2 s)."""
    import lightgbm

    if len(np.unique(y)) < 2:
        raise PipelineError("teacher_model: the training rows hold one class only; a teacher needs both")
    model = lightgbm.LGBMClassifier(
        n_estimators=config.n_estimators, num_leaves=config.num_leaves, learning_rate=config.learning_rate,
        min_child_samples=config.min_child_samples, random_state=seed, deterministic=True, force_row_wise=True,
        n_jobs=1, verbose=-1)
    return model.fit(x, y)


def save_teacher(model, path: Path) -> None:
    model.booster_.save_model(str(path))


def load_teacher(path: Path):
    """The saved booster; a missing file is a one-line error naming it."""
    import lightgbm

    if not path.is_file():
        raise PipelineError(f"{path}: no teacher model; run the teacher_model stage (train.distill names it)")
    return lightgbm.Booster(model_file=str(path))


def teacher_proba(model, x: np.ndarray) -> np.ndarray:
    """Positive-class probabilities of a fitted classifier or a loaded booster."""
    if hasattr(model, "predict_proba"):
        return np.asarray(model.predict_proba(x)[:, 1], np.float32)
    return np.asarray(model.predict(x), np.float32)


def soften(proba: np.ndarray, temperature: float) -> np.ndarray:
    """sigmoid(logit(p) / T): the teacher's probability with its confidence tempered (T > 1 pulls it towards 0.5)."""
    p = np.clip(np.asarray(proba, np.float64), 1e-7, 1 - 1e-7)
    return (1.0 / (1.0 + np.exp(-np.log(p / (1 - p)) / temperature))).astype(np.float32)


def student_targets(labels: np.ndarray, proba: np.ndarray | None, config: DistillConfig) -> np.ndarray:
    """What the student's loss aims at: the labels (no teacher), else mix x soft label + (1 - mix) x label."""
    labels = np.asarray(labels, np.float32)
    if proba is None:
        return labels
    if len(proba) != len(labels):
        raise PipelineError(f"distill: {len(proba)} teacher probabilities for {len(labels)} training rows")
    return (config.mix * soften(proba, config.temperature) + (1 - config.mix) * labels).astype(np.float32)


def teacher_facts(config: DistillConfig, seed: int) -> dict[str, Any]:
    """What the model card and the evaluation say about the teacher."""
    return {"model": "lightgbm", "library": "LightGBM LGBMClassifier", "seed": seed,
            **config.model_dump(exclude={"temperature", "mix"}),
            "inputs": "the network's encoded inputs (sensitive columns excluded as for the network)"}
