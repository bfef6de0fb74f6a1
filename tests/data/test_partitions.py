"""Incoming data as daily partitions: cutting a source into days, accepting a day (validation, drift, its DVC
record), training on the accepted days, and daily_batch partitions materialized by Dagster with a bad day."""
from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
import yaml

from pipelines.core.config import load_settings
from pipelines.core.errors import PipelineError
from pipelines.core.hashing import recorded_md5
from pipelines.core.paths import suite_path
from pipelines.data import landing
from pipelines.data import partitions as p
from pipelines.data.expectations import build_suite, save_suite
from pipelines.data.load import load_dataset
from pipelines.data.sources import source_files
from pipelines.data.steps import daily_batch, raw_dataset

DAYS = ["2026-01-01", "2026-01-02", "2026-01-03"]


@pytest.fixture
def incoming(small_project: Path):
    """The small project's 1,500 rows cut into three days, and its expectation suite built from those rows."""
    settings = load_settings(small_project / "params.yaml")
    written = landing.split_source(settings, 3)
    frame = load_dataset(settings.params.data, settings.resolve(settings.params.data.source))
    save_suite(suite_path(settings), build_suite(frame, settings.params.data, settings.params.validate_, "test"))
    return settings, written


def test_split_source_cuts_the_rows_in_order_into_one_parquet_file_per_day(incoming, small_project):
    settings, written = incoming
    assert [f.name for f in written] == [f"{d}.parquet" for d in DAYS]
    assert p.landed_days(p.incoming_folder(settings)) == DAYS
    days = [pd.read_parquet(f) for f in written]
    assert [len(d) for d in days] == [500, 500, 500]
    source = pd.read_csv(small_project / "train.csv", header=None, dtype=str, skipinitialspace=True)
    assert days[1].iloc[0].tolist()[:2] == source.iloc[500].tolist()[:2]  # day 2 starts at row 501


def test_accepting_a_day_writes_the_record_dvc_add_writes(incoming):
    settings, written = incoming
    facts = daily_batch(settings, DAYS[0]).summary
    record = yaml.safe_load(p.record_path(written[0]).read_text())
    md5 = hashlib.md5(written[0].read_bytes()).hexdigest()
    assert record == {"outs": [{"md5": md5, "size": written[0].stat().st_size, "hash": "md5",
                                "path": "2026-01-01.parquet"}]}
    assert facts["md5"] == md5 == recorded_md5(written[0])
    assert facts["rows"] <= facts["raw_rows"] == 500 and facts["expectations_evaluated"] > 0
    assert facts["reference"] == "none" and facts["drift"] is False  # no release and no training profile yet
    assert "/*.parquet" in (written[0].parent / ".gitignore").read_text().splitlines()


def test_training_on_the_folder_reads_only_the_accepted_days(incoming):
    settings, written = incoming
    data = settings.params.data
    with pytest.raises(PipelineError, match="no accepted daily file"):
        load_dataset(data, p.incoming_folder(settings))
    daily_batch(settings, DAYS[0])
    daily_batch(settings, DAYS[2])
    frame = load_dataset(data, p.incoming_folder(settings))
    assert 0 < len(frame) <= 1000  # days 1 and 3 (incomplete rows kept: validation drops them later)
    as_source = load_settings(settings.path, {"data.source": "data/incoming"})
    assert sorted(Path(k).name for k in source_files(as_source)) == [f"{DAYS[0]}.parquet", f"{DAYS[2]}.parquet",
                                                                     "test.csv"]
    step = raw_dataset(as_source)  # the unpartitioned training data, assembled from the accepted days
    test_rows = len(load_dataset(data, settings.resolve(data.test_source)))
    assert step.summary["rows"] == len(frame) + test_rows  # plus the fixed test split (data.test_source)
    assert step.summary["source_md5"][f"data/incoming/{DAYS[2]}.parquet"] == recorded_md5(written[2])


