"""The accuracy-vs-disparity trade-off: one point per mitigation strength, the baseline, and the target."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipelines.core.config import FairnessConfig
from pipelines.training.metrics import GroupCodes, cell_counts, group_codes, group_figures, intersection_name
from pipelines.training.strength import DISPARITY


def point(
    y_true: np.ndarray, proba: np.ndarray, groups: pd.DataFrame | GroupCodes, features: list[str],
    config: FairnessConfig, threshold: float, min_group_size: int, n_boot: int = 0,
) -> dict[str, Any]:
    """Accuracy and both disparities on the constrained grouping (the features' intersection), with intervals.
    `groups`: a frame with the feature columns, or the features' group codes with their intersection."""
    codes = groups if isinstance(groups, dict) else group_codes(groups[features], intersection=True)
    names, grouped = codes[intersection_name(features)]
    counts = cell_counts(grouped, len(names), np.asarray(y_true) > 0.5, np.asarray(proba) >= threshold)
    return point_figures(names, counts, config, min_group_size, n_boot)


def point_figures(names: np.ndarray, counts: np.ndarray, config: FairnessConfig, min_group_size: int,
                  n_boot: int = 0) -> dict[str, Any]:
    """`point` from the constrained grouping's names and confusion cells [TN, FP, FN, TP]."""
    facts = group_figures(names, counts, min_group_size=min_group_size, n_boot=n_boot, confidence=config.confidence,
                          seed=config.seed)
    tn, fp, fn, tp = (int(v) for v in counts.sum(axis=0))
    rows = tn + fp + fn + tp
    return {"accuracy": (tn + tp) / rows, "selection_rate": (tp + fp) / rows,
            "demographic_parity_difference": facts["demographic_parity_difference"],
            "equalized_odds_difference": facts["equalized_odds_difference"], "ci": facts.get("ci", {})}


def _round(value: float | None) -> float | None:
    """A figure for the CSV; an undefined one (an empty group, one-class predictions) stays undefined."""
    return None if value is None else round(value, 6)


def _fmt(value: float | None) -> str:
    return "undefined" if value is None else f"{value:.4f}"


def compare(ours: dict[str, Any], baseline: dict[str, Any], constraint: str) -> dict[str, Any]:
    """The target: accuracy at least the baseline's at a disparity no larger than the baseline's."""
    key = DISPARITY[constraint]
    accuracy_margin = ours["accuracy"] - baseline["accuracy"]
    if ours[key] is None or baseline[key] is None:
        return {"disparity": key, "accuracy_margin": accuracy_margin, "disparity_margin": None, "met": False,
                "undefined": f"{key} is undefined for {'ours' if ours[key] is None else 'the baseline'}"}
    disparity_margin = baseline[key] - ours[key]
    return {"disparity": key, "accuracy_margin": accuracy_margin, "disparity_margin": disparity_margin,
            "met": bool(accuracy_margin >= 0 and disparity_margin >= 0)}


def rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Flat rows for the CSV (DVC plots): every strength, then the baseline."""
    out = []
    for entry in report["sweep"]:
        test, val = entry["test"], entry["validation"]
        out.append({"model": "keras", "strength": entry["strength"], "deployed": entry["deployed"],
                    "accuracy": _round(test["accuracy"]),
                    "demographic_parity_difference": _round(test["demographic_parity_difference"]),
                    "equalized_odds_difference": _round(test["equalized_odds_difference"]),
                    "validation_accuracy": _round(val["accuracy"]),
                    "validation_disparity": _round(val[DISPARITY[report["constraint"]]])})
    base = report["baseline"]["test"]
    out.append({"model": "baseline", "strength": "", "deployed": False, "accuracy": _round(base["accuracy"]),
                "demographic_parity_difference": _round(base["demographic_parity_difference"]),
                "equalized_odds_difference": _round(base["equalized_odds_difference"]),
                "validation_accuracy": _round(report["baseline"]["validation"]["accuracy"]),
                "validation_disparity": _round(report["baseline"]["validation"][DISPARITY[report["constraint"]]])})
    return out


def table(report: dict[str, Any]) -> str:
    """Markdown: the sweep and the baseline on the test split (validation in the last columns)."""
    key = DISPARITY[report["constraint"]]
    short = "DPD" if key == "demographic_parity_difference" else "EOD"
    lines = [f"| model | strength | test accuracy | test DPD | test EOD | validation accuracy | validation {short} |",
             "|---|---|---|---|---|---|---|"]
    for row in rows(report):
        label = row["model"] + (" (deployed)" if row["deployed"] else "")
        figures = [row[k] for k in ("accuracy", "demographic_parity_difference", "equalized_odds_difference",
                                    "validation_accuracy", "validation_disparity")]
        lines.append(f"| {label} | {row['strength']} | " + " | ".join(_fmt(v) for v in figures) + " |")
    return "\n".join(lines)


def chart(report: dict[str, Any], target: Path) -> Path:
    """Test accuracy against the constrained disparity: the sweep as a line, the deployed point, the baseline."""
    from pipelines.core.plots import _pyplot, save_figure

    plt = _pyplot()
    key = DISPARITY[report["constraint"]]
    sweep, base = report["sweep"], report["baseline"]["test"]
    figure, axis = plt.subplots(figsize=(5.5, 3.6))
    sweep = [e for e in sweep if e["test"][key] is not None]  # an undefined disparity has no place on the axis
    xs, ys = [e["test"][key] for e in sweep], [e["test"]["accuracy"] for e in sweep]
    if base[key] is not None:
        axis.axvspan(0, base[key], ymin=0, ymax=1, color="#e8f6ef", zorder=0)
    axis.plot(xs, ys, "-o", color="#2e86c1", label=f"Keras MLP, {report['method']} strength")
    for entry, x, y in zip(sweep, xs, ys):
        axis.annotate(f"{entry['strength']:g}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
    deployed = [e for e in sweep if e["deployed"]]
    if deployed:
        axis.plot([deployed[0]["test"][key]], [deployed[0]["test"]["accuracy"]], "o", markersize=11, mfc="none",
                  color="#1e8449", label="deployed")
    if base[key] is not None:
        axis.plot([base[key]], [base["accuracy"]], "*", markersize=13, color="#c0392b",
                  label="ExponentiatedGradient + LR (baseline)")
    axis.axhline(base["accuracy"], color="#c0392b", linewidth=0.8, linestyle=":")
    axis.set_xlabel(f"{key.replace('_', ' ')} ({report['grouping']}, test)")
    axis.set_ylabel("test accuracy")
    axis.set_title("Accuracy vs disparity (shaded: disparity at most the baseline's)", fontsize=9)
    axis.legend(fontsize=7, loc="lower right")
    axis.grid(alpha=0.3)
    return save_figure(figure, target)
