"""FinOps asset: what the release costs per month, what the run cost, where inference should run."""
from __future__ import annotations

from dagster import MaterializeResult, asset

from assets.data import data_drift, dataset_splits, raw_dataset, validated_dataset
from assets.governance import fairness_report, fairness_tradeoff, feature_importance, model_card
from assets.mobile import coreml_model, footprint_report, offload_policy, tflite_model
from assets.resources import OWNERS, SettingsResource
from assets.results import to_result
from assets.training import model_evaluation, trained_model
from pipelines.steps import finops
from pipelines.versions import stage_code_version

# Every step before this one: the report sums their measured compute (reports/metrics/<step>.json).
UPSTREAM = [raw_dataset, validated_dataset, data_drift, dataset_splits, trained_model, model_evaluation, tflite_model,
            coreml_model, footprint_report, offload_policy, fairness_tradeoff, fairness_report, feature_importance,
            model_card]


@asset(group_name="finops", owners=OWNERS, deps=UPSTREAM, code_version=stage_code_version("finops_report"))
def finops_report(settings: SettingsResource) -> MaterializeResult:
    """Monthly cost per variant and of the release, the run's compute cost, the placement matrix, budgets."""
    return to_result(finops.finops_report(settings.load()))
