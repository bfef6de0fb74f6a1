"""Incoming data as daily partitions (group `data`): `daily_batch`, one partition per landing file. A catalog entry
of kind incoming (pipelines/catalog.py): DVC tracks each accepted day by its own `.dvc` record, not a dvc.yaml
stage, and the release job leaves it out."""

from dagster import DailyPartitionsDefinition

from assets.stages import partitions_def, stage_asset
from pipelines.catalog import ASSETS, INCOMING
from pipelines.core.config import Settings

# Run tag of every daily_batch run: deploy/services/dagster.yaml gives it a concurrency limit of its own, so the
# days of a backfill run side by side without holding up the release job (limited per model by MODEL_TAG).
INGEST_TAG = "mobile-mlops/ingest"


def days(settings: Settings) -> DailyPartitionsDefinition:
    """One partition per day from data.incoming.start_date (UTC) to yesterday."""
    return partitions_def(ASSETS["daily_batch"], settings)


def partition_assets(settings: Settings) -> list:
    """The daily_batch asset bound to these settings (no backfill policy: a backfill runs one run per day, spread
    over the workers)."""
    return [stage_asset(name, settings) for name in INCOMING]
