"""Training assets: the Keras model registered in MLflow, and its evaluation."""
from __future__ import annotations

from dagster import MaterializeResult, asset

from assets.data import data_drift, dataset_splits
from assets.resources import OWNERS, SettingsResource
from assets.results import to_result
from pipelines.steps import model
from pipelines.versions import stage_code_version


@asset(group_name="training", owners=OWNERS, deps=[dataset_splits, data_drift], code_version=stage_code_version("trained_model"))
def trained_model(settings: SettingsResource) -> MaterializeResult:
    """The seeded Keras model with its feature spec, logged and registered in MLflow as `candidate`."""
    return to_result(model.trained_model(settings.load()))


@asset(group_name="training", owners=OWNERS, deps=[dataset_splits, trained_model], code_version=stage_code_version("model_evaluation"))
def model_evaluation(settings: SettingsResource) -> MaterializeResult:
    """Test-split metrics of the Keras model, overall and per sensitive group."""
    return to_result(model.model_evaluation(settings.load()))
