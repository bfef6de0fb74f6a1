"""The data steps' work as Spark jobs (`engine: spark`): executors run the local engine's per-batch functions
(pipelines.data.batches, .stream), Spark SQL computes null counts and the split hash, and Great Expectations judges
the suite through its Spark datasource (pipelines.data.spark_suite); the driver merges the partial figures with the
same `merge` and writes the batches, in the local engine's order and batching, through the same ParquetSink. So the
files, their DVC md5 (the data version), the reports and the profile are the local engine's, byte for byte."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, FloatType

from pipelines.core.config import DataConfig, Settings, SplitConfig
from pipelines.core.errors import PipelineError
from pipelines.core.io import atomic_path
from pipelines.data.batches import (
    _parquet_schema_difference,
    check_merged_labels,
    merge,
    partial_profile,
    read_batches,
    schema_of,
    source_files,
    type_batch,
)
from pipelines.data.drift import profile_frame
from pipelines.data.expectations import batch_records
from pipelines.data.load import numbered, read_table_batches, sniffed_format
from pipelines.data.rowsplit import INTERNAL, ORIGIN, ROW, TEST, TRAIN, VALIDATION
from pipelines.data.spark_engine import spark_session
from pipelines.data.spark_suite import judge
from pipelines.data.stream import ParquetSink, check_batch, merge_checked
from pipelines.data.stream import write_splits as stream_write_splits
from pipelines.data.validate import ValidationFailed

if TYPE_CHECKING:
    from pyspark import RDD
    from pyspark.sql import Column, DataFrame

HEX_DIGITS = 13  # rowsplit.unit_hash: the first 13 hex digits of the md5 (52 bits, exact in a double)


def row_key(data: DataConfig) -> Column:
    """rowsplit.row_keys as a Spark column: the data.key column's text ('' when missing), else `origin:row`."""
    if data.key is not None:
        return F.coalesce(F.col(data.key).cast("string"), F.lit(""))
    return F.concat(F.col(ORIGIN), F.lit(":"), F.col(ROW).cast("string"))


def unit_hash(key: Column, seed: int) -> Column:
    """rowsplit.unit_hash in Spark SQL: md5 of `seed:key` (UTF-8), its first 13 hex digits as a number / 16**13."""
    digits = F.substring(F.md5(F.concat(F.lit(f"{seed}:"), key)), 1, HEX_DIGITS)
    return F.conv(digits, 16, 10).cast("bigint").cast("double") / F.lit(float(16**HEX_DIGITS))


def split_code(data: DataConfig, config: SplitConfig) -> Column:
    """rowsplit.assign in Spark SQL: each row's split code (TRAIN, VALIDATION, TEST)."""
    u = unit_hash(row_key(data), config.seed)
    if data.test_source is None:
        return (F.when(u < F.lit(config.test_size), TEST)
                .when(u < F.lit(config.test_size + (1 - config.test_size) * config.validation_size), VALIDATION)
                .otherwise(TRAIN))
    return (F.when(F.col(ORIGIN) == "test_source", TEST).when(u < F.lit(config.validation_size), VALIDATION)
            .otherwise(TRAIN))


def split_codes(settings: Settings, validated: Path, config: SplitConfig) -> np.ndarray:
    """Each validated row's split code, computed by Spark SQL over the Parquet file, in the file's row order (the
    local engine's: source rows, then the shipped test file's, each by row number; put in order on the driver,
    three numbers a row, which is cheaper than a distributed sort)."""
    frame = spark_session(settings).read.parquet(str(validated))
    coded = frame.select((F.col(ORIGIN) != "source").cast("byte").alias("o"), F.col(ROW).alias("r"),
                         split_code(settings.params.data, config).cast("byte").alias("c")).toArrow()
    order = np.lexsort((coded.column("r").to_numpy(), coded.column("o").to_numpy()))
    return coded.column("c").to_numpy()[order].astype(np.int8)


