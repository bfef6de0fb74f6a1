"""Compute cost of the run itself: CPU seconds of each step, measured where every orchestrator calls it.

`pipelines.core.step.measured` runs every step function (records_metrics wraps each), so Dagster assets, DVC
stages (`mobile-mlops stage`) and the benchmarks all measure the same way, in one place. The figures land in
the step's summary (Dagster metadata, CLI output) and in its DVC metrics file reports/metrics/<step>.json,
which the cost report sums. A step that does not run (a skipped nightly tick, a DVC cache hit) adds
nothing: no compute is spent and no record changes.
"""
from __future__ import annotations

import resource

SECONDS_PER_HOUR = 3600.0


def cpu_seconds() -> float:
    """User + system CPU seconds of this process (every thread) and of its waited-for children."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def compute_cost_usd(cpu: float, vcpu_hour_price: float) -> float:
    """CPU seconds at a $/vCPU-hour list price: a lower bound of the bill (idle allocated time is free here)."""
    return cpu / SECONDS_PER_HOUR * vcpu_hour_price
