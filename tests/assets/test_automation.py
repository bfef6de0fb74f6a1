"""Staleness follows DVC's data version; the nightly schedule and the sensor run only what is stale."""
from __future__ import annotations

from pathlib import Path

import pytest
from dagster import (
    AssetKey,
    DagsterInstance,
    RunRequest,
    SkipReason,
    build_schedule_context,
    build_sensor_context,
    instance_for_test,
)

from assets.automation import observe_source, stale_asset_keys
from assets.build import build_definitions
from assets.resources import SettingsResource
from pipelines.core.config import load_settings

TRAINING = AssetKey("trained_model")


def _trainings(instance: DagsterInstance) -> int:
    return len(instance.fetch_materializations(TRAINING, limit=100).records)


def _training_cpu_seconds(instance: DagsterInstance, after_id: int = 0) -> float:
    """CPU seconds the trained_model materializations after an event id recorded (pipelines.core.compute)."""
    records = instance.fetch_materializations(TRAINING, limit=100).records
    return sum(r.asset_materialization.metadata["cpu_seconds"].value for r in records if r.storage_id > after_id)


def _run(defs, instance: DagsterInstance, selection=None):
    job = defs.resolve_job_def("release_job")
    result = job.execute_in_process(instance=instance, asset_selection=selection, raise_on_error=False)
    assert result.success
    return result


@pytest.fixture
def project_env(small_project: Path) -> Path:
    return small_project


def _bound(project: Path):
    """The Definitions for this project's params, its schedule and sensor, and the resources they take."""
    settings = load_settings(project / "params.yaml")
    defs = build_definitions(settings)
    return (defs, settings, defs.resolve_schedule_def("nightly_retraining"),
            defs.resolve_sensor_def("data_version_sensor"), {"settings": SettingsResource.of(settings)})


def test_unchanged_data_skips_and_changed_data_reruns_what_is_stale(project_env: Path):
    defs, settings, nightly_retraining, _, resources = _bound(project_env)
    graph = defs.resolve_asset_graph()
    repository = defs.get_repository_def()
    with instance_for_test() as instance:  # persistent (temp dir): schedules need an instance ref
        observe_source(instance, settings)
        _run(defs, instance)
        assert stale_asset_keys(instance, graph) == []
        assert _trainings(instance) == 1

        assert _training_cpu_seconds(instance) > 0  # measured, and on the asset's metadata
        compute_record = project_env / "reports" / "metrics" / "trained_model.json"
        recorded, last_event = compute_record.read_text(), instance.fetch_materializations(TRAINING, limit=1).records[0]

        # nightly on unchanged data, code and params: skip, and training does not execute
        result = nightly_retraining(build_schedule_context(instance=instance, repository_def=repository, resources=resources))
        assert isinstance(result, SkipReason) and "nothing is stale" in result.skip_message
        assert _trainings(instance) == 1
        # ... so the skipped tick reports zero training compute: no new record, the DVC compute metric unchanged
        assert _training_cpu_seconds(instance, after_id=last_event.storage_id) == 0
        assert compute_record.read_text() == recorded

        # one value changes in the source file: the DVC md5 changes and everything downstream is stale
        source = project_env / "train.csv"
        lines = source.read_text().splitlines(keepends=True)
        lines[0] = lines[0].replace("39,", "40,", 1)
        source.write_text("".join(lines))
        observe_source(instance, settings)
        assert stale_asset_keys(instance, graph) == [AssetKey("raw_dataset")]  # Dagster: direct dependents only
        request = nightly_retraining(build_schedule_context(instance=instance, repository_def=repository, resources=resources))
        assert isinstance(request, RunRequest)
        stale = {k.to_user_string() for k in request.asset_selection}
        assert {"raw_dataset", "validated_dataset", "trained_model", "release_candidate"} <= stale

        _run(defs, instance, request.asset_selection)
        assert stale_asset_keys(instance, graph) == []
        assert _trainings(instance) == 2


def test_sensor_fires_once_per_data_version(project_env: Path):
    with instance_for_test() as instance:  # persistent (temp dir): schedules need an instance ref
        # Bound inside the instance: Dagster reads its definitions state from the current instance's storage.
        defs, _, _, data_version_sensor, resources = _bound(project_env)
        repository = defs.get_repository_def()
        context = build_sensor_context(instance=instance, repository_def=repository, resources=resources)
        first = data_version_sensor(context)
        assert isinstance(first, RunRequest) and first.run_key.startswith("data-")
        again = data_version_sensor(build_sensor_context(instance=instance, repository_def=repository,
                                                         cursor=context.cursor, resources=resources))
        assert isinstance(again, SkipReason) and "unchanged" in again.skip_message
