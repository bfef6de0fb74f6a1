"""The data steps' work in bounded memory: Parquet written and read batch by batch (one row group per batch),
whole-data figures merged from per-batch partials (pipelines.data.batches). Small data is one batch, so it takes
the same path and gets the same results."""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.core.config import DataConfig, SplitConfig, ValidateConfig
from pipelines.core.errors import PipelineError
from pipelines.core.io import atomic_path
from pipelines.data.batch_suite import DuplicateCounter, merge_validations, row_hashes
from pipelines.data.batches import (
    check_merged_labels,
    fold,
    merge,
    partial_profile,
    profile_report,
    read_batches,
    schema_of,
    type_batch,
)
from pipelines.data.drift import numeric_profile, profile_frame
from pipelines.data.expectations import batch_records, suite_from_figures, summarize
from pipelines.data.load import positive_mask
from pipelines.data.rowsplit import INTERNAL, SPLITS, split_codes
from pipelines.data.validate import ValidationFailed, check_invariant_figures


class ParquetSink:
    """Frames appended as row groups of one Parquet file; every frame has the first one's Arrow schema."""

    def __init__(self, path: Path):
        self.path, self.rows = path, 0
        self.writer: pq.ParquetWriter | None = None
        self.schema: pa.Schema | None = None

    def write(self, frame: pd.DataFrame) -> None:
        table = pa.Table.from_pandas(frame, schema=self.schema, preserve_index=False)
        if self.writer is None:
            self.schema = table.schema
            self.writer = pq.ParquetWriter(self.path, self.schema)
        self.writer.write_table(table)
        self.rows += len(frame)

    def close(self, empty_like: pd.DataFrame | None = None) -> None:
        if self.writer is None and empty_like is not None:  # nothing written: still a file with the columns
            self.write(empty_like.iloc[:0])
        if self.writer is not None:
            self.writer.close()


def parquet_batches(path: Path, batch_rows: int, columns: list[str] | None = None) -> Iterator[pd.DataFrame]:
    """A Parquet file as frames of at most `batch_rows` rows, with the dtypes pandas reads it with."""
    try:
        handle = pq.ParquetFile(path, pre_buffer=False)  # pre-buffered row groups stay cached as the file is read
    except (pa.ArrowException, OSError) as exc:
        raise PipelineError(f"{path.name} is not a readable Parquet file ({str(exc)[:200]})") from exc
    schema = handle.schema_arrow if columns is None else pa.schema([handle.schema_arrow.field(c) for c in columns])
    for batch in handle.iter_batches(batch_size=batch_rows, columns=columns):
        yield pa.Table.from_batches([batch], schema=schema.with_metadata(handle.schema_arrow.metadata)).to_pandas()


def parquet_rows(path: Path) -> int:
    return pq.ParquetFile(path).metadata.num_rows


def write_raw(data: DataConfig, source: Path, test_source: Path | None, target: Path,
              max_categories: int | None) -> dict[str, Any]:
    """The raw dataset, streamed: each batch read, cleaned and typed (the first batch's types fix the rest's),
    appended; the label checks run on the merged figures before the file is put in place."""
    merged, schema = merge([]), None
    with atomic_path(target) as tmp:
        sink = ParquetSink(tmp)
        for batch in read_batches(data, source, test_source, data.batch_rows):
            typed = type_batch(batch, data, source.name, schema, max_categories)
            if schema is None:
                schema = schema_of(typed)
            merged = fold(merged, {"rows": len(typed), "positives": _positives(typed, data),
                                   "labels": sorted(str(v) for v in typed[data.label].dropna().unique()),
                                   "columns": {}})
            sink.write(typed)
        check_merged_labels(merged, data)
        sink.close()
    return {"rows": merged["rows"], "columns": len(sink.schema.names) if sink.schema else 0}


def _positives(frame: pd.DataFrame, data: DataConfig) -> int:
    return int(positive_mask(frame[data.label], data.positive_label).sum())


