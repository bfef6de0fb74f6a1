"""Release assets: the candidate folder with manifest and lineage."""
from __future__ import annotations

from dagster import MaterializeResult, asset

from assets.mobile import coreml_model, tflite_model
from assets.resources import SettingsResource
from assets.results import to_result
from assets.data import data_drift, raw_dataset, validated_dataset
from assets.training import model_evaluation, trained_model
from pipelines.steps import release


@asset(group_name="release", deps=[raw_dataset, validated_dataset, data_drift, trained_model, model_evaluation, tflite_model, coreml_model], code_version="1")
def release_candidate(settings: SettingsResource) -> MaterializeResult:
    """The release candidate: model files, feature spec, reports and a manifest with hashes and lineage."""
    return to_result(release.release_candidate(settings.load()))
