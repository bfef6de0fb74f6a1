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
