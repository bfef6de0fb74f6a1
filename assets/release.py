"""Release assets: the candidate folder with manifest and lineage."""
from __future__ import annotations

from dagster import MaterializeResult, asset

from assets.mobile import coreml_model, footprint_report, offload_policy, tflite_model
from assets.resources import OWNERS, SettingsResource
from assets.results import to_result
from assets.data import data_drift, raw_dataset, validated_dataset
from assets.finops import finops_report
from assets.governance import fairness_report, fairness_tradeoff, model_card
from assets.training import model_evaluation, trained_model
from pipelines.steps import release
from pipelines.versions import stage_code_version


@asset(group_name="release", owners=OWNERS, deps=[raw_dataset, validated_dataset, data_drift, trained_model, model_evaluation, tflite_model, coreml_model, footprint_report, offload_policy, fairness_report, fairness_tradeoff, model_card, finops_report], code_version=stage_code_version("release_candidate"))
def release_candidate(settings: SettingsResource) -> MaterializeResult:
    """The release candidate: model files, feature spec, reports and a manifest with hashes and lineage."""
    return to_result(release.release_candidate(settings.load()))
