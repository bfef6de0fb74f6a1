"""Great Expectations suite: built from params and a trusted data profile, stored as a reviewed file."""
from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import pandas as pd

from pipelines.core.config import DataConfig, ValidateConfig
from pipelines.core.errors import PipelineError
from pipelines.core.safe_text import csv_cell
from pipelines.data.batches import merge, partial_profile
from pipelines.data.rowsplit import INTERNAL

NUMERIC_TYPES = ["float64", "float32", "int64", "int32", "Float64", "Int64"]
TEXT_TYPES = ["str", "string", "object", "StringDtype"]
SCHEMA = "mobile-mlops/expectations/v1"


def _expect(kind: str, **kwargs: Any) -> dict[str, Any]:
    return {"type": kind, "kwargs": kwargs}


def _column_expectations(name: str, column: dict[str, Any], rows: int, data: DataConfig,
                         rules: ValidateConfig) -> list[dict]:
    found = [_expect("expect_column_to_exist", column=name)]
    null_share = column["nulls"] / rows if rows else 0.0
    found.append(_expect("expect_column_values_to_not_be_null", column=name,
                         mostly=round(max(0.0, 1 - null_share - rules.null_margin), 6)))
    if name == data.label:
        found.append(_expect("expect_column_values_to_be_in_set", column=name, value_set=sorted(column["values"])))
        found.append(_expect("expect_column_unique_value_count_to_be_between", column=name, min_value=2, max_value=2))
    elif column["numeric"]:
        found.append(_expect("expect_column_values_to_be_in_type_list", column=name, type_list=NUMERIC_TYPES))
        low, high = column["min"], column["max"]
        if low is None:  # no value at all: the range is empty
            low = high = float("nan")
        pad = rules.range_margin * (high - low)
        floor = low - pad if low < 0 else max(0.0, low - pad)
        found.append(_expect("expect_column_values_to_be_between", column=name,
                             min_value=round(floor, 6), max_value=round(high + pad, 6)))
    else:
        found.append(_expect("expect_column_values_to_be_in_type_list", column=name, type_list=TEXT_TYPES))
        categories = column["values"]
        if categories is not None and len(categories) <= rules.max_categories:
            found.append(_expect("expect_column_values_to_be_in_set", column=name, value_set=sorted(categories),
                                 mostly=rules.category_mostly))
    return found


def build_suite(frame: pd.DataFrame, data: DataConfig, rules: ValidateConfig, data_version: str) -> dict[str, Any]:
    """Expectations from the trusted frame's profile, widened by the margins in params."""
    frame = frame.drop(columns=list(INTERNAL), errors="ignore")
    duplicates = float(frame.duplicated(keep=False).mean())
    return suite_from_figures(merge([partial_profile(frame, data)]), list(frame.columns), duplicates, data, rules,
                              data_version)


def suite_from_figures(merged: dict[str, Any], columns: list[str], duplicates: float, data: DataConfig,
                       rules: ValidateConfig, data_version: str) -> dict[str, Any]:
    """Expectations from the whole data's merged figures (pipelines.data.batches) and its share of duplicated
    rows, widened by the margins in params: the same suite whether the data came in one batch or many."""
    expectations = [_expect("expect_table_row_count_to_be_between", min_value=rules.min_rows)]
    for name in columns:
        expectations += _column_expectations(name, merged["columns"][name], merged["rows"], data, rules)
    expectations.append(_expect("expect_compound_columns_to_be_unique", column_list=columns,
                                mostly=round(max(0.0, 1 - duplicates - rules.duplicate_margin), 6)))
    return {"schema": SCHEMA, "built_from_data_version": data_version, "expectations": expectations}


def save_suite(path: Path, suite: dict[str, Any]) -> None:
    from pipelines.core.io import write_json

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


def _exception_message(info: dict | None) -> str | None:
    """GX nests metric errors by metric id; the first message is enough."""
    info = info or {}
    if info.get("exception_message"):
        return str(info["exception_message"]).splitlines()[0]
    nested = [v for v in info.values() if isinstance(v, dict) and v.get("exception_message")]
    return str(nested[0]["exception_message"]).splitlines()[0] if nested else None


def _distinct(values: list) -> list:
    return list(dict.fromkeys(map(str, values)))


