"""Small, readable charts (PNG) for reports, Dagster metadata and DVC plots."""
from __future__ import annotations

import base64
from pathlib import Path

from pipelines.core.io import atomic_path, write_csv


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
    """Markdown with the PNG as a data URI. The Dagster UI renders it (its Markdown sanitizer allows
    data: images); Markdown over 1,000 characters sits behind a "[Show Markdown]" link on the asset
    page and opens in a dialog, so every chart is one click away. An http image URL would need a
    server the UI can reach; a data URI works offline and travels with the event log."""
    encoded = base64.b64encode(Path(path).read_bytes()).decode()
    return f"![{alt}](data:image/png;base64,{encoded})"


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


def confusion_matrix_chart(y_true, proba, threshold: float, labels: tuple[str, str], target: Path,
                           title: str = "Confusion matrix (test split)") -> Path:
    """2x2 counts with row shares: rows are the true class, columns the predicted one."""
    import numpy as np

    plt = _pyplot()
    actual = np.asarray(y_true).astype(int)
    predicted = (np.asarray(proba) >= threshold).astype(int)
    counts = np.array([[np.sum((actual == a) & (predicted == p)) for p in (0, 1)] for a in (0, 1)])
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    figure, axis = plt.subplots(figsize=(3.8, 3.2))
    axis.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for a in (0, 1):
        for p in (0, 1):
            axis.text(p, a, f"{counts[a, p]}\n{shares[a, p]:.1%}", ha="center", va="center",
                      color="white" if shares[a, p] > 0.5 else "black", fontsize=10)
    axis.set_xticks([0, 1], [f"pred {labels[0]}", f"pred {labels[1]}"], fontsize=8)
    axis.set_yticks([0, 1], [f"true {labels[0]}", f"true {labels[1]}"], fontsize=8)
    axis.set_title(f"{title}, threshold {threshold:g}", fontsize=9)
    return save_figure(figure, target)


def training_curve_chart(history: dict[str, list[float]], target: Path, title: str = "Training history") -> Path:
    """Loss (left) and every other metric (right) per epoch, training solid and validation dashed."""
    from matplotlib.ticker import MaxNLocator

    plt = _pyplot()
    figure, (loss_axis, metric_axis) = plt.subplots(1, 2, figsize=(7.5, 2.8))
    bases = list(dict.fromkeys(name.removeprefix("val_") for name in history))
    for name, values in history.items():
        base = name.removeprefix("val_")
        axis = loss_axis if base == "loss" else metric_axis
        axis.plot(range(1, len(values) + 1), values, linestyle="--" if name.startswith("val_") else "-",
                  marker=".", color=f"C{bases.index(base)}", label=name)
    loss_axis.set_title("loss (dashed: validation)", fontsize=9)
    metric_axis.set_title("metrics (dashed: validation)", fontsize=9)
    for axis in (loss_axis, metric_axis):
        axis.set_xlabel("epoch")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        if axis.lines:
            axis.legend(fontsize=7)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    return save_figure(figure, target)


def history_rows(history: dict[str, list[float]]) -> list[dict[str, float]]:
    """One row per epoch (the DVC plots CSV)."""
    epochs = max((len(v) for v in history.values()), default=0)
    return [{"epoch": i + 1, **{k: round(float(v[i]), 6) for k, v in history.items() if i < len(v)}}
            for i in range(epochs)]


def write_csv_rows(rows: list[dict], target: Path) -> Path:
    """Rows as CSV, atomically (a DVC plots series); text cells never start a spreadsheet formula."""
    write_csv(target, rows)
    return target


def training_plots(root: Path, history: dict[str, list[float]]) -> dict[str, Path]:
    """The training history as a DVC plots CSV and a PNG chart; title -> file."""
    from pipelines.core.paths import ArtifactPaths

    paths = ArtifactPaths(root)
    write_csv_rows(history_rows(history), paths.training_history)
    return {"training curve": training_curve_chart(history, paths.training_plot)}
