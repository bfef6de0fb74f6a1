"""What every step function returns, and the decorator that records its metrics and compute.

A step (pipelines/<domain>/steps.py) reads its inputs from their paths, does the work and writes its outputs
atomically; Dagster assets, DVC stages (`mobile-mlops stage NAME`) and the benchmarks all call it.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines.core.config import Settings


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

    The step's CPU seconds and their compute cost are measured here too (pipelines.core.compute), so every
    orchestrator records them the same way and the cost report can sum them.
    """
    from pipelines.core.compute import measured
    from pipelines.core.io import write_json
    from pipelines.core.paths import ArtifactPaths
    from pipelines.core.tracing import record, step_span

    @functools.wraps(step)
    def run(settings: Settings, *args: Any, **kwargs: Any) -> StepResult:
        with step_span(step.__name__) as span:  # an OpenTelemetry span when OTEL_* asks for one
            result = measured(step, settings, *args, **kwargs)
            record(span, headline_metrics(result.summary))
        write_json(ArtifactPaths(settings.root).metrics(step.__name__), headline_metrics(result.summary))
        return result

    return run
