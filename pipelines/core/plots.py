"""Chart plumbing every domain shares: matplotlib without a display, atomic PNGs, data-URI Markdown, CSV series.

The charts themselves live with their domain (pipelines/data/plots.py, pipelines/training/plots.py, ...)."""
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


def write_csv_rows(rows: list[dict], target: Path) -> Path:
    """Rows as CSV, atomically (a DVC plots series); text cells never start a spreadsheet formula."""
    write_csv(target, rows)
    return target
