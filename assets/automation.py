"""Nightly schedule and data-version sensor: they start runs only for what is stale, so unchanged
data, code and params cost nothing (no training step executes)."""
from __future__ import annotations

import os

from dagster import (
    AssetKey,
    AssetObservation,
    AssetSelection,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    RunRequest,
    ScheduleEvaluationContext,
    SensorEvaluationContext,
    SkipReason,
    schedule,
    sensor,
)
from dagster._core.asset_graph_view.asset_graph_view import (
    AssetGraphView,
    TemporalContext,
)
from dagster._core.definitions.data_version import (
    DATA_VERSION_TAG,
    CachingStaleStatusResolver,
    StaleStatus,
)
from dagster._time import get_current_datetime

from assets.resources import SettingsResource
from assets.stale_runs import fail_dead_runs
from pipelines.catalog import NOT_STAGES, missing_outputs
from pipelines.catalog import SOURCE as SOURCE_NAME
from pipelines.core.config import Settings
from pipelines.core.errors import PipelineError
from pipelines.data.sources import source_files

SOURCE = AssetKey(SOURCE_NAME)
JOB = "release_job"
# "running": the nightly schedule and the sensors start running when the code location loads (the production
# profile sets it, cli/services.py); unset or "stopped": they wait to be switched on in the UI. A state set in the
# UI or with `dagster schedule|sensor start|stop` wins over this default either way.
AUTOMATION_ENV = "MOBILE_MLOPS_AUTOMATION"


def automation_running() -> bool:
    """Whether the schedule and sensors default to running (MOBILE_MLOPS_AUTOMATION=running)."""
    value = os.environ.get(AUTOMATION_ENV, "stopped").strip().lower()
    if value not in ("running", "stopped"):
        raise PipelineError(f"{AUTOMATION_ENV}={value}: expected running or stopped")
    return value == "running"


def sensor_status() -> DefaultSensorStatus:
    return DefaultSensorStatus.RUNNING if automation_running() else DefaultSensorStatus.STOPPED


def observe_source(instance, settings: Settings) -> str:
    """Record the source data's DVC md5 as a new observation of `source_data`; return it."""
    version = "+".join(source_files(settings).values()) or "missing"
    instance.report_runless_asset_event(AssetObservation(asset_key=SOURCE, tags={DATA_VERSION_TAG: version}))
    return version


def stale_asset_keys(instance, asset_graph) -> list[AssetKey]:
    """Materializable assets that are missing or stale (the same rule as Dagster's stale_assets_only)."""
    view = AssetGraphView(temporal_context=TemporalContext(effective_dt=get_current_datetime(), last_event_id=None),
                          instance=instance, asset_graph=asset_graph)
    resolver = CachingStaleStatusResolver(instance=instance, asset_graph=asset_graph, loading_context=view)
    keys = sorted((k for k in asset_graph.materializable_asset_keys if k.to_user_string() not in NOT_STAGES),
                  key=lambda k: k.to_user_string())  # fleet assets follow telemetry, days their files
    return [k for k in keys if resolver.get_status(k) in (StaleStatus.STALE, StaleStatus.MISSING)]


def refresh_selection(asset_graph, stale: list[AssetKey]) -> list[AssetKey]:
    """Stale assets plus everything downstream of them: Dagster marks only the direct dependents of a
    change stale, and the rest would otherwise need one run per level."""
    closure = AssetSelection.assets(*stale).downstream().resolve(asset_graph)
    keys = {k for k in closure & set(asset_graph.materializable_asset_keys) if k.to_user_string() not in NOT_STAGES}
    return sorted(keys, key=lambda k: k.to_user_string())


def run_selection(instance, asset_graph, settings: Settings) -> tuple[list[AssetKey], list[AssetKey]]:
    """(what changed, what `mobile-mlops run` materializes): stale or missing stages (code versions, data
    versions, params) and those whose outputs are gone, plus everything downstream. Both empty: up to date."""
    missing = {AssetKey(name) for name in missing_outputs(settings)}
    stale = sorted(set(stale_asset_keys(instance, asset_graph)) | missing,
                   key=lambda k: k.to_user_string())
    return stale, (refresh_selection(asset_graph, stale) if stale else [])


def production_drift_marker(settings: Settings) -> str | None:
    """A key for the latest production-drift report when it found drift (fleet telemetry moved away from the
    release's reference): the nightly run then retrains even though the DVC data did not change."""
    import hashlib
    import json

    from pipelines.core.paths import FLEET_DRIFT_REPORT

    path = settings.resolve(FLEET_DRIFT_REPORT)
    if not path.is_file():
        return None
    report = json.loads(path.read_text())
    return "production-drift-" + hashlib.sha256(path.read_bytes()).hexdigest()[:12] if report.get("drift") else None


def _request(context, reason: str, run_key: str | None = None, settings: Settings | None = None
             ) -> RunRequest | SkipReason:
    fail_dead_runs(context.instance)  # a killed run must not hold the queue (max_concurrent_runs: 1) for good
    graph = context.repository_def.asset_graph
    stale = stale_asset_keys(context.instance, graph)
    drift = production_drift_marker(settings) if settings is not None else None
    if drift:  # production inputs drifted from the release's reference: retrain on today's data (once per report)
        stale = stale if AssetKey("trained_model") in stale else [*stale, AssetKey("trained_model")]
        reason, run_key = f"{reason}; production drift ({drift})", run_key or drift
    if not stale:
        return SkipReason(f"nothing is stale ({reason}): data, code and params unchanged; no training")
    return RunRequest(run_key=run_key, asset_selection=refresh_selection(graph, stale),
                      tags={"mobile-mlops/trigger": reason,
                            "mobile-mlops/stale": ",".join(k.to_user_string() for k in stale)})


def automation(settings: Settings) -> tuple:
    """The nightly schedule and the data-version sensor, timed by params `automation`."""
    config = settings.params.automation

    @schedule(job_name=JOB, cron_schedule=config.cron, execution_timezone=config.timezone,
              default_status=DefaultScheduleStatus.RUNNING if automation_running() else DefaultScheduleStatus.STOPPED,
              description="Nightly retraining: observes the data's DVC version and runs only stale assets.")
    def nightly_retraining(context: ScheduleEvaluationContext, settings: SettingsResource):
        loaded = settings.load()
        version = observe_source(context.instance, loaded)
        return _request(context, f"nightly, data version {version}", settings=loaded)

    @sensor(job_name=JOB, minimum_interval_seconds=config.sensor_interval_seconds,
            default_status=sensor_status(),
            description="Starts a run when the DVC md5 of the source data changes.")
    def data_version_sensor(context: SensorEvaluationContext, settings: SettingsResource):
        version = observe_source(context.instance, settings.load())
        if version == context.cursor:
            return SkipReason(f"data version {version} unchanged")
        context.update_cursor(version)
        return _request(context, f"data version {version}", run_key=f"data-{version}")

    return nightly_retraining, data_version_sensor