def test_a_day_changed_after_acceptance_is_one_line_naming_it(incoming):
    settings, written = incoming
    daily_batch(settings, DAYS[0])
    pd.read_parquet(written[0]).head(400).to_parquet(written[0], index=False)
    with pytest.raises(PipelineError, match=r"2026-01-01.parquet changed after it was accepted.*daily_batch 2026-01-01"):
        load_dataset(settings.params.data, p.incoming_folder(settings))


def test_a_bad_day_fails_with_one_line_and_loses_its_record(incoming):
    settings, written = incoming
    daily_batch(settings, DAYS[1])
    bad = pd.read_parquet(written[1])
    bad.loc[:20, "workclass"] = "Martian"  # a category the suite never saw
    bad.to_parquet(written[1], index=False)
    with pytest.raises(PipelineError) as failed:
        daily_batch(settings, DAYS[1])
    message = str(failed.value)
    assert message.startswith("daily_batch 2026-01-02 (data/incoming/2026-01-02.parquet): ") and "\n" not in message
    assert "workclass" in message
    assert not p.record_path(written[1]).exists()  # no longer accepted: training will not read it


def test_a_missing_or_doubled_day_is_one_line(incoming, tmp_path):
    settings, written = incoming
    with pytest.raises(PipelineError, match=r"no file for 2026-02-01 in .*incoming \(expected"):
        daily_batch(settings, "2026-02-01")
    (written[0].parent / "2026-01-01.csv").write_text("x\n")
    with pytest.raises(PipelineError, match="2026-01-01 has 2 files"):
        p.day_file(written[0].parent, "2026-01-01")
    with pytest.raises(PipelineError, match="not a YYYY-MM-DD date"):
        p.day_file(written[0].parent, "2026-1-1")


def test_day_keys_and_split_limits(tmp_path):
    assert p.day_keys(date(2026, 2, 27), 3) == ["2026-02-27", "2026-02-28", "2026-03-01"]
    with pytest.raises(PipelineError, match="--days 0"):
        p.day_keys(date(2026, 1, 1), 0)
    with pytest.raises(PipelineError, match="only 2 rows"):
        landing.split_days(pd.DataFrame({"a": [1, 2]}), tmp_path, p.day_keys(date(2026, 1, 1), 3))


def test_split_source_refuses_a_folder_source(incoming):
    settings, _ = incoming
    as_source = load_settings(settings.path, {"data.source": "data/incoming"})
    with pytest.raises(PipelineError, match="is a folder of daily files already"):
        landing.split_source(as_source, 3)


def test_daily_batch_partitions_materialize_and_a_bad_day_fails_alone(incoming):
    from dagster import AssetKey, DagsterInstance, materialize

    from assets.build import build_definitions

    settings, written = incoming
    bad = pd.read_parquet(written[1]).assign(income=">50K")  # one class only: the invariants refuse the day
    bad.to_parquet(written[1], index=False)
    built = build_definitions(settings)
    daily = next(a for a in built.assets if AssetKey("daily_batch") in getattr(a, "keys", ()))
    with DagsterInstance.ephemeral() as instance:
        results = {day: materialize([daily], partition_key=day, resources=built.resources, instance=instance,
                                    raise_on_error=False) for day in DAYS}
        assert {d: r.success for d, r in results.items()} == {DAYS[0]: True, DAYS[1]: False, DAYS[2]: True}
        failure = next(e for e in results[DAYS[1]].all_events if e.is_step_failure)
        assert failure.step_failure_data.error.cause.message.startswith(
            "pipelines.core.errors.PipelineError: daily_batch 2026-01-02 (data/incoming/2026-01-02.parquet): "
            "data.label: column 'income' has 1 distinct value")
        done = instance.get_materialized_partitions(AssetKey("daily_batch"))
        assert done == {DAYS[0], DAYS[2]}
        event = instance.get_latest_materialization_event(AssetKey("daily_batch"))
        metadata = event.asset_materialization.metadata
        assert metadata["md5"].value == recorded_md5(written[2]) and metadata["rows"].value > 0
    assert [f.name for f in written if p.record_path(f).exists()] == ["2026-01-01.parquet", "2026-01-03.parquet"]
