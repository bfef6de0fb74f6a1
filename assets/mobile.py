"""On-device assets: TFLite and Core ML variants, their footprint and selection, the hybrid offload policy."""
from __future__ import annotations

from dagster import MaterializeResult, asset

from assets.data import dataset_splits
from assets.resources import OWNERS, SettingsResource
from assets.results import to_result
from assets.training import model_evaluation, trained_model
from pipelines.steps import footprint, mobile
from pipelines.versions import stage_code_version


@asset(group_name="mobile", owners=OWNERS, deps=[dataset_splits, trained_model, model_evaluation], code_version=stage_code_version("tflite_model"))
def tflite_model(settings: SettingsResource) -> MaterializeResult:
    """TFLite variants (float32, float16, dynamic and full-integer int8), builtin ops only, scored and timed with LiteRT."""
    return to_result(mobile.tflite_model(settings.load()))


@asset(group_name="mobile", owners=OWNERS, deps=[dataset_splits, trained_model, model_evaluation], code_version=stage_code_version("coreml_model"))
def coreml_model(settings: SettingsResource) -> MaterializeResult:
    """Core ML variants (float16 ML Program, 8-bit linear, 6/4-bit palettized) with spec and reference-run metrics."""
    return to_result(mobile.coreml_model(settings.load()))


@asset(group_name="mobile", owners=OWNERS, deps=[trained_model, tflite_model, coreml_model], code_version=stage_code_version("footprint_report"))
def footprint_report(settings: SettingsResource) -> MaterializeResult:
    """Size, latency and device-tier estimates per variant; the smallest variant passing every gate per platform."""
    return to_result(footprint.footprint_report(settings.load()))


@asset(group_name="finops", owners=OWNERS, deps=[dataset_splits, trained_model, tflite_model], code_version=stage_code_version("offload_policy"))
def offload_policy(settings: SettingsResource) -> MaterializeResult:
    """Hybrid inference: on-device int8 answers unless |p - threshold| < delta; the delta grid and the chosen one."""
    return to_result(footprint.offload_policy(settings.load()))
