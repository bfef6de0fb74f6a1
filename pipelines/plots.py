"""Small, readable charts (PNG) for reports, Dagster metadata and DVC plots."""
from __future__ import annotations

import base64
from pathlib import Path

from pipelines.io import atomic_path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(figure, target: Path) -> Path:
    """Write a figure atomically as a compact PNG and close it."""
    with atomic_path(target) as tmp:
        figure.savefig(tmp, format="png", dpi=90, bbox_inches="tight")
    _pyplot().close(figure)
    return target


def data_uri_markdown(path: Path, alt: str) -> str:
    """Markdown that shows the PNG inline (Dagster renders it on the asset page)."""
    encoded = base64.b64encode(Path(path).read_bytes()).decode()
    return f"![{alt}](data:image/png;base64,{encoded})"


def psi_chart(psi_by_feature: dict[str, float], threshold: float, target: Path, title: str) -> Path:
    """Horizontal bars of PSI per feature with the drift threshold marked."""
    plt = _pyplot()
    names = list(psi_by_feature)
    values = [min(psi_by_feature[n], 10.0) for n in names]
    figure, axis = plt.subplots(figsize=(6, 0.3 * len(names) + 1.2))
    colors = ["#c0392b" if v > threshold else "#2e86c1" for v in values]
    axis.barh(names, values, color=colors)
    axis.axvline(threshold, color="black", linestyle="--", linewidth=1, label=f"threshold {threshold}")
    axis.set_xlabel("PSI (population stability index)")
    axis.set_title(title, fontsize=10)
    axis.invert_yaxis()
    axis.legend(loc="lower right", fontsize=8)
    return save_figure(figure, target)
