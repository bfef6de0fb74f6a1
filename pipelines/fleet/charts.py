"""Fleet charts (PNG): guardrails over time per cohort, observed against estimated cost."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from pipelines.core.plots import _pyplot, save_figure


def guardrail_chart(history: list[dict[str, Any]], target: Path) -> Path:
    """Crash rate, latency and accuracy per day, one line per cohort."""
    plt = _pyplot()
    figure, axes = plt.subplots(1, 3, figsize=(11, 3))
    cohorts = sorted({row["cohort"] for row in history})
    for axis, (key, label) in zip(axes, (("crash_rate", "crashes per session"), ("latency_ms", "latency (ms, geo mean)"),
                                         ("accuracy", "accuracy (feedback)")), strict=True):
        for cohort in cohorts:
            rows = [r for r in history if r["cohort"] == cohort]
            axis.plot([r["day"][5:] for r in rows], [r[key] for r in rows], marker="o", markersize=3, label=cohort)
        axis.set_title(label, fontsize=9)
        axis.tick_params(axis="x", labelrotation=60, labelsize=7)
    axes[0].legend(fontsize=7)
    return save_figure(figure, target)


def cost_chart(comparison: list[dict[str, Any]], target: Path) -> Path:
    """Observed / estimated ratio per metric (1 = as estimated), latest month."""
    plt = _pyplot()
    month = max(r["month"] for r in comparison)
    rows = [r for r in comparison if r["month"] == month and r["ratio"] is not None]
    figure, axis = plt.subplots(figsize=(6, 0.35 * max(len(rows), 1) + 1.2))
    axis.barh([r["metric"] for r in rows], [r["ratio"] for r in rows], color="#2e86c1")
    axis.axvline(1.0, color="black", linestyle="--", linewidth=1)
    axis.set_xlabel("observed / estimated")
    axis.set_title(f"Observed vs estimated cost, {month}", fontsize=10)
    axis.invert_yaxis()
    return save_figure(figure, target)