def _failure(result) -> dict[str, Any]:
    config, outcome = result.expectation_config, result.result or {}
    examples = outcome.get("partial_unexpected_list") or []
    if examples and isinstance(examples[0], dict):  # compound-column checks return whole rows
        examples = [", ".join(f"{k}={v}" for k, v in row.items()) for row in examples]
    mostly = config.kwargs.get("mostly")
    return {
        "expectation": config.type,
        "column": config.kwargs.get("column"),
        "columns": config.kwargs.get("column_list"),
        "observed": outcome.get("observed_value"),
        "rows": outcome.get("element_count"),
        "unexpected_count": outcome.get("unexpected_count"),
        "unexpected_percent": outcome.get("unexpected_percent"),
        "allowed_percent": round((1 - mostly) * 100, 4) if mostly is not None and mostly < 1 else None,
        "expected": _expected(config.type, config.kwargs),
        "examples": [csv_cell(e) for e in _distinct(examples)[:5]],  # untrusted text: never a live formula
        "error": _exception_message(result.exception_info),
    }


def _expected(kind: str, kwargs: dict[str, Any]) -> str | None:
    if kind == "expect_column_values_to_be_between":
        return f"allowed {kwargs.get('min_value')} to {kwargs.get('max_value')}"
    if kind == "expect_column_unique_value_count_to_be_between":
        low, high = kwargs.get("min_value"), kwargs.get("max_value")
        return f"expected {low}" if low == high else f"expected {low} to {high}"
    if kind == "expect_column_values_to_be_in_type_list":
        return "expected numbers" if kwargs.get("type_list") == NUMERIC_TYPES else "expected text"
    if kind == "expect_table_row_count_to_be_between":
        return f"expected at least {kwargs.get('min_value')}"
    return None


def _not_numbers(failure: dict[str, Any], frame: pd.DataFrame) -> dict[str, Any]:
    """A numeric column that arrived as text: count and show the values that are not numbers."""
    values = frame[failure["column"]]
    bad = values.notna() & pd.to_numeric(values, errors="coerce").isna()
    examples = _distinct(values[bad].head(50).tolist())[:5]
    return failure | {"rows": len(values), "unexpected_count": int(bad.sum()),
                      "unexpected_percent": round(100 * float(bad.mean()), 4),
                      "examples": [csv_cell(e) for e in examples]}


_NOT_IDENTITY = {"id", "rendered_content", "notes", "meta"}  # what GX ignores when a suite drops a repeated expectation