def compound_key(suite: dict[str, Any] | None) -> list[str] | None:
    """The columns the suite's compound-uniqueness expectation names, if it has one."""
    return next((e["kwargs"]["column_list"] for e in (suite or {}).get("expectations", [])
                 if e["type"] == "expect_compound_columns_to_be_unique"), None)


def check_batch(batch: pd.DataFrame, data: DataConfig, suite: dict[str, Any] | None,
                compound: list[str] | None) -> dict[str, Any]:
    """One raw batch's share of the validation: its null counts, expectation records, partial figures and row
    hashes, and its clean rows with their partial profile (what any engine computes per batch)."""
    part: dict[str, Any] = {"rows": len(batch), "nulls": {str(n): int(c) for n, c in batch.isna().sum().items()}}
    if suite is not None:
        part |= {"validation": batch_records(batch, suite), "raw": partial_profile(batch, data),
                 "hashes": row_hashes(batch, compound) if compound else None}
    clean = batch.dropna() if data.drop_missing_rows and batch.isna().any(axis=None) else batch
    clean = clean.reset_index(drop=True)
    return part | {"clean": clean, "profile": partial_profile(clean, data)}


def validate_stream(raw: Path, target: Path, data: DataConfig, rules: ValidateConfig,
                    suite: dict[str, Any] | None) -> dict[str, Any]:
    """Validate the raw dataset batch by batch and write the clean rows; the verdicts are those of one validation
    of all rows (pipelines.data.batch_suite). Raises what validate_dataset raises, in the same order; nothing is
    written then."""
    compound = compound_key(suite)
    parts = (check_batch(batch, data, suite, compound) for batch in parquet_batches(raw, data.batch_rows))
    return merge_checked(parts, target, data, rules, suite)


def merge_checked(parts: Iterable[dict[str, Any]], target: Path, data: DataConfig, rules: ValidateConfig,
                  suite: dict[str, Any] | None) -> dict[str, Any]:
    """The batches' checks (check_batch, in row order) merged: the clean rows written to `target`, the verdicts
    judged once on all rows, the profile of the clean rows; nothing is written when a check fails."""
    raw_nulls: dict[str, int] = {}
    raw_rows, validations, figures, merged = 0, [], merge([]), merge([])  # the partials folded as they come
    hashes = DuplicateCounter()  # spilled to temporary files: 8 bytes a row would grow with the data
    with atomic_path(target) as tmp:
        sink, last = ParquetSink(tmp), None
        for part in parts:
            raw_rows += part["rows"]
            for name, count in part["nulls"].items():
                raw_nulls[name] = raw_nulls.get(name, 0) + count
            if suite is not None:
                validations.append(part["validation"])
                figures = fold(figures, part["raw"])
                if part["hashes"] is not None:
                    hashes.add(part["hashes"])
            merged = fold(merged, part["profile"])
            sink.write(part["clean"])
            last = part["clean"]
        for name, nulls in raw_nulls.items():
            share = nulls / raw_rows if raw_rows else 0.0
            if share > rules.max_missing_fraction:
                raise PipelineError(f"validate.max_missing_fraction: column '{name}' is {share:.0%} empty")
        outcome: dict[str, Any] = {"success": True, "evaluated": 0, "failed": []}
        if suite is not None:
            distinct = {n: None if c["values"] is None else len(c["values"]) for n, c in figures["columns"].items()}
            outcome = summarize(merge_validations(validations, raw_rows, distinct, hashes.count()), suite)
            if not outcome["success"]:
                raise ValidationFailed(outcome)
        check_invariant_figures(merged, data, rules)
        sink.close(last)
    return profile_report(merged) | {"raw_rows": raw_rows, "expectations": outcome}


def split_stream(validated: Path, target: Path, data: DataConfig, config: SplitConfig) -> dict[str, int]:
    """The three split files, each row routed by its key's hash (pipelines.data.rowsplit), batch by batch."""
    return write_splits(validated, target, data.batch_rows, lambda batch, _start: split_codes(batch, data, config))


