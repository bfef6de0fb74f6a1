"""What every step function returns, and the decorator that records its metrics and compute.

A step (pipelines/<domain>/steps.py) reads its inputs from their paths, does the work and writes its outputs
atomically; Dagster assets, DVC stages (`mobile-mlops stage NAME`) and the benchmarks all call it.
"""
from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines.core.compute import compute_cost_usd, cpu_seconds
from pipelines.core.config import Settings
from pipelines.core.io import write_json
from pipelines.core.memory import memory_kb, release_after, settle_heap
from pipelines.core.paths import ArtifactPaths
from pipelines.core.profiling import profile_folder, profiled
from pipelines.core.tracing import record, step_span


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


def measured(step: Callable[..., Any], settings, *args: Any, **kwargs: Any):
    """Run a step; add `cpu_seconds`, `wall_seconds` and `compute_cost_usd` to its summary."""
    cpu_before, wall_before = cpu_seconds(), time.perf_counter()
    folder = profile_folder()  # `mobile-mlops run --profile`
    settle_heap()
    rss_before = memory_kb().get("VmRSS", 0)
    try:
        result = profiled(step.__name__, folder, lambda: step(settings, *args, **kwargs)) if folder else \
            step(settings, *args, **kwargs)
    finally:
        release_after(rss_before)  # one process runs every step: what this one left must not be the next one's floor
    cpu = max(cpu_seconds() - cpu_before, 0.0)
    price = settings.params.finops.prices.compute_vcpu_hour
    result.summary.update({"cpu_seconds": round(cpu, 3), "wall_seconds": round(time.perf_counter() - wall_before, 3),
                           "compute_cost_usd": round(compute_cost_usd(cpu, price), 8)})
    return result


def records_metrics(step: Callable[..., StepResult]) -> Callable[..., StepResult]:
    """Decorate a step: on success, write its headline metrics to reports/metrics/<step>.json (a DVC metric).

    The step's CPU seconds and their compute cost are measured here too (`measured`), so every orchestrator
    records them the same way and the cost report can sum them.
    """

    @functools.wraps(step)
    def run(settings: Settings, *args: Any, **kwargs: Any) -> StepResult:
        with step_span(step.__name__) as span:  # an OpenTelemetry span when OTEL_* asks for one
            result = measured(step, settings, *args, **kwargs)
            record(span, headline_metrics(result.summary))
        write_json(ArtifactPaths(settings.root).metrics(step.__name__), headline_metrics(result.summary))
        return result

    return run
