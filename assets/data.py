"""Data assets: the source files, the raw dataset, the validated dataset and the splits."""
from __future__ import annotations

from dagster import (AssetCheckSpec, AssetSpec, DataVersion, MaterializeResult, ObserveResult, asset,
                     multi_observable_source_asset)

from assets.checks_data import expectations_check
from assets.resources import OWNERS, SettingsResource
from assets.results import to_result
from pipelines.steps import data, drift
from pipelines.validate import ValidationFailed
from pipelines.versions import stage_code_version


# A spec-based observable asset (not @observable_source_asset) so it can carry owners and a code version.
@multi_observable_source_asset(specs=[AssetSpec(
    "source_data", group_name="data", owners=OWNERS, code_version="1",
    description="The source files named in params (md5 as DVC records it).")])
def source_data(settings: SettingsResource):
    yield ObserveResult(asset_key="source_data",
                        data_version=DataVersion("+".join(data.source_files(settings.load()).values()) or "missing"))


@asset(group_name="data", owners=OWNERS, deps=[source_data], code_version=stage_code_version("raw_dataset"))
def raw_dataset(settings: SettingsResource) -> MaterializeResult:
    """The source data as typed columns, labels normalized, PII and dropped columns removed."""
    return to_result(data.raw_dataset(settings.load()))


@asset(group_name="data", owners=OWNERS, deps=[raw_dataset], code_version=stage_code_version("validated_dataset"),
       check_specs=[AssetCheckSpec("expectations", asset="validated_dataset", blocking=True,
                                   description="The Great Expectations suite (validate.suite) passes on the raw rows.")])
def validated_dataset(settings: SettingsResource):
    """The raw dataset after the Great Expectations suite and invariants, incomplete rows dropped."""
    loaded = settings.load()
    try:
        step = data.validated_dataset(loaded)
    except ValidationFailed:
        yield expectations_check(loaded)  # recorded with its failures, then the step fails
        raise
    yield to_result(step, check_results=[expectations_check(loaded)])


@asset(group_name="data", owners=OWNERS, deps=[validated_dataset], code_version=stage_code_version("data_drift"))
def data_drift(settings: SettingsResource) -> MaterializeResult:
    """PSI and KS / chi-squared drift of today's data (and reference-model scores) against the reference release."""
    return to_result(drift.data_drift(settings.load(), raise_on_drift=False))  # the drift_gate check blocks


@asset(group_name="data", owners=OWNERS, deps=[validated_dataset], code_version=stage_code_version("dataset_splits"))
def dataset_splits(settings: SettingsResource) -> MaterializeResult:
    """Seeded, label-stratified train / validation / test splits as Parquet."""
    return to_result(data.dataset_splits(settings.load()))