def write_splits(validated: Path, target: Path, batch_rows: int,
                 codes_of: Callable[[pd.DataFrame, int], np.ndarray]) -> dict[str, int]:
    """The three split files, written batch by batch: `codes_of(batch, first row's position)` gives each row's
    split code (any engine's, as long as it follows pipelines.data.rowsplit); rows per split."""
    with atomic_path(target) as tmp:
        tmp.mkdir()
        sinks = {name: ParquetSink(tmp / f"{name}.parquet") for name in SPLITS}
        last, start = None, 0
        for batch in parquet_batches(validated, batch_rows):
            codes = codes_of(batch, start)
            start += len(batch)
            rows = batch.drop(columns=list(INTERNAL), errors="ignore")
            for code, name in enumerate(SPLITS):
                sinks[name].write(rows[codes == code].reset_index(drop=True))
            last = rows
        for sink in sinks.values():
            sink.close(last)
    return {name: sink.rows for name, sink in sinks.items()}


def sample_rows(path: Path, rows: int, batch_rows: int, seed: int = 0) -> pd.DataFrame:
    """The whole file when it has at most `rows` rows, else a seeded uniform sample of about `rows` of them,
    taken batch by batch (never the whole file in memory)."""
    total = parquet_rows(path)
    if total <= rows:
        return pd.read_parquet(path)
    share, rng, kept = rows / total, np.random.default_rng(seed), []
    for batch in parquet_batches(path, batch_rows):
        kept.append(batch[rng.random(len(batch)) < share])
    return pd.concat(kept, ignore_index=True)


def build_suite_stream(raw: Path, data: DataConfig, rules: ValidateConfig, data_version: str) -> dict[str, Any]:
    """The expectation suite from the raw dataset's merged figures, read batch by batch (the same suite as
    expectations.build_suite on the whole frame)."""
    merged, hashes, columns = merge([]), DuplicateCounter(), None
    for batch in parquet_batches(raw, data.batch_rows):
        batch = batch.drop(columns=list(INTERNAL), errors="ignore")
        columns = columns or list(batch.columns)
        merged = fold(merged, partial_profile(batch, data))
        hashes.add(row_hashes(batch, columns))
    duplicates = hashes.count() / merged["rows"] if merged["rows"] else 0.0
    return suite_from_figures(merged, columns or [], duplicates, data, rules, data_version)


def _numeric_values(path: Path, batch_rows: int, name: str) -> Iterator[np.ndarray]:
    """A numeric column's values, NaN left out, a batch at a time (drift.numeric_profile reads it once per pass)."""
    for batch in parquet_batches(path, batch_rows, [name]):
        yield batch[name].dropna().to_numpy(dtype=float)


def profile_stream(path: Path, batch_rows: int) -> dict[str, Any]:
    """The drift profile (drift.profile_frame) of a Parquet file, read `batch_rows` rows at a time: numeric columns
    through drift.numeric_profile (exact quantiles), text columns as counts merged batch by batch. A column of
    another type is profiled whole, one column in memory at a time."""
    features: dict[str, Any] = {}
    for field in pq.read_schema(path):
        if field.name in INTERNAL:
            continue
        kind = field.type.value_type if pa.types.is_dictionary(field.type) else field.type
        if pa.types.is_integer(kind) or pa.types.is_floating(kind):
            features[field.name] = numeric_profile(partial(_numeric_values, path, batch_rows, field.name))
        elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
            counts: dict[str, int] = {}
            for batch in parquet_batches(path, batch_rows, [field.name]):
                for value, count in batch[field.name].dropna().astype(str).value_counts().items():
                    counts[str(value)] = counts.get(str(value), 0) + int(count)
            features[field.name] = {"kind": "categorical", "counts": counts}
        else:
            features |= profile_frame(pd.read_parquet(path, columns=[field.name]), [field.name])["features"]
    return {"rows": parquet_rows(path), "features": features}
