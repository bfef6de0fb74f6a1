"""The store queried in place (DuckDB over the Parquet shards): the same figures as pandas over the loaded rows, and
shards that cannot be read or do not match the first one named with the file and the column."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from benchmarks.fleet_scale import write_store
from pipelines.core.config import load_settings
from pipelines.core.errors import PipelineError
from pipelines.finops.cost import DAYS_PER_MONTH, MB
from pipelines.fleet import canary, figures, history, ldp, observed_finops, rollout, store
from pipelines.fleet.schema import HIST

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def params():
    return load_settings(ROOT / "params.yaml").params


@pytest.fixture(scope="module")
def telemetry(tmp_path_factory, params) -> Path:
    """600 devices x 4 days (two months: 2026-01-30 .. 2026-02-02), 5% canary."""
    directory = tmp_path_factory.mktemp("store") / "telemetry"
    write_store(directory, 600, 4, params, seed=3, start="2026-01-30")
    return directory


def test_device_units_in_sql_match_a_pandas_groupby_of_the_loaded_rows(telemetry):
    frame = store.read_days(telemetry)
    grouped = frame.groupby(["variant", "device_id"])
    expected = grouped[list(canary.SUMMED)].sum()
    expected["device_days"] = grouped.size()
    expected["group_rr"] = grouped["group_rr"].first()
    in_place = canary.units(store.shards(telemetry))
    pd.testing.assert_frame_equal(in_place, expected[in_place.columns], check_dtype=False, check_exact=False,
                                  rtol=1e-12)
    pd.testing.assert_frame_equal(canary.units(frame), in_place)  # the same SQL over a frame in memory
    assert set(in_place.index.get_level_values(0)) == {"canary", "production"}


def test_observed_months_in_sql_are_the_figures_of_the_loaded_rows(telemetry, params):
    frame = store.read_days(telemetry)
    rows = observed_finops.observed(store.shards(telemetry), params)
    assert [r["month"] for r in rows] == ["2026-01", "2026-02"]
    for row in rows:
        month = frame[frame["day"].str.startswith(row["month"])]
        downloads = float(month["download_bytes_wifi"].sum() + month["download_bytes_cellular"].sum())
        devices = month["device_id"].nunique()
        assert (row["devices"], row["device_days"]) == (devices, len(month))
        updates = params.finops.fleet.updates_per_month
        assert row["device_mb_per_month"] == pytest.approx(
            downloads / MB / devices * updates + month["offload_bytes"].sum() / MB / (len(month) / DAYS_PER_MONTH),
            rel=1e-12)
        assert row["battery_share_per_day"] == pytest.approx(
            figures.battery_share_per_day(month["battery_mj"].sum(), len(month), params), rel=1e-12)


def test_history_counts_the_gap_and_mb_over_the_devices_seen_so_far_as_the_per_device_tests_do(telemetry, params):
    frame = store.read_days(telemetry)
    rows = history.history(store.shards(telemetry), params)
    assert [(r["day"], r["cohort"]) for r in rows][:2] == [("2026-01-30", "canary"), ("2026-01-30", "production")]
    fleet = params.fleet
    for row in rows:
        seen = canary.units(frame[frame["day"] <= row["day"]]).loc[row["cohort"]]  # the per-device definition
        gap = ldp.group_rates(seen["predicted_positive"].to_numpy(float), seen["inferences"].to_numpy(float),
                              seen["group_rr"].to_numpy(), fleet.epsilon, len(fleet.groups))["gap"]
        mb = figures.mb_per_device_month(
            (seen["download_bytes_wifi"] + seen["download_bytes_cellular"]).to_numpy(float),
            seen["offload_bytes"].to_numpy(float), seen["device_days"].to_numpy(float),
            params.finops.fleet.updates_per_month)[0]
        assert row["selection_rate_gap"] == pytest.approx(gap, rel=1e-9)
        assert row["mb_per_device_month"] == pytest.approx(mb, rel=1e-9)
        today = frame[(frame["day"] == row["day"]) & (frame["variant"] == row["cohort"])]
        assert row["devices"] == today["device_id"].nunique()
        hist = today[list(HIST)].to_numpy(float)
        assert row["latency_ms"] == pytest.approx(np.exp((hist @ canary.LOG_CENTRES).sum() / hist.sum()), rel=1e-12)
    assert history.days_in_stage(store.shards(telemetry), "2") == 4 and history.days_in_stage(
        store.shards(telemetry), "9") == 0


def test_quarantined_devices_are_left_out_of_the_canary_analysis(tmp_path, params):
    directory = tmp_path / "telemetry"
    write_store(directory, 400, 2, params, seed=1)
    frame = store.read_days(directory)
    bad = frame[frame["variant"] == "canary"].iloc[:3]
    store.write_batch(directory, "quarantine-1", frame.iloc[:0], bad.assign(reason="negative count"))
    _, _, tests, blocked = rollout.analyse_day(directory, "2026-01-02", params.release.rollout, params, 0, 2)
    canary_devices = frame.loc[frame["variant"] == "canary", "device_id"].nunique()
    assert blocked == 3 and tests[0].units == canary_devices - 3


def _copy_day(directory: Path, name: str, table: pa.Table) -> Path:
    path = directory / "day=2026-01-02" / name
    pq.write_table(table, path)
    return path


def test_a_malformed_shard_is_named(tmp_path, params):
    directory = tmp_path / "telemetry"
    write_store(directory, 50, 2, params)
    bad = directory / "day=2026-01-02" / "zz-broken.parquet"
    bad.write_bytes(b"PAR1 not really parquet")
    with pytest.raises(PipelineError) as error:
        observed_finops.observed(store.shards(directory), params)
    assert str(error.value).startswith(f"{bad}: not a readable Parquet shard (")
    with pytest.raises(PipelineError, match="zz-broken.parquet: not a readable Parquet shard"):
        rollout.analyse_day(directory, "2026-01-02", params.release.rollout, params, 0, 2)


@pytest.mark.parametrize(("change", "message"), [
    (lambda t: t.set_column(t.schema.get_field_index("crashes"), "crashes", t["crashes"].cast(pa.float64())),
     "column 'crashes' is double, but int64 in the first shard bench-2026-01-01.parquet"),
    (lambda t: t.drop_columns(["tier"]), "column 'tier' of the first shard bench-2026-01-01.parquet is missing"),
    (lambda t: t.append_column("extra", pa.array([1] * len(t))),
     "column 'extra' is not in the first shard bench-2026-01-01.parquet"),
])
def test_a_shard_whose_schema_differs_from_the_first_names_the_column(tmp_path, params, change, message):
    directory = tmp_path / "telemetry"
    write_store(directory, 50, 2, params)
    table = pq.read_table(directory / "day=2026-01-02" / "bench-2026-01-02.parquet")
    path = _copy_day(directory, "zz-other.parquet", change(table))
    with pytest.raises(PipelineError) as error:
        store.shards(directory)
    assert str(error.value) == f"{path}: {message}"
    with pytest.raises(PipelineError) as error:
        store.read_days(directory)
    assert str(error.value) == f"{path}: {message}"


def test_queries_run_bounded_and_quiet():
    from pipelines.fleet import query

    con = query.connect()
    settings = dict(con.execute("SELECT name, value FROM duckdb_settings() WHERE name IN "
                                "('memory_limit', 'enable_progress_bar', 'threads')").fetchall())
    con.close()
    assert settings["enable_progress_bar"] == "false"  # no bar in a CLI's or a step's output
    assert settings["memory_limit"].startswith("1.8") and int(settings["threads"]) <= 4  # 2 GB (1.8 GiB)
