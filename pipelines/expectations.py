"""Great Expectations suite: built from params and a trusted data profile, stored as a reviewed file."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from pipelines.config import DataConfig, ValidateConfig
from pipelines.data import ORIGIN
from pipelines.errors import PipelineError
from pipelines.safe_text import csv_cell

NUMERIC_TYPES = ["float64", "float32", "int64", "int32", "Float64", "Int64"]
TEXT_TYPES = ["str", "string", "object", "StringDtype"]
SCHEMA = "mobile-mlops/expectations/v1"


def _expect(kind: str, **kwargs: Any) -> dict[str, Any]:
    return {"type": kind, "kwargs": kwargs}


def _column_expectations(name: str, values: pd.Series, data: DataConfig, rules: ValidateConfig) -> list[dict]:
    found = [_expect("expect_column_to_exist", column=name)]
    null_share = float(values.isna().mean())
    found.append(_expect("expect_column_values_to_not_be_null", column=name,
                         mostly=round(max(0.0, 1 - null_share - rules.null_margin), 6)))
    if name == data.label:
        classes = sorted(values.dropna().unique().tolist())
        found.append(_expect("expect_column_values_to_be_in_set", column=name, value_set=classes))
        found.append(_expect("expect_column_unique_value_count_to_be_between", column=name, min_value=2, max_value=2))
    elif pd.api.types.is_numeric_dtype(values):
        found.append(_expect("expect_column_values_to_be_in_type_list", column=name, type_list=NUMERIC_TYPES))
        low, high = float(values.min()), float(values.max())
        pad = rules.range_margin * (high - low)
        floor = low - pad if low < 0 else max(0.0, low - pad)
        found.append(_expect("expect_column_values_to_be_between", column=name,
                             min_value=round(floor, 6), max_value=round(high + pad, 6)))
    else:
        found.append(_expect("expect_column_values_to_be_in_type_list", column=name, type_list=TEXT_TYPES))
        categories = sorted(values.dropna().astype(str).unique().tolist())
        if len(categories) <= rules.max_categories:
            found.append(_expect("expect_column_values_to_be_in_set", column=name, value_set=categories,
                                 mostly=rules.category_mostly))
    return found


def build_suite(frame: pd.DataFrame, data: DataConfig, rules: ValidateConfig, data_version: str) -> dict[str, Any]:
    """Expectations from the trusted frame's profile, widened by the margins in params."""
    frame = frame.drop(columns=[ORIGIN], errors="ignore")
    expectations = [_expect("expect_table_row_count_to_be_between", min_value=rules.min_rows)]
    for name in frame.columns:
        expectations += _column_expectations(name, frame[name], data, rules)
    duplicates = float(frame.duplicated(keep=False).mean())
    expectations.append(_expect("expect_compound_columns_to_be_unique", column_list=list(frame.columns),
                                mostly=round(max(0.0, 1 - duplicates - rules.duplicate_margin), 6)))
    return {"schema": SCHEMA, "built_from_data_version": data_version, "expectations": expectations}


def save_suite(path: Path, suite: dict[str, Any]) -> None:
    from pipelines.io import write_json

    write_json(path, suite)


def load_suite(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise PipelineError(f"validate.suite: {path} not found (create it: mobile-mlops expectations build)")
    try:
        suite = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise PipelineError(f"validate.suite: {path} is not valid JSON (line {exc.lineno})") from exc
    if suite.get("schema") != SCHEMA:
        raise PipelineError(f"validate.suite: {path} is not a {SCHEMA} file")
    return suite


def _failure(result) -> dict[str, Any]:
    config, outcome = result.expectation_config, result.result or {}
    examples = outcome.get("partial_unexpected_list") or []
    if examples and isinstance(examples[0], dict):  # compound-column checks return whole rows
        examples = [", ".join(f"{k}={v}" for k, v in row.items()) for row in examples]
    return {
        "expectation": config.type,
        "column": config.kwargs.get("column"),
        "observed": outcome.get("observed_value"),
        "unexpected_count": outcome.get("unexpected_count"),
        "unexpected_percent": outcome.get("unexpected_percent"),
        "examples": [csv_cell(e) for e in examples[:5]],
        "error": (result.exception_info or {}).get("exception_message") if not outcome else None,
    }


def run_suite(frame: pd.DataFrame, suite: dict[str, Any]) -> dict[str, Any]:
    """Validate the frame with Great Expectations; return the verdict and every failed expectation."""
    import great_expectations as gx
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch = (context.data_sources.add_pandas("frame").add_dataframe_asset("data")
             .add_batch_definition_whole_dataframe("all").get_batch(batch_parameters={"dataframe": frame}))
    present = set(frame.columns)
    gx_suite = gx.ExpectationSuite(name="mobile-mlops")
    missing = []
    for item in suite["expectations"]:
        column = item["kwargs"].get("column")
        if column is not None and column not in present and item["type"] != "expect_column_to_exist":
            continue  # reported once by expect_column_to_exist
        if item["type"] == "expect_compound_columns_to_be_unique" and not set(item["kwargs"]["column_list"]) <= present:
            missing.append(item)
            continue
        gx_suite.add_expectation(ExpectationConfiguration(type=item["type"], kwargs=item["kwargs"]).to_domain_obj())
    result = batch.validate(context.suites.add(gx_suite), result_format="SUMMARY")
    failures = [_failure(r) for r in result.results if not r.success]
    return {"success": not failures, "evaluated": len(result.results), "failed": failures,
            "skipped": len(missing)}


def describe_failure(outcome: dict[str, Any]) -> str:
    """One line naming the column and the check, with example values."""
    first = outcome["failed"][0]
    where = f"column '{first['column']}'" if first["column"] else "table"
    detail = f"observed {first['observed']!r}" if first["observed"] is not None else ""
    if first["examples"]:
        detail = f"{first['unexpected_count']} rows, e.g. {', '.join(map(repr, first['examples'][:3]))}"
    more = len(outcome["failed"]) - 1
    tail = f"; {more} more failed" if more else ""
    return f"validation failed: {where}: {first['expectation']} ({detail}){tail}"
