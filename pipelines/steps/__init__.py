"""One function per pipeline step: read inputs from their paths, do the work, write outputs atomically.

Dagster assets, DVC stages (`mobile-mlops stage NAME`) and the benchmarks all call these,
so every orchestrator writes the same files.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines.config import Settings


@dataclass
class StepResult:
    """Key facts of a finished step (shown in the CLI and as Dagster metadata)."""

    summary: dict[str, Any]
    tables: dict[str, str] = field(default_factory=dict)  # title -> Markdown
    data_version: str | None = None  # md5 of the step's main output, as DVC records it
    plots: dict[str, Path] = field(default_factory=dict)  # title -> PNG (shown in Dagster, a DVC plot)


StepFn = Callable[[Settings], StepResult]


def headline_metrics(summary: dict[str, Any]) -> dict[str, float | int | bool]:
    """The summary's numbers and flags: what `dvc metrics show` lists for a stage."""
    return {k: v for k, v in summary.items()
            if isinstance(v, bool) or (isinstance(v, int | float) and not (isinstance(v, float) and math.isnan(v)))}


def records_metrics(step: Callable[..., StepResult]) -> Callable[..., StepResult]:
    """Decorate a step: on success, write its headline metrics to reports/metrics/<step>.json (a DVC metric).

    The step's CPU seconds and their compute cost are measured here too (pipelines.compute), so every
    orchestrator records them the same way and the cost report can sum them.
    """
    from pipelines.compute import measured
    from pipelines.io import write_json
    from pipelines.paths import ArtifactPaths

    @functools.wraps(step)
    def run(settings: Settings, *args: Any, **kwargs: Any) -> StepResult:
        result = measured(step, settings, *args, **kwargs)
        write_json(getattr(ArtifactPaths(settings.root), f"{step.__name__}_metrics"), headline_metrics(result.summary))
        return result

    return run


def registry() -> dict[str, StepFn]:
    """Step name -> function, in execution order (names match assets and DVC stages)."""
    from pipelines.steps import data, drift, mobile, model, release
    from pipelines.steps import footprint
    from pipelines.steps import governance
    from pipelines.steps import finops

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
        "fairness_tradeoff": governance.fairness_tradeoff,
        "fairness_report": governance.fairness_report,
        "feature_importance": governance.feature_importance,
        "model_card": governance.model_card,
        "finops_report": finops.finops_report,
        "release_candidate": release.release_candidate,
    }
