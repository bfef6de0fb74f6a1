"""The training domain's charts: the confusion matrix and the training history (PNG and DVC plots CSV)."""
from __future__ import annotations

from pathlib import Path

from pipelines.core.paths import ArtifactPaths
from pipelines.core.plots import _pyplot, save_figure, write_csv_rows


def confusion_matrix_chart(confusion, threshold: float, labels: tuple[str, str], target: Path,
                           title: str = "Confusion matrix (test split)") -> Path:
    """2x2 counts with row shares: rows are the true class, columns the predicted one. `confusion`: the counts
    [TN, FP, FN, TP] at `threshold`."""
    import numpy as np

    plt = _pyplot()
    counts = np.asarray(confusion, np.int64).reshape(2, 2)
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


def training_plots(root: Path, history: dict[str, list[float]]) -> dict[str, Path]:
    """The training history as a DVC plots CSV and a PNG chart; title -> file."""
    paths = ArtifactPaths(root)
    write_csv_rows(history_rows(history), paths.training_history)
    return {"training curve": training_curve_chart(history, paths.training_plot)}
