"""Compute cost of the run itself: CPU seconds of each step, measured where every orchestrator calls it.

`pipelines.core.step.records_metrics` wraps every step function, so Dagster assets, DVC stages
(`mobile-mlops stage`) and the benchmarks all measure the same way, in one place. The figures land in
the step's summary (Dagster metadata, CLI output) and in its DVC metrics file reports/metrics/<step>.json,
which the cost report sums. A step that does not run (a skipped nightly tick, a DVC cache hit) adds
nothing: no compute is spent and no record changes.
"""
from __future__ import annotations

import resource
import time
from collections.abc import Callable
from typing import Any

SECONDS_PER_HOUR = 3600.0


def cpu_seconds() -> float:
    """User + system CPU seconds of this process (every thread) and of its waited-for children."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def compute_cost_usd(cpu: float, vcpu_hour_price: float) -> float:
    """CPU seconds at a $/vCPU-hour list price: a lower bound of the bill (idle allocated time is free here)."""
    return cpu / SECONDS_PER_HOUR * vcpu_hour_price


def measured(step: Callable[..., Any], settings, *args: Any, **kwargs: Any):
    """Run a step; add `cpu_seconds`, `wall_seconds` and `compute_cost_usd` to its summary."""
    from pipelines.core.profiling import profile_folder, profiled

    cpu_before, wall_before = cpu_seconds(), time.perf_counter()
    folder = profile_folder()  # `mobile-mlops run --profile`
    from pipelines.core.memory import memory_kb, release_after, settle_heap

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
