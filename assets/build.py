"""How the one Definitions is built: `build_definitions(settings)` for any params file and overrides (`--params`,
`--set`), so code versions see them. `mobile-mlops run`, the benchmarks and the tests build theirs here; the
module Dagster loads (assets/definitions.py) builds it for the project's params."""
from __future__ import annotations

import os

from dagster import Definitions, define_asset_job, multiprocess_executor

from assets.automation import JOB, automation
from assets.fleet import fleet_assets, telemetry_sensor
from assets.partitions import partition_assets
from assets.resources import SettingsResource
from assets.stages import pipeline_assets
from pipelines.catalog import NOT_STAGES, STAGES
from pipelines.core.config import Settings

# Runs launched from the UI or by schedules run each step in its own process. Forked from a server that
# has already imported this module, a step starts in well under a second instead of ~5 s (20 steps a run).
EXECUTOR = multiprocess_executor.configured({"start_method": {"forkserver": {}}})
EXECUTOR_ENV = "MOBILE_MLOPS_EXECUTOR"  # multiprocess (default) | celery: the production profile (docs/deployment.md)
BROKER_ENV, BACKEND_ENV = "MOBILE_MLOPS_CELERY_BROKER", "MOBILE_MLOPS_CELERY_BACKEND"
MODEL_TAG = "mobile-mlops/model"  # the run queue limits concurrent runs per value (deploy/services/dagster.yaml)
# A worker killed mid-step leaves its task unacknowledged: the broker hands it to another worker, which runs the
# step again from the start (steps write atomically, so the killed attempt left nothing half-written).
CELERY_SETTINGS = {"task_acks_late": True, "task_reject_on_worker_lost": True, "worker_prefetch_multiplier": 1}


def executor():
    """The step executor the environment selects: one process per step here, or Celery workers on a broker."""
    choice = os.environ.get(EXECUTOR_ENV, "multiprocess")
    if choice == "multiprocess":
        return EXECUTOR
    if choice != "celery":
        from pipelines.core.errors import PipelineError

        raise PipelineError(f"{EXECUTOR_ENV}={choice}: expected multiprocess or celery")
    from dagster_celery import celery_executor

    return celery_executor.configured({"broker": {"env": BROKER_ENV}, "backend": {"env": BACKEND_ENV},
                                       "config_source": CELERY_SETTINGS}, name="celery")


def build_definitions(settings: Settings, **extra) -> Definitions:
    """Assets from the stage catalog, the gates, the release job, schedule and sensor, bound to these settings."""
    nightly, sensor = automation(settings)
    job = define_asset_job(JOB, selection=list(STAGES), description="Data to release candidate.",
                           tags={MODEL_TAG: settings.params.release.model_name})
    return Definitions(assets=[*pipeline_assets(settings), *partition_assets(settings), *fleet_assets(settings)],
                       jobs=[job],
                       schedules=[nightly], sensors=[sensor, telemetry_sensor(settings)],
                       resources={"settings": SettingsResource.of(settings)}, executor=executor(),
                       **extra)


def materialize_all(settings: Settings, **kwargs):
    """Every asset and gate, bound to these settings, materialized in this process (tests and benchmarks)."""
    from dagster import materialize

    built = build_definitions(settings)
    stages = [a for a in built.assets if not set(k.to_user_string() for k in a.keys) & set(NOT_STAGES)]  # type: ignore[union-attr]
    return materialize(stages, resources=built.resources, **kwargs)  # type: ignore[arg-type]  # AssetsDefinitions only
