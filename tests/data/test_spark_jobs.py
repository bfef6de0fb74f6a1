"""The Spark engine's jobs agree with the local engine: the split hash on many keys, the split codes, the row
numbers, the typed batches, and the validation by Great Expectations on Spark, passing and failing (one Spark session
on local[2] for the module)."""
from __future__ import annotations

import csv
import json
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from pipelines.core.config import Settings, load_settings
from pipelines.core.errors import PipelineError
from pipelines.core.hashing import dvc_md5
from pipelines.data import spark_jobs
from pipelines.data.batches import read_batches, schema_of, type_batch
from pipelines.data.landing import split_days
from pipelines.data.load import read_table
from pipelines.data.partitions import day_keys, write_record
from pipelines.data.rowsplit import ORIGIN, ROW, split_codes, unit_hash
from pipelines.data.spark_engine import spark_session, stop_sessions
from pipelines.data.stream import build_suite_stream, validate_stream, write_raw

pytestmark = pytest.mark.slow  # a JVM and Spark jobs: ~2.5 min on a 2-core machine at load 6-8 (CI runs the slow suite)
SPARK = {"engine": "spark", "spark.master": "local[2]", "spark.driver_memory": "1g"}


@pytest.fixture(scope="module")
def module_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.conftest import write_small_project

    folder = tmp_path_factory.mktemp("spark")
    write_small_project(folder)
    yield folder
    stop_sessions()


def _settings(folder: Path, **more) -> Settings:
    return load_settings(folder / "params.yaml", SPARK | more)


def test_unit_hash_equals_python_on_many_keys(module_project: Path) -> None:
    """md5 -> 13 hex digits -> conv(16, 10) -> bigint / 16**13 in Spark SQL is bit-for-bit rowsplit.unit_hash."""
    from pyspark.sql import functions as F

    keys = [f"source:{n}" for n in range(30_000)] + [f"test_source:{n}" for n in range(5_000)] + [
        "", "é", "ключ", "a,b", "🙂", "x" * 1000, " padded ", "ffffffffffff"]
    spark = spark_session(_settings(module_project))
    frame = spark.createDataFrame(pd.DataFrame({"k": keys, "i": np.arange(len(keys))}))
    for seed in (0, 42, 2**32 - 1):
        got = frame.select("i", spark_jobs.unit_hash(F.col("k"), seed).alias("u")).orderBy("i").toPandas()["u"]
        assert np.array_equal(got.to_numpy(), unit_hash(keys, seed))  # exact, not close


@pytest.mark.parametrize("shipped", [False, True])
def test_split_codes_equal_rowsplit(module_project: Path, shipped: bool) -> None:
    settings = _settings(module_project, **({} if shipped else {"data.test_source": None}))
    rows = 20_000
    frame = pd.DataFrame({ORIGIN: np.where(np.arange(rows) < 15_000, "source", "test_source") if shipped
                          else "source", ROW: np.arange(rows, dtype=np.int64) % 15_000, "income": "<=50K"})
    spark = spark_session(settings)
    coded = spark.createDataFrame(frame.assign(i=np.arange(rows))).select(
        "i", spark_jobs.split_code(settings.params.data, settings.params.split).alias("c"))
    got = coded.orderBy("i").toPandas()["c"].to_numpy()
    assert np.array_equal(got, split_codes(frame, settings.params.data, settings.params.split))
    assert set(np.unique(got)) == {0, 1, 2}


def test_split_by_key_column(module_project: Path) -> None:
    settings = _settings(module_project, **{"data.key": "id"})
    frame = pd.DataFrame({"id": [f"user-{n}" for n in range(5000)] + [None], ORIGIN: "source",
                          ROW: np.arange(5001, dtype=np.int64)})
    got = spark_session(settings).createDataFrame(frame.assign(i=np.arange(5001))).select(
        "i", spark_jobs.split_code(settings.params.data, settings.params.split).alias("c")).orderBy("i").toPandas()
    assert np.array_equal(got["c"].to_numpy(), split_codes(frame, settings.params.data, settings.params.split))


