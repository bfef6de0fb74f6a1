"""One function per pipeline step: read inputs from their paths, do the work, write outputs atomically.

Dagster assets, DVC stages (`mobile-mlops stage NAME`) and the benchmarks all call these,
so every orchestrator writes the same files.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pipelines.config import Settings


@dataclass
class StepResult:
    """Key facts of a finished step (shown in the CLI and as Dagster metadata)."""

    summary: dict[str, Any]
    tables: dict[str, str] = field(default_factory=dict)  # title -> Markdown
    data_version: str | None = None  # md5 of the step's main output, as DVC records it


StepFn = Callable[[Settings], StepResult]


def registry() -> dict[str, StepFn]:
    """Step name -> function, in execution order (names match assets and DVC stages)."""
    from pipelines.steps import data, drift, mobile, model, release
    from pipelines.steps import footprint

    return {
        "raw_dataset": data.raw_dataset,
        "validated_dataset": data.validated_dataset,
        "data_drift": drift.data_drift,
        "dataset_splits": data.dataset_splits,
        "trained_model": model.trained_model,
        "model_evaluation": model.model_evaluation,
        "tflite_model": mobile.tflite_model,
        "coreml_model": mobile.coreml_model,
        "footprint_report": footprint.footprint_report,
        "offload_policy": footprint.offload_policy,
        "release_candidate": release.release_candidate,
    }
