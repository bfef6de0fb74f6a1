"""Incoming data as daily partitions (group `data`): `daily_batch`, one partition per landing file. Not a catalog
stage (pipelines.catalog.INCOMING): DVC tracks each accepted day by its own `.dvc` record, not a dvc.yaml stage."""

from dagster import (
    AssetExecutionContext,
    DailyPartitionsDefinition,
    DataVersion,
    MaterializeResult,
    MetadataValue,
    asset,
)

from assets.metadata import markdown
from assets.resources import SettingsResource
from assets.stages import _tags
from pipelines.code_versions import package_code_version
from pipelines.core.config import Settings
from pipelines.data import steps

# Run tag of every daily_batch run: deploy/services/dagster.yaml gives it a concurrency limit of its own, so the
# days of a backfill run side by side without holding up the release job (limited per model by MODEL_TAG).
INGEST_TAG = "mobile-mlops/ingest"


def days(settings: Settings) -> DailyPartitionsDefinition:
    """One partition per day from data.incoming.start_date (UTC) to yesterday."""
    return DailyPartitionsDefinition(start_date=settings.params.data.incoming.start_date)


def partition_assets(settings: Settings) -> list:
    """The daily_batch asset bound to these settings."""

    @asset(partitions_def=days(settings), group_name="data", owners=[settings.params.project.owner],
           code_version=package_code_version("data"), kinds={"parquet", "dvc", "greatexpectations"},
           tags=_tags(settings))  # no backfill policy: a backfill runs one run per day, spread over the workers
    def daily_batch(context: AssetExecutionContext, settings: SettingsResource) -> MaterializeResult:
        """One day of incoming data (data.incoming.folder/YYYY-MM-DD), validated, drift-checked and DVC-recorded."""
        facts = steps.daily_batch(settings.load(), context.partition_key)
        return MaterializeResult(metadata={
            "path": MetadataValue.path(facts["path"]), "rows": facts["rows"], "raw_rows": facts["raw_rows"],
            "md5": facts["md5"], "positive_rate": facts["positive_rate"],
            "expectations_evaluated": facts["expectations_evaluated"], "suite": facts["suite"],
            "reference": facts["reference"], "drift": facts["drift"], "drifted": facts["drifted"],
            "drift_table": markdown(facts["drift_table"])}, data_version=DataVersion(facts["md5"]))

    return [daily_batch]