def _files(settings: Settings) -> list[tuple[str, str, str]]:
    """(origin, path, params key) of every file the raw dataset reads, in the local engine's order."""
    data = settings.params.data
    files = [("source", str(p), "source") for p in source_files(settings.resolve(data.source))]
    if data.test_source:
        files.append(("test_source", str(settings.resolve(data.test_source)), "test_source"))
    return files


def raw_batches(settings: Settings, max_categories: int | None) -> Iterator[pd.DataFrame]:
    """The raw dataset's typed batches, in the local engine's order and batching (pipelines.data.batches): each file
    is read, numbered and typed by an executor with the same functions; the driver only offsets the row numbers of
    a folder's later days and yields the batches in order. The first batch's types (read here) fix every file's."""
    data = settings.params.data
    source = settings.resolve(data.source)
    first = type_batch(next(read_batches(data, source, None, data.batch_rows)), data, source.name, None,
                       max_categories)
    schema, columns = schema_of(first), None
    del first
    files = _files(settings)

    def typed(item: tuple[int, tuple[str, str, str]]) -> Iterator[tuple[int, int, list[str], pd.DataFrame]]:
        index, (origin, path, key) = item
        row, first = 0, Path(files[0][1])
        try:
            if origin == "source" and index > 0 and sniffed_format(Path(path)) == sniffed_format(first) == ".parquet":
                differs = _parquet_schema_difference(Path(path), first)  # batches.read_batches' check
                if differs:
                    raise PipelineError(f"data.{key}: {Path(path).name} {differs} (as in {first.name}, the first file)")
            for text in read_table_batches(Path(path), data, key, data.batch_rows):
                rows, names = len(text), list(text.columns)
                batch = type_batch(numbered(text, origin, row), data, source.name, schema, max_categories)
                row += rows
                yield index, rows, names, batch
        except PipelineError as exc:  # back to the driver as the one line it is, not an executor's traceback
            yield index, -1, [], str(exc)

    context = spark_session(settings).sparkContext
    work = context.parallelize(list(enumerate(files)), len(files)).flatMap(typed)
    before: dict[str, int] = {}  # rows of the earlier files of each origin: a folder's days are numbered through
    current, in_file = 0, 0
    for index, rows, names, batch in work.toLocalIterator(prefetchPartitions=True):
        origin, path, key = files[index]
        if rows < 0:
            raise PipelineError(batch)
        if index != current:
            before[files[current][0]] = before.get(files[current][0], 0) + in_file
            current, in_file = index, 0
        if columns is None:
            columns = names
        elif names != columns:  # batches.read_batches' messages
            odd = next((c for c in [*columns, *names] if c not in columns or c not in names), None)
            what = f"column '{odd}'" if odd else "the column order"
            raise PipelineError("data.test_source: columns differ from data.source" if origin == "test_source" else
                                f"data.{key}: {Path(path).name} differs from {Path(files[0][1]).name} in {what}")
        if before.get(origin):
            batch[ROW] += before[origin]
        in_file += rows
        yield batch


def write_raw(settings: Settings, target: Path, max_categories: int | None) -> dict[str, Any]:
    """stream.write_raw with the batches typed by Spark executors: the same file, row group by row group."""

    data, partials = settings.params.data, []
    with atomic_path(target) as tmp:
        sink = ParquetSink(tmp)
        for typed in raw_batches(settings, max_categories):
            partials.append(partial_profile(typed, data) | {"columns": {}})
            sink.write(typed)
        merged = merge(partials)
        check_merged_labels(merged, data)
        sink.close()
    return {"rows": merged["rows"], "columns": len(sink.schema.names) if sink.schema else 0}


def parquet_slice(path: Path, start: int, stop: int) -> pd.DataFrame:
    """Rows [start, stop) of a Parquet file, read from the row groups holding them, with the dtypes
    stream.parquet_batches gives the same rows."""


    handle = pq.ParquetFile(path)
    groups, first, offset = [], None, 0
    for index in range(handle.metadata.num_row_groups):
        size = handle.metadata.row_group(index).num_rows
        if offset + size > start and offset < stop:
            groups.append(index)
            first = offset if first is None else first
        offset += size
    table = handle.read_row_groups(groups) if groups else handle.schema_arrow.empty_table()
    return table.slice(start - (first or 0), stop - start).to_pandas()


