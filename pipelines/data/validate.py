"""Data checks that must hold before anything is trained on the data."""
from __future__ import annotations

from typing import Any

import pandas as pd

from pipelines.core.config import DataConfig, ValidateConfig
from pipelines.core.errors import PipelineError
from pipelines.data.batches import DISTINCT_CAP, merge, partial_profile
from pipelines.data.expectations import describe_failure, run_suite
from pipelines.data.load import positive_mask
from pipelines.data.rowsplit import INTERNAL


class ValidationFailed(PipelineError):
    """The data broke the expectation suite; `outcome` lists every failed expectation."""

    def __init__(self, outcome: dict[str, Any]):
        super().__init__(describe_failure(outcome))
        self.outcome = outcome


def profile(frame: pd.DataFrame, config: DataConfig) -> dict[str, Any]:
    """Column types, null fractions and label balance: the validation report."""
    columns = {
        name: {
            "type": "numeric" if pd.api.types.is_numeric_dtype(values) else "categorical",
            "null_fraction": round(float(values.isna().mean()), 6),
            "distinct": int(values.nunique()),
        }
        for name, values in frame.drop(columns=list(INTERNAL), errors="ignore").items()
    }
    positives = float(positive_mask(frame[config.label], config.positive_label).mean())
    return {"rows": len(frame), "columns": columns, "positive_rate": round(positives, 6)}


def check_invariants(frame: pd.DataFrame, data: DataConfig, rules: ValidateConfig) -> None:
    """Rules that hold for any data set, whatever the suite says."""
    check_invariant_figures(merge([partial_profile(frame, data)]), data, rules)


def check_invariant_figures(merged: dict[str, Any], data: DataConfig, rules: ValidateConfig) -> None:
    """The invariants on the whole data's merged figures (pipelines.data.batches.merge)."""
    if merged["rows"] < rules.min_rows:
        raise PipelineError(f"validate.min_rows: {merged['rows']} rows after cleaning, need at least {rules.min_rows}")
    values = merged["columns"][data.label]["values"]
    labels = DISTINCT_CAP if values is None else len(values)
    if labels != 2:
        raise PipelineError(f"data.label: column '{data.label}' must have exactly 2 classes, has {labels}")
    for column in data.sensitive_features:
        groups = merged["columns"][column]["values"]
        if groups is not None and len(groups) < 2:
            raise PipelineError(f"data.sensitive_features: column '{column}' has a single value; groups cannot be "
                                "compared")


def validate_dataset(
    frame: pd.DataFrame, data: DataConfig, rules: ValidateConfig, suite: dict[str, Any] | None = None
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Run the suite on the raw rows, then drop incomplete rows and check the invariants.

    Returns the clean frame and the report; raises ValidationFailed / PipelineError naming the problem.
    """
    for name, share in frame.isna().mean().items():
        if share > rules.max_missing_fraction:
            raise PipelineError(f"validate.max_missing_fraction: column '{name}' is {share:.0%} empty")
    outcome = run_suite(frame, suite) if suite is not None else {"success": True, "evaluated": 0, "failed": []}
    if not outcome["success"]:
        raise ValidationFailed(outcome)
    # dropna copies every column even when no row goes: at 10M rows that is gigabytes for nothing
    clean = frame.dropna() if data.drop_missing_rows and frame.isna().any(axis=None) else frame
    check_invariants(clean, data, rules)
    report = profile(clean, data) | {"raw_rows": len(frame), "expectations": outcome}
    return clean.reset_index(drop=True), report
