"""The data steps over bounded batches: the source is read batch by batch, each batch is typed and cleaned by the
same functions a whole frame goes through, and whole-data figures are per-batch partials combined by one `merge`,
exact (no sampling). The Spark engine calls the same per-batch functions (mapInPandas) and the same merge.

A partial is plain JSON (numbers, text, lists), so a distributed engine can ship it back to the driver.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from pipelines.core.config import DataConfig
from pipelines.core.errors import PipelineError
from pipelines.data.load import (
    check_labels,
    column_types,
    label_rows,
    numbered,
    positive_mask,
    read_table_batches,
    sniffed_format,
    type_columns,
)
from pipelines.data.partitions import accepted_files
from pipelines.data.rowsplit import INTERNAL

DISTINCT_CAP = 10_000  # distinct values kept per column; beyond it a column's distinct count is reported as capped


def _parquet_schema_difference(path: Path, first: Path) -> str | None:
    """The first column whose name or type differs between two Parquet files, as a phrase; None when they agree."""
    import pyarrow.parquet as pq

    try:
        mine, theirs = pq.read_schema(path), pq.read_schema(first)
    except Exception as exc:  # pyarrow raises several types for a malformed footer
        raise PipelineError(f"data.source: {path.name} is not a readable Parquet file ({str(exc)[:200]})") from exc
    for field in theirs:
        if field.name not in mine.names:
            return f"has no column '{field.name}'"
        other = mine.field(field.name).type
        if other != field.type:
            return f"column '{field.name}' is {other}, not {field.type}"
    extra = [name for name in mine.names if name not in theirs.names]
    return f"has column '{extra[0]}', which {first.name} lacks" if extra else None


def source_files(source: Path) -> list[Path]:
    """The files a source names: the file itself, or a folder's accepted daily files, oldest first."""
    return accepted_files(source) if source.is_dir() else [source]


def read_batches(data: DataConfig, source: Path, test_source: Path | None, batch_rows: int | None,
                 key: str = "source") -> Iterator[pd.DataFrame]:
    """Text batches of at most `batch_rows` rows: the source's files, then the shipped test file; each row carries
    its origin and its 0-based row number in its file (the split's row key). A file whose columns differ from the
    first's is one line naming the file and the column."""
    files = source_files(source)
    columns: list[str] | None = None
    for origin, paths, where in (("source", files, key), ("test_source", [test_source] if test_source else [],
                                                          "test_source")):
        row = 0
        for path in paths:
            later = origin == "source" and path != files[0]  # the files of a folder, each checked against the first
            if later and sniffed_format(path) == sniffed_format(files[0]) == ".parquet":
                differs = _parquet_schema_difference(path, files[0])
                if differs:
                    raise PipelineError(f"data.{key}: {path.name} {differs} (as in {files[0].name}, the first file)")
            for batch in read_table_batches(path, data, where, batch_rows):
                if columns is None:
                    columns = list(batch.columns)
                elif list(batch.columns) != columns:
                    if origin == "test_source":
                        raise PipelineError("data.test_source: columns differ from data.source")
                    odd = next((c for c in [*columns, *batch.columns] if c not in columns or c not in batch.columns),
                               None)
                    what = f"column '{odd}'" if odd else "the column order"
                    raise PipelineError(f"data.{key}: {path.name} differs from {files[0].name} in {what}")
                yield numbered(batch, origin, row)
                row += len(batch)


def type_batch(frame: pd.DataFrame, data: DataConfig, source_name: str, schema: dict[str, str] | None = None,
               max_categories: int | None = None, key: str = "source") -> pd.DataFrame:
    """One text batch cleaned and typed as a whole frame would be: dropped and PII columns removed, labels
    normalized, unlabelled rows removed, columns typed (`schema` from the first batch fixes later batches')."""
    labelled = label_rows(frame, data, source_name, key)
    return type_columns(labelled, data, max_categories, schema).reset_index(drop=True)


def schema_of(typed: pd.DataFrame) -> dict[str, str]:
    """Column -> numeric/text of a typed batch: what every later batch is typed to."""
    return column_types(typed)


def partial_profile(frame: pd.DataFrame, data: DataConfig) -> dict[str, Any]:
    """One typed batch's mergeable figures: rows, positives, label values, and per column its nulls, range and
    distinct values (up to DISTINCT_CAP)."""
    columns = {}
    for name, values in frame.items():
        if name in INTERNAL:
            continue
        present = values.dropna()
        numeric = pd.api.types.is_numeric_dtype(values)
        distinct = present.unique()
        columns[name] = {
            "numeric": numeric, "nulls": int(len(values) - len(present)),
            "min": float(present.min()) if numeric and len(present) else None,
            "max": float(present.max()) if numeric and len(present) else None,
            "values": ([float(v) for v in distinct] if numeric else [str(v) for v in distinct])
            if len(distinct) <= DISTINCT_CAP else None,
        }
    labels = frame[data.label]
    return {"rows": len(frame), "positives": int(positive_mask(labels, data.positive_label).sum()),
            "labels": sorted(str(v) for v in labels.dropna().unique()), "columns": columns}


def fold(total: dict[str, Any], part: dict[str, Any]) -> dict[str, Any]:
    """The running merge: `merge([total, part])`, which is what merging every partial seen so far gives (a merged
    figure is a partial of its own; `merge([])`, no rows, starts it), so batches need not be kept until the end."""
    return merge([total, part])


def merge(partials: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The whole data's figures from per-batch partials, in any order and any batching: the same result."""
    merged: dict[str, Any] = {"rows": 0, "positives": 0, "labels": set(), "columns": {}}
    for part in partials:
        merged["rows"] += part["rows"]
        merged["positives"] += part["positives"]
        merged["labels"] |= set(part["labels"])
        for name, column in part["columns"].items():
            into = merged["columns"].setdefault(name, {"numeric": column["numeric"], "nulls": 0, "min": None,
                                                      "max": None, "values": set()})
            into["numeric"] = into["numeric"] and column["numeric"]
            into["nulls"] += column["nulls"]
            for bound, pick in (("min", min), ("max", max)):
                if column[bound] is not None:
                    into[bound] = column[bound] if into[bound] is None else pick(into[bound], column[bound])
            if into["values"] is not None and column["values"] is not None:
                into["values"] |= set(column["values"])
            if column["values"] is None or (into["values"] is not None and len(into["values"]) > DISTINCT_CAP):
                into["values"] = None
    merged["labels"] = sorted(merged["labels"])
    for column in merged["columns"].values():
        column["values"] = sorted(column["values"]) if column["values"] is not None else None
    return merged


def profile_report(merged: dict[str, Any]) -> dict[str, Any]:
    """Column types, null fractions, distinct counts and label balance: the validation report's figures."""
    rows = merged["rows"]
    columns = {}
    for name, column in merged["columns"].items():
        capped = column["values"] is None
        columns[name] = {"type": "numeric" if column["numeric"] else "categorical",
                         "null_fraction": round(column["nulls"] / rows, 6) if rows else 0.0,
                         "distinct": DISTINCT_CAP if capped else len(column["values"])} | (
                             {"distinct_capped": True} if capped else {})
    return {"rows": rows, "columns": columns, "positive_rate": round(merged["positives"] / rows, 6) if rows else 0.0}


def check_merged_labels(merged: dict[str, Any], data: DataConfig) -> None:
    """The label checks a whole frame gets, on the merged figures (no values, positive label absent, not two)."""
    check_labels(merged["labels"], merged["positives"] > 0, data)