@functools.cache
def _whole_frame_batches():
    """One ephemeral GX context per process and its whole-dataframe batch definition, reused by every validation
    (a Dagster run or a test validates many frames in one process)."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return (context.data_sources.add_pandas("frame").add_dataframe_asset("data")
            .add_batch_definition_whole_dataframe("all"))


def _gx_suite(suite: dict[str, Any], present: set[str]):
    """The GX suite of the expectations whose columns exist, built in one go, and those skipped for missing columns.

    A repeated expectation counts once, as ExpectationSuite.add_expectation would have it, compared once per
    expectation instead of against every earlier one (add_expectation's pairwise check is quadratic). The suite
    is validated without being saved to the context: a store round trip adds nothing to the results.
    """
    import great_expectations as gx
    from great_expectations.expectations.expectation_configuration import (
        ExpectationConfiguration,
    )

    kept, seen, missing = [], [], []
    for item in suite["expectations"]:
        column = item["kwargs"].get("column")
        if column is not None and column not in present and item["type"] != "expect_column_to_exist":
            continue  # reported once by expect_column_to_exist
        if item["type"] == "expect_compound_columns_to_be_unique" and not set(item["kwargs"]["column_list"]) <= present:
            missing.append(item)
            continue
        expectation = ExpectationConfiguration(type=item["type"], kwargs=item["kwargs"]).to_domain_obj()
        identity = (expectation.expectation_type, expectation.dict(exclude=_NOT_IDENTITY))
        if identity not in seen:
            seen.append(identity)
            kept.append(expectation)
    return gx.ExpectationSuite(name="mobile-mlops", expectations=kept), missing


def run_suite(frame: pd.DataFrame, suite: dict[str, Any]) -> dict[str, Any]:
    """Validate the frame with Great Expectations; return the verdict and every failed expectation."""
    return summarize(batch_records(frame, suite), suite)


def batch_records(frame: pd.DataFrame, suite: dict[str, Any]) -> dict[str, Any]:
    """One validation of the frame (one batch): per expectation its verdict, counts and, when it failed, the
    failure as reported; plus how many expectations were skipped for missing columns."""
    batch = _whole_frame_batches().get_batch(batch_parameters={"dataframe": frame})
    present = set(frame.columns)
    gx_suite, missing = _gx_suite(suite, present)
    try:
        result = batch.validate(gx_suite, result_format="SUMMARY")  # the whole suite in one validation
    finally:
        _forget(batch)
    records = []
    for r in result.results:
        config, counts = r.expectation_config, r.result or {}
        failure = None if r.success else _failure(r)
        if (failure and failure["expectation"] == "expect_column_values_to_be_in_type_list"
                and failure["column"] in present and not pd.api.types.is_numeric_dtype(frame[failure["column"]])):
            failure = _not_numbers(failure, frame)  # only a numeric column read as text fails its type list this way
        records.append({"type": config.type, "kwargs": dict(config.kwargs), "success": bool(r.success),
                        "element_count": counts.get("element_count"), "missing_count": counts.get("missing_count"),
                        "unexpected_count": counts.get("unexpected_count"), "failure": failure})
    return {"records": records, "skipped": len(missing)}


def summarize(validation: dict[str, Any], suite: dict[str, Any]) -> dict[str, Any]:
    """The verdict and the failed expectations in suite order (GX reorders)."""
    order = {_key(item["type"], item["kwargs"]): i for i, item in enumerate(suite["expectations"])}
    failed = sorted((r for r in validation["records"] if not r["success"]),
                    key=lambda r: order.get(_key(r["type"], r["kwargs"]), len(order)))
    failures = [r["failure"] for r in failed]
    return {"success": not failures, "evaluated": len(validation["records"]), "failed": failures,
            "skipped": validation["skipped"]}


def _forget(batch) -> None:
    """Drop what the reused context's engine keeps after a validation: the frame itself and every computed metric
    (per-row condition series among them). GX clears neither, so at 10M rows they held gigabytes for the rest of
    the run. Private attributes of GX 1.x: if they move, forgetting is skipped, never the validation."""
    engine = getattr(batch.data, "execution_engine", None)
    manager = getattr(engine, "batch_manager", None)
    cache = getattr(manager, "_batch_data_cache", None)
    if isinstance(cache, dict):
        cache.clear()
        manager.reset_batch_cache()  # type: ignore[union-attr]  # a dict cache has its manager
    metrics = getattr(engine, "_metric_cache", None)
    if isinstance(metrics, dict):
        metrics.clear()


def _key(kind: str, kwargs: dict[str, Any]) -> tuple:
    return kind, kwargs.get("column"), tuple(kwargs.get("column_list") or ())


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def describe_failure(outcome: dict[str, Any]) -> str:
    """One line naming the column and the check, with counts, the allowed share and example values."""
    first = outcome["failed"][0]
    columns = first.get("columns")
    if first["column"]:
        where = f"column '{first['column']}'"
    elif columns:
        where = f"columns {columns[0]} ... {columns[-1]} ({len(columns)})" if len(columns) > 3 else \
            f"columns {', '.join(columns)}"
    else:
        where = "table"
    parts = []
    if first["unexpected_count"] is not None:
        count = f"{first['unexpected_count']} of {first['rows']} rows" if first.get("rows") else \
            f"{first['unexpected_count']} rows"
        if first.get("allowed_percent") is not None and first["unexpected_percent"] is not None:
            count += f" = {first['unexpected_percent']:.1f}%, allowed {first['allowed_percent']:.1f}%"
        parts.append(count)
    if first["examples"]:
        shown = first["examples"][:1 if columns else 3]  # a compound example is a whole row
        parts.append("e.g. " + ", ".join(repr(_short(e)) for e in shown))
    elif first["observed"] is not None:
        parts.append(f"observed {first['observed']!r}")
    if first.get("expected"):
        parts.append(first["expected"])
    if first.get("error"):
        parts.append(f"error: {_short(first['error'], 100)}")
    more = len(outcome["failed"]) - 1
    tail = f"; {more} more failed" if more else ""
    detail = f" ({'; '.join(parts)})" if parts else ""
    return f"validation failed: {where}: {first['expectation']}{detail}{tail}"
