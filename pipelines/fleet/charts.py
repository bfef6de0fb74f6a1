"""Fleet charts (PNG): guardrails over time per cohort, observed against estimated cost."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from pipelines.core.plots import _pyplot, save_figure

PANELS = (("crash_rate", "crashes per session"), ("latency_ms", "latency (ms, geo mean)"),
          ("accuracy", "accuracy (feedback)"), ("selection_rate_gap", "selection-rate gap (debiased, cumulative)"),
          ("mb_per_device_month", "MB per device-month (cumulative)"))


def guardrail_chart(history: list[dict[str, Any]], target: Path, limits: dict[str, float] | None = None) -> Path:
    """Each guardrail per day, one line per cohort; `limits` (guardrail -> limit) drawn as dashed lines."""
    plt = _pyplot()
    figure, axes = plt.subplots(1, len(PANELS), figsize=(18, 3.2))
    cohorts = sorted({row["cohort"] for row in history})
    for axis, (key, label) in zip(axes, PANELS, strict=True):
        for cohort in cohorts:
            rows = [r for r in history if r["cohort"] == cohort and r.get(key) is not None]
            axis.plot([r["day"][5:] for r in rows], [r[key] for r in rows], marker="o", markersize=3, label=cohort)
        if limits and limits.get(key) is not None:
            axis.axhline(limits[key], color="#c0392b", linestyle="--", linewidth=1, label="limit")
        axis.set_title(label, fontsize=9)
        axis.tick_params(axis="x", labelrotation=60, labelsize=7)
    axes[0].legend(fontsize=7)
    return save_figure(figure, target)


def cost_chart(comparison: list[dict[str, Any]], target: Path, mb_budget: float | None = None) -> Path:
    """Observed / estimated ratio per metric (1 = as estimated), latest month; MB per device-month beside the
    estimate and gates.budgets.max_device_mb_per_month."""
    plt = _pyplot()
    month = max(r["month"] for r in comparison)
    rows = [r for r in comparison if r["month"] == month and r["ratio"] is not None]
    figure, (axis, mb_axis) = plt.subplots(1, 2, figsize=(11, 0.35 * max(len(rows), 1) + 1.4),
                                           gridspec_kw={"width_ratios": [3, 2]})
    axis.barh([r["metric"] for r in rows], [r["ratio"] for r in rows], color="#2e86c1")
    axis.axvline(1.0, color="black", linestyle="--", linewidth=1)
    axis.set_xlabel("observed / estimated")
    axis.set_title(f"Observed vs estimated cost, {month}", fontsize=10)
    axis.invert_yaxis()
    mb = next((r for r in comparison if r["month"] == month and r["metric"] == "device_mb_per_month"), None)
    if mb is not None:
        bars = {"observed": mb["observed"], "estimated": mb["estimated"]}
        names = [k for k, v in bars.items() if v is not None]
        mb_axis.bar(names, [bars[k] for k in names], color=["#2e86c1", "#95a5a6"][:len(names)])
        if mb_budget is not None:
            mb_axis.axhline(mb_budget, color="#c0392b", linestyle="--", linewidth=1, label="budget")
            mb_axis.legend(fontsize=7)
    mb_axis.set_title("MB per device-month", fontsize=10)
    return save_figure(figure, target)
