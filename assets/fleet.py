"""Post-release assets (group `fleet`): daily telemetry partitions, the canary / A-B decision, observed FinOps
and production drift: catalog entries of kind post_release (pipelines/catalog.py), built like every stage; dvc.yaml
and the release job leave them out. The sensor adds a partition per telemetry day."""

from dagster import (
    AssetKey,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    sensor,
)

from assets.automation import sensor_status
from assets.resources import SettingsResource
from assets.stages import FLEET_DAYS, stage_asset
from pipelines.catalog import POST_RELEASE
from pipelines.core.config import Settings
from pipelines.fleet import steps, store

DAYS = FLEET_DAYS  # one partition per telemetry day


def fleet_assets(settings: Settings) -> list:
    """fleet_telemetry, canary_analysis, observed_finops and production_drift bound to these settings."""
    return [stage_asset(name, settings) for name in POST_RELEASE]


def telemetry_sensor(settings: Settings):
    @sensor(asset_selection=[AssetKey("fleet_telemetry")], minimum_interval_seconds=
            settings.params.automation.sensor_interval_seconds, default_status=sensor_status(),
            description="Adds a fleet_telemetry partition for each new day folder and materializes it.")
    def fleet_telemetry_sensor(context: SensorEvaluationContext, settings: SettingsResource) -> SensorResult:
        known = set(context.instance.get_dynamic_partitions(DAYS.name))  # type: ignore[arg-type]  # named at definition
        new = [d for d in store.days(steps.telemetry_dir(settings.load())) if d not in known]
        return SensorResult(run_requests=[RunRequest(partition_key=d, run_key=f"fleet-{d}") for d in new],
                            dynamic_partitions_requests=[DAYS.build_add_request(new)] if new else [])

    return fleet_telemetry_sensor
