"""The one Definitions object: what `dagster dev`, `mobile-mlops run` and the tests load."""
from __future__ import annotations

from dagster import Definitions, define_asset_job

from assets import automation, checks, data, mobile, release, training
from assets.resources import SettingsResource

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
    release.release_candidate,
]
ALL_CHECKS = [checks.accuracy_gate, checks.agreement_gate, checks.drift_gate, checks.footprint_gate]

release_job = define_asset_job("release_job", selection=ALL_ASSETS[1:], description="Data to release candidate.")

defs = Definitions(
    assets=ALL_ASSETS,
    asset_checks=ALL_CHECKS,
    jobs=[release_job],
    schedules=[automation.nightly_retraining],
    sensors=[automation.data_version_sensor],
    resources={"settings": SettingsResource()},
)
