"""The pipeline's assets, one per catalog stage: deps, group, owner, code version and description come from the
stage catalog (pipelines/catalog.py); each asset calls its step function and returns its metadata."""
from __future__ import annotations

from collections.abc import Callable

from dagster import (
    AssetCheckSpec,
    AssetKey,
    AssetsDefinition,
    AssetSpec,
    DataVersion,
    MaterializeResult,
    ObserveResult,
    asset,
    multi_observable_source_asset,
)

from assets.checks import GATES, expectations_check, gate_result, gate_spec
from assets.metadata import to_result
from assets.resources import SettingsResource
from pipelines.catalog import INCOMING, SOURCE, STAGES, parents, step_function
from pipelines.code_versions import stage_code_version
from pipelines.core.config import Settings
from pipelines.core.lock import project_lock
from pipelines.data.load import source_files
from pipelines.data.partitions import is_incoming
from pipelines.data.validate import ValidationFailed


def _run(name: str, **step_args) -> Callable[..., MaterializeResult]:
    def compute(settings: SettingsResource) -> MaterializeResult:
        loaded = settings.load()
        with project_lock(loaded.root, wait=True):  # a UI/schedule run's step waits while a CLI or DVC run works
            step = step_function(name)(loaded, **step_args)
        return to_result(step, check_results=[gate_result(name, loaded)] if name in GATES else None)

    return compute


def _validated(settings: SettingsResource):
    loaded = settings.load()
    try:
        with project_lock(loaded.root, wait=True):
            step = step_function("validated_dataset")(loaded)
    except ValidationFailed:
        yield expectations_check(loaded)  # recorded with its failures, then the step fails
        raise
    yield to_result(step, check_results=[expectations_check(loaded)])


# One line per stage (a new stage adds one); special glue only where a stage needs it.
COMPUTE: dict[str, Callable] = {
    "raw_dataset": _run("raw_dataset"),
    "validated_dataset": _validated,  # records the expectations check even when validation fails
    "data_drift": _run("data_drift", raise_on_drift=False),  # its drift_gate check blocks, per drift.blocking
    "dataset_splits": _run("dataset_splits"),
    "trained_model": _run("trained_model"),
    "model_evaluation": _run("model_evaluation"),
    "tflite_model": _run("tflite_model"),
    "coreml_model": _run("coreml_model"),
    "footprint_report": _run("footprint_report"),
    "offload_policy": _run("offload_policy"),
    "fairness_tradeoff": _run("fairness_tradeoff"),
    "fairness_report": _run("fairness_report"),
    "feature_importance": _run("feature_importance"),
    "model_card": _run("model_card"),
    "finops_report": _run("finops_report"),
    "release_candidate": _run("release_candidate"),
}
EXTRA = {"validated_dataset": {"check_specs": [AssetCheckSpec(
    "expectations", asset="validated_dataset", blocking=True,
    description="The Great Expectations suite (validate.suite) passes on the raw rows.")]}} | {
    name: {"check_specs": [gate_spec(name)]} for name in GATES}


def _tags(settings: Settings) -> dict[str, str]:
    """The FinOps tag set of params `project` (the owner is shown as `owners`)."""
    return {k: v for k, v in settings.params.project.tags().items() if k != "owner"}


def stage_asset(name: str, settings: Settings) -> AssetsDefinition:
    """The asset of one catalog stage."""
    stage = STAGES[name]
    deps = [AssetKey(p) for p in sorted(parents(name))]
    if name == "raw_dataset" and is_incoming(settings.params.data, settings):
        deps += [AssetKey(k) for k in INCOMING]  # data.source is the daily files' folder: it reads accepted days
    return asset(name=name, group_name=stage.group, description=stage.description,
                 owners=[settings.params.project.owner], deps=deps,
                 code_version=stage_code_version(name, settings), kinds=set(stage.tools), tags=_tags(settings),
                 **EXTRA.get(name, {}))(COMPUTE[name])


def source_asset(settings: Settings) -> AssetsDefinition:
    """The source files params name, observed by their DVC md5 (a spec-based observable asset, so it has an owner)."""
    spec = AssetSpec(SOURCE, group_name="data", owners=[settings.params.project.owner], code_version="1",
                     description="The source files named in params (md5 as DVC records it).", kinds={"dvc"},
                     tags=_tags(settings))

    @multi_observable_source_asset(specs=[spec])
    def source_data(settings: SettingsResource):
        yield ObserveResult(asset_key=SOURCE,
                            data_version=DataVersion("+".join(source_files(settings.load()).values()) or "missing"))

    return source_data


def pipeline_assets(settings: Settings) -> list[AssetsDefinition]:
    """The source asset, then every catalog stage's asset in execution order."""
    missing = set(STAGES) ^ set(COMPUTE)
    if missing:
        raise RuntimeError(f"assets/stages.py COMPUTE and the stage catalog differ on: {', '.join(sorted(missing))}")
    return [source_asset(settings), *(stage_asset(name, settings) for name in STAGES)]
