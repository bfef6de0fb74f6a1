"""Turn a pipelines StepResult into Dagster MaterializeResult metadata."""
from __future__ import annotations

import json

from dagster import DataVersion, MaterializeResult, MetadataValue

from pipelines.core.plots import data_uri_markdown
from pipelines.core.safe_text import safe_markdown
from pipelines.core.step import StepResult


def _value(key: str, value):
    if key == "path" or key == "release":
        return MetadataValue.path(str(value))
    if isinstance(value, bool) or value is None:
        return MetadataValue.text(str(value))
    if isinstance(value, int):
        return MetadataValue.int(value)
    if isinstance(value, float):
        return MetadataValue.float(value)
    if isinstance(value, (dict, list)):
        return MetadataValue.json(json.loads(json.dumps(value, default=str)))
    if isinstance(value, str) and value.startswith(("http://", "https://")):
        return MetadataValue.url(value)  # e.g. the MLflow run: a link on the asset page
    return MetadataValue.text(str(value))


def markdown(text: str) -> MetadataValue:
    """Markdown metadata the UI renders: never a raw HTML tag or a script link, whatever the data held."""
    return MetadataValue.md(safe_markdown(text))


def to_result(step: StepResult, check_results=None) -> MaterializeResult:
    """Summary facts as typed metadata, tables as Markdown, plots as inline PNG images, the output md5 as
    data version. (The UI shows Markdown over 1,000 characters behind "[Show Markdown]", in a dialog.)"""
    metadata = {key: _value(key, value) for key, value in step.summary.items()}
    metadata |= {title: markdown(table) for title, table in step.tables.items()}
    metadata |= {title: markdown(data_uri_markdown(png, title)) for title, png in step.plots.items()
                 if png.is_file()}
    version = DataVersion(step.data_version) if step.data_version else None
    return MaterializeResult(metadata=metadata, data_version=version, check_results=check_results)
