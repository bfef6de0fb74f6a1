"""On-device assets: TFLite variants (run through LiteRT) and the Core ML package."""
from __future__ import annotations

from dagster import MaterializeResult, asset

from assets.resources import SettingsResource
from assets.results import to_result
from assets.data import dataset_splits
from assets.training import model_evaluation, trained_model
from pipelines.steps import mobile


@asset(group_name="mobile", deps=[dataset_splits, trained_model, model_evaluation], code_version="1")
def tflite_model(settings: SettingsResource) -> MaterializeResult:
    """Float32 and full-integer int8 TFLite models, builtin ops only, evaluated with LiteRT on the test split."""
    return to_result(mobile.tflite_model(settings.load()))


@asset(group_name="mobile", deps=[trained_model, model_evaluation], code_version="1")
def coreml_model(settings: SettingsResource) -> MaterializeResult:
    """Float16 Core ML ML Program with its spec checked (prediction needs macOS)."""
    return to_result(mobile.coreml_model(settings.load()))
