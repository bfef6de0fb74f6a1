"""StepResult -> Dagster metadata: links as URLs, paths as paths, tables as Markdown, plots as inline images."""
from __future__ import annotations

from pathlib import Path

from dagster import MarkdownMetadataValue, PathMetadataValue, UrlMetadataValue

from assets.metadata import to_result
from pipelines.core.step import StepResult
from pipelines.data.plots import psi_chart


def test_links_paths_tables_and_plots_become_typed_metadata(tmp_path: Path):
    png = psi_chart({"age": 0.05, "hours": 0.4}, 0.2, tmp_path / "drift.png", "Drift")
    step = StepResult(summary={"mlflow_run": "http://127.0.0.1:5000/#/experiments/1/runs/abc", "path": "/x/y.json",
                               "accuracy": 0.8, "note": "plain text"},
                      tables={"gates": "| gate | verdict |\n|---|---|\n| accuracy | pass |"},
                      plots={"PSI per feature": png, "missing": tmp_path / "absent.png"})
    metadata = to_result(step).metadata
    assert isinstance(metadata["mlflow_run"], UrlMetadataValue)
    assert isinstance(metadata["path"], PathMetadataValue)
    assert isinstance(metadata["gates"], MarkdownMetadataValue)
    image = metadata["PSI per feature"]
    assert isinstance(image, MarkdownMetadataValue) and image.md_str.startswith("![PSI per feature](data:image/png;base64,")
    assert "missing" not in metadata  # a plot the step did not write is left out, not shown broken
    assert metadata["note"].value == "plain text"