def _local_batches(settings: Settings) -> list[pd.DataFrame]:
    data, typed, schema = settings.params.data, [], None
    source = settings.resolve(data.source)
    test = settings.resolve(data.test_source) if data.test_source else None
    for batch in read_batches(data, source, test, data.batch_rows):
        typed.append(type_batch(batch, data, source.name, schema, 100))
        schema = schema or schema_of(typed[-1])
    return typed


def test_raw_batches_equal_local_with_true_row_numbers(module_project: Path) -> None:
    """Executors read, number and type each file as the local engine does, batch for batch; a row's number is its
    data-row number in its file (adult.test's first line is a comment: data row 0, dropped for lacking a label)."""
    settings = _settings(module_project, **{"data.batch_rows": 400})
    spark = list(spark_jobs.raw_batches(settings, 100))
    local = _local_batches(settings)
    assert [len(b) for b in spark] == [len(b) for b in local] and len(spark) == 6
    for mine, theirs in zip(spark, local, strict=True):
        pd.testing.assert_frame_equal(mine, theirs)
    rows = pd.concat(spark, ignore_index=True)
    for origin, name in (("source", "train.csv"), ("test_source", "test.csv")):
        with open(module_project / name, newline="") as handle:
            lines = list(csv.reader(handle, skipinitialspace=True))
        mine = rows[rows[ORIGIN] == origin]
        assert mine[ROW].iloc[0] == (1 if origin == "test_source" else 0)
        for _, row in mine.sample(50, random_state=1).iterrows():
            assert lines[row[ROW]][0] == f"{row['age']:g}" and lines[row[ROW]][14].rstrip(".") == row["income"]


def test_days_are_numbered_through(tmp_path: Path, module_project: Path) -> None:
    """A folder of daily files: an executor per day, rows numbered through the days as the local reader does."""
    settings = _settings(module_project)
    frame = read_table(module_project / "train.csv", settings.params.data, "source")
    incoming = tmp_path / "incoming"
    for path in split_days(frame, incoming, day_keys(date(2026, 1, 1), 3)):
        write_record(path)
    folder = _settings(module_project, **{"data.source": str(incoming), "data.test_source": None,
                                          "data.columns": None, "data.batch_rows": 300})
    spark, local = list(spark_jobs.raw_batches(folder, 100)), _local_batches(folder)
    assert len(spark) == len(local) > 3
    for mine, theirs in zip(spark, local, strict=True):
        pd.testing.assert_frame_equal(mine, theirs)
    assert pd.concat(spark)[ROW].tolist()[-1] == len(frame) - 1


def test_a_day_of_another_schema_names_the_column(tmp_path: Path, module_project: Path) -> None:
    """As the local reader: a day whose Parquet schema differs from the first day's is one line naming the column
    (raised on the executor, shown as the driver's one line)."""
    settings = _settings(module_project)
    frame = read_table(module_project / "train.csv", settings.params.data, "source")
    incoming = tmp_path / "incoming"
    days = split_days(frame, incoming, day_keys(date(2026, 1, 1), 2))
    pd.read_parquet(days[1]).astype({"age": "float64"}).to_parquet(days[1], index=False)
    for path in days:
        write_record(path)
    folder = _settings(module_project, **{"data.source": str(incoming), "data.test_source": None,
                                          "data.columns": None})
    with pytest.raises(PipelineError) as local:
        list(read_batches(folder.params.data, incoming, None, 1000))
    with pytest.raises(PipelineError) as spark:
        list(spark_jobs.raw_batches(folder, 100))
    assert str(spark.value) == str(local.value) == (f"data.source: {days[1].name} column 'age' is double, not "
                                                    f"large_string (as in {days[0].name}, the first file)")


