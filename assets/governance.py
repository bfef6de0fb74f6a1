"""Governance assets: the mitigation trade-off and baseline, per-group fairness of every variant, feature
importance and the model card."""
from __future__ import annotations

from dagster import MaterializeResult, asset

from assets.data import dataset_splits, raw_dataset, validated_dataset
from assets.mobile import footprint_report, tflite_model
from assets.resources import OWNERS, SettingsResource
from assets.results import to_result
from assets.training import trained_model
from pipelines.steps import governance
from pipelines.versions import stage_code_version


@asset(group_name="governance", owners=OWNERS, deps=[dataset_splits, trained_model],
       code_version=stage_code_version("fairness_tradeoff"))
def fairness_tradeoff(settings: SettingsResource) -> MaterializeResult:
    """Accuracy vs disparity over mitigation strengths, beside fairlearn's ExponentiatedGradient baseline."""
    return to_result(governance.fairness_tradeoff(settings.load()))


@asset(group_name="governance", owners=OWNERS, deps=[dataset_splits, trained_model, tflite_model],
       code_version=stage_code_version("fairness_report"))
def fairness_report(settings: SettingsResource) -> MaterializeResult:
    """Per-group metrics with bootstrap intervals for Keras and every TFLite variant, and each group's change."""
    return to_result(governance.fairness_report(settings.load()))


@asset(group_name="governance", owners=OWNERS, deps=[dataset_splits, trained_model, tflite_model],
       code_version=stage_code_version("feature_importance"))
def feature_importance(settings: SettingsResource) -> MaterializeResult:
    """Permutation importance of each raw input column, measured on the int8 variant through LiteRT."""
    return to_result(governance.feature_importance(settings.load()))


@asset(group_name="governance", owners=OWNERS,
       deps=[raw_dataset, validated_dataset, dataset_splits, trained_model, fairness_report, fairness_tradeoff,
             feature_importance, footprint_report],
       code_version=stage_code_version("model_card"))
def model_card(settings: SettingsResource) -> MaterializeResult:
    """The model card (Markdown and JSON): use, lineage, per-group metrics, mitigation, limits, privacy, compliance."""
    return to_result(governance.model_card(settings.load()))
