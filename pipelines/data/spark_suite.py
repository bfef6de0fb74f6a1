"""The expectation suite on Spark (`engine: spark`): Great Expectations 1.x evaluates it through its Spark datasource
on the Spark DataFrame of the typed raw data, and the outcome is reported as the local engine reports it
(pipelines.data.batch_suite): the same verdicts, the same failure records, the same message.

Where GX's Spark engine cannot judge as GX on pandas does, the local engine's exact rule is kept:
- expect_column_values_to_be_in_type_list names pandas dtypes, which GX's Spark engine does not know ("No
  recognized spark types"): GX on pandas judges it on the raw file's zero-row frame (every batch has its dtypes, and
  a type list looks at nothing else), or per batch where a column reads as `object` (GX then checks each value);
- expect_column_values_to_be_in_set / _to_be_between on a column whose type list fails: Spark casts text values to
  a numeric column's type (and back), pandas compares them as they are; judged per batch, as the local engine does;
- a failed expectation's record (counts, percentages, example values): example values and percentages of the
  local engine come from its batches, so the failed expectations are run per batch by executors and merged
  (batch_suite.merge_validations) with GX on Spark's whole-data row count, distinct count and duplicate rows.
Every verdict of the other expectations, and so the gate, is GX on Spark's.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pandas as pd

from pipelines.data.batch_suite import merge_validations
from pipelines.data.batches import DISTINCT_CAP
from pipelines.data.expectations import _failure, _forget, _gx_suite, _key, batch_records, summarize

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

TYPE_LIST = "expect_column_values_to_be_in_type_list"
CASTING = {"expect_column_values_to_be_in_set", "expect_column_values_to_be_between"}  # Spark casts across types
PerBatch = Callable[[list[dict[str, Any]]], list[dict[str, Any]]]  # items -> batch_records of each batch, in order


@functools.lru_cache(maxsize=1)
def _spark_batches(session: SparkSession):
    """One ephemeral GX context per Spark session, with a Spark datasource (it finds the session already built: GX
    is given no spark_config, so it changes nothing) and its whole-dataframe batch definition."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return (context.data_sources.add_spark("spark").add_dataframe_asset("data")
            .add_batch_definition_whole_dataframe("all"))


def validate_spark(frame: DataFrame, items: list[dict[str, Any]], result_format: str) -> tuple[list, int]:
    """GX's results of the items on the Spark DataFrame (one validation; GX persists the frame for it, and it is
    let go after), and how many were skipped for missing columns."""
    gx_suite, missing = _gx_suite({"expectations": items}, set(frame.columns))
    if not gx_suite.expectations:
        return [], len(missing)
    batch = _spark_batches(frame.sparkSession).get_batch(batch_parameters={"dataframe": frame})
    try:
        return batch.validate(gx_suite, result_format=result_format).results, len(missing)
    finally:
        _forget(batch)
        frame.unpersist()


def _item(config) -> dict[str, Any]:
    """An expectation of GX's results as a suite item."""
    return {"type": config.type, "kwargs": dict(config.kwargs)}


def _routes(suite: dict[str, Any], typed: pd.DataFrame) -> tuple[list, list, list]:
    """The suite split three ways (see the module's docstring for why): the items GX on Spark judges, the records
    of the type lists judged on the zero-row frame, the items judged per batch."""
    per_value = {name for name, dtype in typed.dtypes.items() if dtype.type.__name__ == "object_"}  # as GX tells
    kinds = [(i, i["type"], i["kwargs"].get("column")) for i in suite["expectations"]]
    types = batch_records(typed, {"expectations": [i for i, kind, column in kinds
                                                   if kind == TYPE_LIST and column not in per_value]})["records"]
    wrong = {r["kwargs"]["column"] for r in types if not r["success"]} | per_value
    local = [i for i, kind, column in kinds if (kind == TYPE_LIST and column in per_value)
             or (kind in CASTING and column in wrong)]
    spark = [i for i, kind, _ in kinds if kind != TYPE_LIST and not any(i is j for j in local)]
    return spark, types, local


def judge(frame: DataFrame, suite: dict[str, Any], rows: int, batches: int, typed: pd.DataFrame,
          per_batch: PerBatch) -> dict[str, Any]:
    """The suite's outcome on the raw data (expectations.summarize's shape): GX on Spark's verdicts, and the
    local engine's record of each failure. `typed` is the raw file's zero-row pandas frame, `batches` the number
    of batches the local engine validates, `per_batch` runs items on each of them."""
    spark, types, local = _routes(suite, typed)
    verdicts, skipped = validate_spark(frame, spark, "BOOLEAN_ONLY")
    records = [_item(r.expectation_config) | {"success": bool(r.success), "failure": None} for r in verdicts] + types
    failed = [_item_of(r) for r in records if not r["success"]]
    if failed or local:
        figures, _ = validate_spark(frame, [i for i in failed if i["type"] != TYPE_LIST], "BASIC")
        own = {_key(r.expectation_config.type, r.expectation_config.kwargs): _failure(r) for r in figures}
        merged = {_key(r["type"], r["kwargs"]): r for r in _merged(per_batch(failed + local), rows, figures)}
        for record in records:
            key = _key(record["type"], record["kwargs"])
            if not record["success"] and merged.get(key, {}).get("failure"):
                record["failure"] = merged[key]["failure"]
            elif not record["success"]:  # the batches' merge judged otherwise (a float at a `mostly` boundary)
                record["failure"] = own.get(key, record["failure"])
        records += [merged[key] for key in (_key(i["type"], i["kwargs"]) for i in local) if key in merged]
    if batches > 1:
        records = _one_per_key(records)
    return summarize({"records": records, "skipped": skipped}, suite)


def _item_of(record: dict[str, Any]) -> dict[str, Any]:
    return {"type": record["type"], "kwargs": record["kwargs"]}


def _one_per_key(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One record per expectation kind and column, as batch_suite.merge_validations groups them (it matters only to
    a suite with two expectations of one kind on one column): the first, failed if any of them failed."""
    kept: dict[tuple, dict[str, Any]] = {}
    for record in records:
        first = kept.setdefault(_key(record["type"], record["kwargs"]), record)
        if first["success"] and not record["success"]:
            kept[_key(record["type"], record["kwargs"])] = first | {"success": False, "failure": record["failure"]}
    return list(kept.values())


def _merged(validations: list[dict[str, Any]], rows: int, figures: list) -> list[dict[str, Any]]:
    """The batches' records merged as the local engine merges them, with GX on Spark's whole-data figures: distinct
    values (None past batches.DISTINCT_CAP, as the local merge keeps no more) and duplicated rows."""
    distinct, duplicates = {}, 0
    for result in figures:
        kind, kwargs, outcome = result.expectation_config.type, result.expectation_config.kwargs, result.result or {}
        if kind == "expect_column_unique_value_count_to_be_between" and outcome.get("observed_value") is not None:
            count = int(outcome["observed_value"])
            distinct[kwargs["column"]] = count if count <= DISTINCT_CAP else None
        elif kind == "expect_compound_columns_to_be_unique":
            duplicates = int(outcome.get("unexpected_count") or 0)
    return merge_validations(validations, rows, distinct, duplicates)["records"] if validations else []
