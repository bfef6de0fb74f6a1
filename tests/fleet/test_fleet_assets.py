"""The Dagster fleet group: the sensor adds a partition per telemetry day, the assets materialize with their
checks and charts, and a production-drift report makes the nightly run retrain."""
from __future__ import annotations

import json
from pathlib import Path

from dagster import AssetKey, build_schedule_context, build_sensor_context, instance_for_test, materialize

from assets.build import build_definitions
from assets.fleet import DAYS
from assets.resources import SettingsResource
from pipelines.core.config import load_settings
from pipelines.fleet import rollout, simulate, steps

from .test_steps import _deploy


def _project(fleet_release, fleet_models, tmp_path: Path):
    _deploy(fleet_release.root, fleet_release.release)
    settings = load_settings(fleet_release.root / "params.yaml", {"fleet.directory": str(tmp_path / "telemetry")})
    _, frame, models = fleet_models
    sim = simulate.build(settings, fleet_release.release, devices=2000, seed=9, frame=frame, models=models)
    rollout.play(sim, settings.params.release.rollout, settings.params, days=3, start="2026-06-01",
                 directory=steps.telemetry_dir(settings), feature_devices=200)
    return settings


def test_sensor_partitions_and_fleet_assets_materialize(fleet_release, fleet_models, tmp_path: Path):
    settings = _project(fleet_release, fleet_models, tmp_path)
    defs = build_definitions(settings)
    resources = {"settings": SettingsResource.of(settings)}
    with instance_for_test() as instance:
        sensor = defs.resolve_sensor_def("fleet_telemetry_sensor")
        result = sensor(build_sensor_context(instance=instance, resources=resources))
        assert [r.partition_key for r in result.run_requests] == ["2026-06-01", "2026-06-02", "2026-06-03"]
        instance.add_dynamic_partitions(DAYS.name, ["2026-06-01", "2026-06-02", "2026-06-03"])
        fleet = [a for a in defs.assets if a.group_names_by_key.get(next(iter(a.keys))) == "fleet"]
        done = materialize(fleet[:1], instance=instance, resources=resources, partition_key="2026-06-02")
        assert done.success
        meta = done.asset_materializations_for_node("fleet_telemetry")[0].metadata
        assert meta["rows"].value > 1000 and meta["quarantined_rows"].value == 0
        done = materialize(fleet[1:], instance=instance, resources=resources, raise_on_error=False)
        assert done.success
        canary = done.asset_materializations_for_node("canary_analysis")[0].metadata
        assert canary["decision"].value in ("promote", "hold")
        assert "| crash_rate |" in canary["guardrails"].value
        assert canary["guardrails over time"].value.startswith("![guardrails over time](data:image/png;base64,")
        checks = {e.event_specific_data.check_name: e.event_specific_data.passed for e in done.all_events
                  if e.event_type_value == "ASSET_CHECK_EVALUATION"}
        assert checks == {"guardrails": True, "observed_budget": True, "no_production_drift": True}


def test_production_drift_makes_the_nightly_run_retrain(fleet_release, tmp_path: Path):
    settings = load_settings(fleet_release.root / "params.yaml")
    report = steps.reports_dir(settings) / "production_drift.json"
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(json.dumps({"drift": True, "drifted": ["age"]}))
    defs = build_definitions(settings)
    nightly = defs.resolve_schedule_def("nightly_retraining")
    try:
        with instance_for_test() as instance:
            request = nightly(build_schedule_context(instance=instance, repository_def=defs.get_repository_def(),
                                                     resources={"settings": SettingsResource.of(settings)}))
        assert request.run_key.startswith("production-drift-")
        assert "production drift" in request.tags["mobile-mlops/trigger"]
        assert AssetKey("trained_model") in request.asset_selection
        assert not {k.to_user_string() for k in request.asset_selection} & {"canary_analysis", "fleet_telemetry"}
    finally:
        report.unlink()
