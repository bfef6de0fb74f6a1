"""The pipeline's assets, one per catalog entry (stages, incoming partitions, post-release assets): deps, group,
owner, code version, description, partitions and gates come from the stage catalog (pipelines/catalog.py); each
asset calls its step function (which judges its gates) and returns its metadata and checks."""
from __future__ import annotations

import os
from collections.abc import Callable

from dagster import (
    AssetKey,
    AssetsDefinition,
    AssetSpec,
    DailyPartitionsDefinition,
    DataVersion,
    DynamicPartitionsDefinition,
    ObserveResult,
    asset,
    multi_observable_source_asset,
)

from assets.checks import gate_checks, gate_specs
from assets.metadata import to_result
from assets.resources import SettingsResource
from pipelines.catalog import ASSETS, INCOMING, SOURCE, STAGES, Stage, parents, step_function
from pipelines.code_versions import stage_code_version
from pipelines.core.config import Settings
from pipelines.core.lock import project_lock
from pipelines.core.tracing import RUN_ID_ENV
from pipelines.core.verdict import GateFailed
from pipelines.data.partitions import is_incoming
from pipelines.data.sources import source_files


def _materialize(name: str, loaded: Settings, run_id: str, *partition: str):
    os.environ[RUN_ID_ENV] = run_id  # the provenance and the step's trace span name the Dagster run
    try:
        with project_lock(loaded.root, wait=True):  # a UI/schedule run's step waits while a CLI or DVC run works
            step = step_function(name)(loaded, *partition)  # the step, then its gates and verdict
    except GateFailed as failed:
        if failed.result is None:  # the step itself failed on its gate (validation): the check, then the failure
            yield from gate_checks(name, loaded.root)
            raise
        step = failed.result  # materialized; its failed blocking check stops every asset downstream
    yield to_result(step, check_results=gate_checks(name, loaded.root) or None)


def _run(name: str) -> Callable:
    def compute(context, settings: SettingsResource):  # context unannotated: Dagster refuses a string annotation
        yield from _materialize(name, settings.load(), context.run_id)

    return compute


def _run_partition(name: str) -> Callable:
    def compute(context, settings: SettingsResource):  # context unannotated: Dagster refuses a string annotation
        yield from _materialize(name, settings.load(), context.run_id, context.partition_key)

    return compute


# One line per catalog entry (a new stage adds one); special glue only where a stage needs it.
COMPUTE: dict[str, Callable] = {
    "raw_dataset": _run("raw_dataset"),
    "validated_dataset": _run("validated_dataset"),  # records the expectations check even when validation fails
    "data_drift": _run("data_drift"),  # its drift_gate check blocks, per drift.blocking
    "dataset_splits": _run("dataset_splits"),
    "teacher_model": _run("teacher_model"),
    "trained_model": _run("trained_model"),
    "model_evaluation": _run("model_evaluation"),
    "tflite_model": _run("tflite_model"),
    "coreml_model": _run("coreml_model"),
    "onnx_model": _run("onnx_model"),
    "footprint_report": _run("footprint_report"),
    "offload_policy": _run("offload_policy"),
    "fairness_tradeoff": _run("fairness_tradeoff"),
    "fairness_report": _run("fairness_report"),
    "feature_importance": _run("feature_importance"),
    "model_card": _run("model_card"),
    "finops_report": _run("finops_report"),
    "release_candidate": _run("release_candidate"),
    "daily_batch": _run_partition("daily_batch"),  # the day's file (assets/partitions.py)
    "fleet_telemetry": _run_partition("fleet_telemetry"),  # the telemetry day (assets/fleet.py)
    "canary_analysis": _run("canary_analysis"),
    "observed_finops": _run("observed_finops"),
    "production_drift": _run("production_drift"),
}
FLEET_DAYS = DynamicPartitionsDefinition(name="fleet_day")  # the telemetry sensor adds one per day folder


def finops_tags(settings: Settings) -> dict[str, str]:
    """The FinOps tag set of params `project` (the owner is shown as `owners`): on every asset."""
    return {k: v for k, v in settings.params.project.tags().items() if k != "owner"}


def partitions_def(stage: Stage, settings: Settings):
    """The catalog entry's partitioning: daily from data.incoming.start_date (UTC), one per telemetry day, or none."""
    if stage.partitions == "daily":
        return DailyPartitionsDefinition(start_date=settings.params.data.incoming.start_date)
    return FLEET_DAYS if stage.partitions == "fleet_day" else None


def stage_asset(name: str, settings: Settings) -> AssetsDefinition:
    """The asset of one catalog entry (a stage, or an incoming or post-release asset)."""
    stage = ASSETS[name]
    deps = [AssetKey(p) for p in sorted(parents(name))]
    if name == "raw_dataset" and is_incoming(settings.params.data, settings):
        deps += [AssetKey(k) for k in INCOMING]  # data.source is the daily files' folder: it reads accepted days
    return asset(name=name, group_name=stage.group, description=stage.description,
                 owners=[settings.params.project.owner], deps=deps, partitions_def=partitions_def(stage, settings),
                 code_version=stage_code_version(name, settings), kinds=set(stage.tools), tags=finops_tags(settings),
                 check_specs=gate_specs(name) or None)(COMPUTE[name])


def source_asset(settings: Settings) -> AssetsDefinition:
    """The source files params name, observed by their DVC md5 (a spec-based observable asset, so it has an owner)."""
    spec = AssetSpec(SOURCE, group_name="data", owners=[settings.params.project.owner], code_version="1",
                     description="The source files named in params (md5 as DVC records it).", kinds={"dvc"},
                     tags=finops_tags(settings))

    @multi_observable_source_asset(specs=[spec])
    def source_data(settings: SettingsResource):
        yield ObserveResult(asset_key=SOURCE,
                            data_version=DataVersion("+".join(source_files(settings.load()).values()) or "missing"))

    return source_data


def pipeline_assets(settings: Settings) -> list[AssetsDefinition]:
    """The source asset, then every catalog stage's asset in execution order."""
    missing = set(ASSETS) ^ set(COMPUTE)
    if missing:
        raise RuntimeError(f"assets/stages.py COMPUTE and the stage catalog differ on: {', '.join(sorted(missing))}")
    return [source_asset(settings), *(stage_asset(name, settings) for name in STAGES)]
