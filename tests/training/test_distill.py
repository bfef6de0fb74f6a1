"""Distillation: the LightGBM teacher and the soft targets a student network learns from."""
from __future__ import annotations

import numpy as np
import pytest

from pipelines.core.config import DistillConfig
from pipelines.core.errors import PipelineError
from pipelines.training.distill import (
    fit_teacher,
    load_teacher,
    save_teacher,
    soften,
    student_targets,
    teacher_proba,
)


def test_soften_tempers_confidence_around_one_half():
    p = np.array([0.01, 0.3, 0.5, 0.9], np.float32)
    assert np.allclose(soften(p, 1.0), p, atol=1e-6)
    soft = soften(p, 2.0)
    assert soft[2] == pytest.approx(0.5)
    assert np.all(np.abs(soft - 0.5) < np.abs(p - 0.5) + 1e-9) and np.all((soft > 0.5) == (p > 0.5))
    assert soften(np.array([0.9]), 2.0)[0] == pytest.approx(1 / (1 + np.exp(-np.log(9) / 2)))


def test_student_targets_mix_soft_labels_with_labels():
    labels, proba = np.array([0, 1, 1], np.float32), np.array([0.2, 0.6, 0.9], np.float32)
    assert student_targets(labels, None, DistillConfig()).tolist() == [0, 1, 1]
    assert np.allclose(student_targets(labels, proba, DistillConfig(temperature=1.0, mix=1.0)), proba)
    assert np.allclose(student_targets(labels, proba, DistillConfig(temperature=1.0, mix=0.0)), labels)
    half = student_targets(labels, proba, DistillConfig(temperature=1.0, mix=0.5))
    assert np.allclose(half, [0.1, 0.8, 0.95]) and half.dtype == np.float32
    with pytest.raises(PipelineError, match="^distill: 2 teacher probabilities for 3 training rows$"):
        student_targets(labels, proba[:2], DistillConfig())


def test_teacher_learns_and_round_trips_through_its_file(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(800, 6)).astype(np.float32)
    y = ((x[:, 0] * x[:, 1] > 0) ^ (x[:, 2] > 1.5)).astype(np.float32)  # interactions a linear model misses
    teacher = fit_teacher(x[:600], y[:600], DistillConfig(n_estimators=60), seed=0)
    proba = teacher_proba(teacher, x[600:])
    assert np.mean((proba >= 0.5) == (y[600:] > 0.5)) > 0.8
    save_teacher(teacher, tmp_path / "teacher.txt")
    assert np.allclose(teacher_proba(load_teacher(tmp_path / "teacher.txt"), x[600:]), proba, atol=1e-6)
    again = teacher_proba(fit_teacher(x[:600], y[:600], DistillConfig(n_estimators=60), seed=0), x[600:])
    assert np.array_equal(again, proba)  # deterministic


def test_teacher_errors_are_one_line(tmp_path):
    with pytest.raises(PipelineError, match="one class only"):
        fit_teacher(np.zeros((10, 2), np.float32), np.ones(10, np.float32), DistillConfig(), seed=0)
    missing = tmp_path / "teacher.txt"
    with pytest.raises(PipelineError, match=f"^{missing}: no teacher model; run the teacher_model stage"):
        load_teacher(missing)


@pytest.mark.slow
def test_bound_heads_learn_the_teachers_soft_labels(small_project):
    """fairness.method bound (the default) trains its heads on the student targets: with train.distill the
    unconstrained head follows the softened teacher more closely than the one trained on the labels (same seed)."""
    import yaml

    from pipelines.catalog import step_function
    from pipelines.core.config import load_settings
    from pipelines.core.paths import ArtifactPaths
    from pipelines.data.features import encode_features, encode_labels, fit_feature_spec
    from pipelines.data.split import load_split
    from pipelines.training import bounded
    from pipelines.training.distill import TEACHER_FILE
    from pipelines.training.train import predict_keras

    path = small_project / "params.yaml"
    params = yaml.safe_load(path.read_text())
    params["distill"] = {"n_estimators": 40, "temperature": 4.0, "mix": 1.0}
    path.write_text(yaml.safe_dump(params))
    settings = load_settings(path)
    for name in ("raw_dataset", "validated_dataset", "data_drift", "dataset_splits", "teacher_model"):
        step_function(name)(settings)
    train, validation = load_split(settings, "train"), load_split(settings, "validation")
    spec = fit_feature_spec(train, settings.params.data)  # what the teacher and the network both see
    teacher = teacher_proba(load_teacher(ArtifactPaths(small_project).teacher_model / TEACHER_FILE),
                            encode_features(train, spec))
    soft = student_targets(encode_labels(train, spec), teacher, settings.params.distill)  # T = 4: near 0.5
    distance = {}
    for distill in ("none", "lightgbm"):
        student = load_settings(path, overrides={"train.distill": distill, "train.epochs": 30,
                                                 "train.early_stopping_patience": None})
        (model, _), = bounded.fit_heads(student, train, validation, spec, [bounded.UNCONSTRAINED])
        distance[distill] = float(np.abs(predict_keras(model, encode_features(train, spec)) - soft).mean())
    assert distance["lightgbm"] < 0.5 * distance["none"], distance
