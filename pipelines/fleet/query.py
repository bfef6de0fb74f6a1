"""The telemetry store queried in place: DuckDB SQL over the day-partitioned Parquet shards, never loaded whole.

Every fleet figure that sums telemetry (device units of the canary test, monthly observed FinOps, the daily
history of the guardrail chart) is one SQL statement over a view named `t` with the stored columns. `run` binds
`t` either to the shards of the store (DuckDB streams them, so memory follows the result, not the rows) or to a
pandas frame already in memory (tests, the simulator's running totals): one definition, two sources.

Before a query the shards are checked: a file that is not readable Parquet is named, and so is a column whose
name or type differs from the first shard's.
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.core.errors import PipelineError
from pipelines.fleet.schema import COLUMNS, typed

# DuckDB spills to disk past this, so the analysis stays under the 4 GiB it is sized for at a million devices
MEMORY_LIMIT = "2GB"


@dataclass(frozen=True)
class Shards:
    """Parquet files of the store to query as `t`, and device ids to leave out (quarantined devices)."""

    files: tuple[Path, ...]
    exclude: frozenset[str] = frozenset()


Source: TypeAlias = pd.DataFrame | Shards


def _schema(path: Path) -> pa.Schema:
    try:
        return pq.read_schema(path)
    except (OSError, pa.ArrowException) as exc:
        raise PipelineError(f"{path}: not a readable Parquet shard ({str(exc).splitlines()[0][:200]})") from None


def check(files: list[Path] | tuple[Path, ...]) -> None:
    """Each shard is readable Parquet with the first shard's columns and types (footers only, not the rows)."""
    if not files:
        return
    first = _schema(files[0])
    expected = {f.name: f.type for f in first}
    for path in files[1:]:
        schema = _schema(path)
        found = {f.name: f.type for f in schema}
        for name, kind in found.items():
            if name not in expected:
                raise PipelineError(f"{path}: column {name!r} is not in the first shard {files[0].name}")
            if kind != expected[name]:
                raise PipelineError(f"{path}: column {name!r} is {kind}, but {expected[name]} in the first shard "
                                    f"{files[0].name}")
        missing = [n for n in expected if n not in found]
        if missing:
            raise PipelineError(f"{path}: column {missing[0]!r} of the first shard {files[0].name} is missing")


def connect() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB bounded in memory and threads (the machine is shared)."""
    con = duckdb.connect(":memory:")
    con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
    con.execute(f"SET temp_directory = '{Path(tempfile.gettempdir()) / 'mobile-mlops-duckdb'}'")  # not the cwd
    con.execute(f"SET threads = {max(1, min(os.cpu_count() or 1, 4))}")
    con.execute("SET preserve_insertion_order = false")
    con.execute("SET enable_progress_bar = false")  # a CLI's and a step's output stay their own
    return con


def _bind(con: duckdb.DuckDBPyConnection, source: Source) -> None:
    if isinstance(source, pd.DataFrame):
        con.register("t_all", source)
    elif source.files:
        con.read_parquet([str(f) for f in source.files]).create_view("t_all")
    else:
        con.register("t_all", typed(pd.DataFrame({c: [] for c in COLUMNS})))
    if isinstance(source, Shards) and source.exclude:
        con.register("excluded", pd.DataFrame({"device_id": sorted(source.exclude)}))
        con.execute("CREATE VIEW t AS SELECT * FROM t_all WHERE device_id NOT IN (SELECT device_id FROM excluded)")
    else:
        con.execute("CREATE VIEW t AS SELECT * FROM t_all")


def run(sql: str, source: Source) -> pd.DataFrame:
    """The result of `sql` (which reads the view `t`) over the shards or the frame, as a pandas frame."""
    con = connect()
    try:
        _bind(con, source)
        return con.execute(sql).df()
    except duckdb.Error as exc:
        raise PipelineError(f"fleet telemetry query failed ({str(exc).splitlines()[0][:300]})") from None
    finally:
        con.close()
