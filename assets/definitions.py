"""The one Definitions object: what `dagster dev`, `mobile-mlops run` and the tests load."""
from __future__ import annotations

from dagster import AssetSpec, Definitions, define_asset_job, map_asset_specs, multiprocess_executor

from assets import automation, checks, data, finops, governance, mobile, release, training
from assets.resources import SettingsResource, project_tags

ALL_ASSETS = [
    data.source_data,
    data.raw_dataset,
    data.validated_dataset,
    data.data_drift,
    data.dataset_splits,
    training.trained_model,
    training.model_evaluation,
    mobile.tflite_model,
    mobile.coreml_model,
    mobile.footprint_report,
    mobile.offload_policy,
    governance.fairness_tradeoff,
    governance.fairness_report,
    governance.feature_importance,
    governance.model_card,
    finops.finops_report,
    release.release_candidate,
]
# Badges on the asset graph (what each asset is made with); every asset also carries params `project` tags.
KINDS = {
    "source_data": {"dvc"}, "raw_dataset": {"pandas", "parquet"}, "validated_dataset": {"greatexpectations", "parquet"},
    "data_drift": {"scipy", "matplotlib"}, "dataset_splits": {"parquet"}, "trained_model": {"keras", "mlflow"},
    "model_evaluation": {"scikitlearn", "matplotlib"}, "tflite_model": {"tflite"}, "coreml_model": {"coreml"},
    "footprint_report": {"matplotlib"}, "offload_policy": {"tflite"}, "fairness_tradeoff": {"fairlearn", "matplotlib"},
    "fairness_report": {"fairlearn"}, "feature_importance": {"tflite"}, "model_card": {"markdown"},
    "finops_report": {"kubernetes"},
    "release_candidate": {"json"},
}


def _labelled(spec: AssetSpec) -> AssetSpec:
    return spec.merge_attributes(tags=project_tags(), kinds=KINDS.get(spec.key.to_user_string(), set()))


ALL_ASSETS = list(map_asset_specs(_labelled, ALL_ASSETS))
ALL_CHECKS = [checks.accuracy_gate, checks.agreement_gate, checks.drift_gate, checks.footprint_gate, checks.fairness_gate,
              checks.budget_gate]

release_job = define_asset_job("release_job", selection=ALL_ASSETS[1:], description="Data to release candidate.")

# Runs launched from the UI or by schedules run each step in its own process. Forked from a server that
# has already imported this module, a step starts in well under a second instead of ~5 s (20 steps a run).
executor = multiprocess_executor.configured({"start_method": {"forkserver": {}}})

defs = Definitions(
    assets=ALL_ASSETS,
    asset_checks=ALL_CHECKS,
    jobs=[release_job],
    schedules=[automation.nightly_retraining],
    sensors=[automation.data_version_sensor],
    resources={"settings": SettingsResource()},
    executor=executor,
)
