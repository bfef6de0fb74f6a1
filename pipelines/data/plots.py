"""The data domain's charts: PSI per feature against the drift threshold."""
from __future__ import annotations

from pathlib import Path

from pipelines.core.plots import _pyplot, save_figure


def psi_chart(psi_by_feature: dict[str, float], threshold: float, target: Path, title: str) -> Path:
    """Horizontal bars of PSI per feature with the drift threshold marked."""
    plt = _pyplot()
    names = list(psi_by_feature)
    values = [min(psi_by_feature[n], 10.0) for n in names]
    figure, axis = plt.subplots(figsize=(6, 0.3 * len(names) + 1.2))
    if not names:  # no reference release yet: say so instead of drawing empty axes
        axis.axis("off")
        axis.text(0.5, 0.5, "no reference release to compare with:\nno drift measured", ha="center", va="center",
                  fontsize=10)
        axis.set_title(title, fontsize=10)
        return save_figure(figure, target)
    colors = ["#c0392b" if v > threshold else "#2e86c1" for v in values]
    axis.barh(names, values, color=colors)
    axis.axvline(threshold, color="black", linestyle="--", linewidth=1, label=f"threshold {threshold}")
    axis.set_xlabel("PSI (population stability index)")
    axis.set_title(title, fontsize=10)
    axis.invert_yaxis()
    axis.legend(loc="lower right", fontsize=8)
    return save_figure(figure, target)
