"""Data checks that must hold before anything is trained on the data."""
from __future__ import annotations

from typing import Any

import pandas as pd

from pipelines.config import DataConfig, ValidateConfig
from pipelines.errors import PipelineError


def profile(frame: pd.DataFrame, config: DataConfig) -> dict[str, Any]:
    """Column types, null fractions and label balance: the validation report."""
    columns = {
        name: {
            "type": "numeric" if pd.api.types.is_numeric_dtype(values) else "categorical",
            "null_fraction": round(float(values.isna().mean()), 6),
            "distinct": int(values.nunique()),
        }
        for name, values in frame.items()
    }
    positives = float((frame[config.label] == config.positive_label).mean())
    return {"rows": len(frame), "columns": columns, "positive_rate": round(positives, 6)}


def validate_dataset(frame: pd.DataFrame, data: DataConfig, rules: ValidateConfig) -> dict[str, Any]:
    """Raise PipelineError naming the first failed check; return the profile otherwise."""
    if len(frame) < rules.min_rows:
        raise PipelineError(f"validate.min_rows: {len(frame)} rows after cleaning, need at least {rules.min_rows}")
    labels = frame[data.label].nunique()
    if labels != 2:
        raise PipelineError(f"data.label: column '{data.label}' must have exactly 2 classes, has {labels}")
    for column in data.sensitive_features:
        if frame[column].nunique() < 2:
            raise PipelineError(f"data.sensitive_features: column '{column}' has a single value; groups cannot be compared")
    report = profile(frame, data)
    for name, facts in report["columns"].items():
        if facts["null_fraction"] > rules.max_missing_fraction:
            raise PipelineError(
                f"validate.max_missing_fraction: column '{name}' is {facts['null_fraction']:.0%} empty"
            )
    return report
