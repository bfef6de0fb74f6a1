"""Turn a pipelines StepResult into Dagster MaterializeResult metadata."""
from __future__ import annotations

import json

from dagster import DataVersion, MaterializeResult, MetadataValue

from pipelines.steps import StepResult


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
    return MetadataValue.text(str(value))


def to_result(step: StepResult, check_results=None) -> MaterializeResult:
    """Summary facts as typed metadata, tables as Markdown, the output md5 as data version."""
    metadata = {key: _value(key, value) for key, value in step.summary.items()}
    metadata |= {title: MetadataValue.md(table) for title, table in step.tables.items()}
    version = DataVersion(step.data_version) if step.data_version else None
    return MaterializeResult(metadata=metadata, data_version=version, check_results=check_results)