def batch_ranges(path: Path, batch_rows: int) -> list[tuple[int, int]]:
    """The row ranges stream.parquet_batches reads the file in: `batch_rows` rows each, across row groups."""


    total = pq.ParquetFile(path).metadata.num_rows
    return [(start, min(start + batch_rows, total)) for start in range(0, total, batch_rows)]


def drift_profile(settings: Settings, path: Path) -> dict[str, Any]:
    """stream.profile_stream with one Spark task per column: each reads its column and profiles it exactly."""


    names = [n for n in pq.read_schema(path).names if n not in INTERNAL]

    def profiled(name: str) -> tuple[str, dict[str, Any]]:
        return name, profile_frame(pd.read_parquet(path, columns=[name]), [name])["features"][name]

    context = spark_session(settings).sparkContext
    features = dict(context.parallelize(names, max(1, len(names))).map(profiled).collect())
    return {"rows": pq.ParquetFile(path).metadata.num_rows, "features": {name: features[name] for name in names}}


def write_splits(settings: Settings, validated: Path, target: Path, config: SplitConfig) -> dict[str, int]:
    """stream.split_stream with the split codes computed by Spark SQL (split_codes): the same three files."""
    codes = split_codes(settings, validated, config)
    return stream_write_splits(validated, target, settings.params.data.batch_rows,
                               lambda batch, start: codes[start:start + len(batch)])


def _column(name: str) -> Column:
    """A column by its exact name (a dot or a backtick in it is part of the name)."""
    return F.col("`" + name.replace("`", "``") + "`")


def null_counts(frame: DataFrame) -> dict[str, int]:
    """Each column's missing values, as pandas' isna counts them (null, or NaN in a floating column): one job."""
    floating = {f.name for f in frame.schema.fields if isinstance(f.dataType, FloatType | DoubleType)}
    missing = [_column(n).isNull() | (F.isnan(_column(n)) if n in floating else F.lit(False)) for n in frame.columns]
    counts = frame.select([F.count(F.when(m, 1)).alias(f"c{i}") for i, m in enumerate(missing)]).collect()[0]
    return {name: int(counts[i]) for i, name in enumerate(frame.columns)}


def validate(settings: Settings, raw: Path, target: Path, suite: dict[str, Any] | None) -> dict[str, Any]:
    """stream.validate_stream as Spark jobs: null counts by Spark SQL; the suite by Great Expectations on the raw
    data's Spark DataFrame (pipelines.data.spark_suite); the clean rows and their partial profile by executors, one
    batch each, merged and written in order by the driver. The same checks in the same order, the same verdicts,
    report and file."""
    data, rules = settings.params.data, settings.params.validate_
    session, ranges = spark_session(settings), batch_ranges(raw, data.batch_rows)
    frame, rows = session.read.parquet(str(raw)), pq.ParquetFile(raw).metadata.num_rows
    for name, nulls in null_counts(frame).items():  # stream.merge_checked's first check
        share = nulls / rows if rows else 0.0
        if share > rules.max_missing_fraction:
            raise PipelineError(f"validate.max_missing_fraction: column '{name}' is {share:.0%} empty")

    def batches(work: Callable[[pd.DataFrame], Any]) -> RDD:
        return session.sparkContext.parallelize(ranges, max(1, len(ranges))).map(
            lambda item: work(parquet_slice(raw, item[0], item[1])))

    outcome = None
    if suite is not None:
        def per_batch(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
            return batches(lambda batch: batch_records(batch, {"expectations": items})).collect()

        typed = pq.ParquetFile(raw).schema_arrow.empty_table().to_pandas()  # the dtypes of every batch
        outcome = judge(frame, suite, rows, len(ranges), typed, per_batch)
        if not outcome["success"]:
            raise ValidationFailed(outcome)
    clean = batches(lambda batch: check_batch(batch, data, None, None))
    report = merge_checked(clean.toLocalIterator(prefetchPartitions=True), target, data, rules, None)
    return report if outcome is None else report | {"expectations": outcome}