@pytest.fixture(scope="module")
def raw_and_suite(module_project: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """The small project's typed raw data (the local engine's file) and the suite built from it."""
    settings = load_settings(module_project / "params.yaml")
    data = settings.params.data
    raw = tmp_path_factory.mktemp("raw") / "dataset.parquet"
    write_raw(data, settings.resolve(data.source), settings.resolve(data.test_source), raw, 100)
    return raw, build_suite_stream(raw, data, settings.params.validate_, dvc_md5(raw))


def _both(settings: Settings, raw: Path, suite: dict, folder: Path) -> tuple[Any, Any]:
    """Each engine's validation of `raw`: (report JSON and the validated file's md5) or the error it raised."""
    found = []
    for engine in ("local", "spark"):
        target = folder / f"{engine}.parquet"
        try:
            report = (spark_jobs.validate(settings, raw, target, suite) if engine == "spark" else
                      validate_stream(raw, target, settings.params.data, settings.params.validate_, suite))
        except PipelineError as exc:
            assert not target.exists()
            found.append((type(exc).__name__, str(exc), getattr(exc, "outcome", None)))
        else:
            found.append((json.dumps(report, indent=2, sort_keys=True), dvc_md5(target)))
    return found[0], found[1]


@pytest.mark.parametrize("batch_rows", [500_000, 700])
def test_validate_equals_local(module_project: Path, raw_and_suite: tuple[Path, dict], tmp_path: Path,
                               batch_rows: int) -> None:
    """Great Expectations on Spark passes the small project's raw data as the local engine does: the same report,
    byte for byte, and the same validated file (one batch, or three merged)."""
    raw, suite = raw_and_suite
    local, spark = _both(_settings(module_project, **{"data.batch_rows": batch_rows}), raw, suite, tmp_path)
    assert spark == local
    assert json.loads(spark[0])["expectations"] == {"success": True, "evaluated": len(suite["expectations"]),
                                                      "failed": [], "skipped": 0}


def _broken(raw: Path, folder: Path, how: str) -> Path:
    """The raw data with one kind of damage."""
    frame = pd.read_parquet(raw)
    odd = np.arange(len(frame)) % 97 == 5
    if how == "values":  # out of range, unknown categories (within `mostly` in some batches, not in all), a third label
        frame.loc[odd, "age"] = 500.0
        frame.loc[np.arange(len(frame)) % 29 == 3, "workclass"] = "Guild"
        frame.loc[np.arange(len(frame)) > 1900, "workclass"] = "Moon"
        frame.loc[frame.index[-3:], "income"] = "maybe"
    elif how == "types":  # a numeric column arriving as text, with words among the numbers
        frame["hours-per-week"] = frame["hours-per-week"].astype("string")
        frame.loc[odd, "hours-per-week"] = "forty"
    elif how == "columns":  # a column gone (its compound check skipped), nulls beyond `mostly`
        frame = frame.drop(columns=["race"])
        frame.loc[np.arange(len(frame)) % 7 == 2, "sex"] = None
    elif how == "duplicates":  # many duplicated rows
        frame.iloc[1000:1400, :14] = frame.iloc[600:1000, :14].to_numpy()
    elif how == "empty":  # a column too empty for validate.max_missing_fraction
        frame.loc[np.arange(len(frame)) % 3 == 0, "occupation"] = None
    target = folder / f"{how}.parquet"
    frame.to_parquet(target, index=False)
    return target


@pytest.mark.parametrize(("how", "batch_rows"), [("values", 500_000), ("values", 700), ("types", 500_000),
                                                  ("types", 700), ("columns", 700), ("duplicates", 700),
                                                  ("empty", 700)])
def test_broken_data_fails_alike(module_project: Path, raw_and_suite: tuple[Path, dict], tmp_path: Path, how: str,
                                 batch_rows: int) -> None:
    """Damaged data fails on Spark as it fails locally: the same one line, the same failed expectations with the
    same counts, percentages and example values (the local engine's, which depend on its batches), nothing
    written."""
    raw, suite = raw_and_suite
    settings = _settings(module_project, **{"data.batch_rows": batch_rows, "validate.max_missing_fraction": 0.3})
    local, spark = _both(settings, _broken(raw, tmp_path, how), suite, tmp_path)
    assert spark == local
    assert local[0] == ("PipelineError" if how == "empty" else "ValidationFailed")
    if how != "empty":
        assert len(local[2]["failed"]) == {"values": 4, "types": 2, "columns": 2, "duplicates": 1}[how]
