"""Post-release assets (group `fleet`): daily telemetry partitions, the canary / A-B decision, observed FinOps
and production drift. They are not catalog stages (pipelines.catalog.POST_RELEASE): no dvc.yaml stage."""

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    DynamicPartitionsDefinition,
    MaterializeResult,
    MetadataValue,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    asset,
    sensor,
)

from assets.automation import sensor_status
from assets.resources import SettingsResource
from assets.stages import _tags
from pipelines.code_versions import package_code_version
from pipelines.core.config import Settings
from pipelines.core.plots import data_uri_markdown
from pipelines.fleet import steps, store

DAYS = DynamicPartitionsDefinition(name="fleet_day")
GROUP = "fleet"


def _md_table(rows: list[dict]) -> str:
    if not rows:
        return "(none)"
    keys = list(rows[0])
    fmt = (lambda v: f"{v:.4g}" if isinstance(v, float) else "" if v is None else str(v))
    return "\n".join(["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)] +
                     ["| " + " | ".join(fmt(r[k]) for k in keys) + " |" for r in rows])


def fleet_assets(settings: Settings) -> list:
    owners, version = [settings.params.project.owner], package_code_version("fleet")
    common = {"group_name": GROUP, "owners": owners, "code_version": version, "tags": _tags(settings)}

    @asset(partitions_def=DAYS, kinds={"parquet"}, **common)
    def fleet_telemetry(context: AssetExecutionContext, settings: SettingsResource) -> MaterializeResult:
        """One day of accepted fleet telemetry (device-day records, daily-partitioned Parquet)."""
        facts = steps.telemetry_day(settings.load(), context.partition_key)
        return MaterializeResult(metadata={
            "rows": facts["rows"], "devices": facts["devices"], "quarantined_rows": facts["quarantined_rows"],
            "batch_files": facts["files"], "cohorts": MetadataValue.md(_md_table(facts["cohorts"]))})

    @asset(deps=[AssetKey("fleet_telemetry")], kinds={"scipy"}, check_specs=[AssetCheckSpec(
        "guardrails", asset="canary_analysis", blocking=True,
        description="No guardrail is breached (a breach decides rollback).")], **common)
    def canary_analysis(settings: SettingsResource):
        """Canary vs production (and A/B) on every guardrail with an anytime-valid sequential test."""
        loaded = settings.load()
        report = steps.canary_analysis(loaded)
        chart = loaded.resolve(report["chart"])
        metadata = {"decision": report["decision"], "stage": report["stage"], "version": report["version"],
                    "until": report["until"], "guardrails": MetadataValue.md(report["table"]),
                    "reasons": MetadataValue.md("\n".join(f"- {r}" for r in report["reasons"])),
                    "guardrails over time": MetadataValue.md(data_uri_markdown(chart, "guardrails over time"))}
        if "ab" in report:
            metadata["a/b"] = MetadataValue.md(report["ab"]["table"])
        yield MaterializeResult(metadata=metadata)
        yield AssetCheckResult(check_name="guardrails", passed=report["decision"] != "rollback",
                               metadata={"decision": report["decision"]})

    @asset(deps=[AssetKey("fleet_telemetry")], kinds={"pandas"}, check_specs=[AssetCheckSpec(
        "observed_budget", asset="observed_finops", blocking=True,
        description="Observed spend and traffic stay within gates.budgets.")], **common)
    def observed_finops(settings: SettingsResource):
        """Observed monthly cost, traffic and battery from telemetry beside cost.json's estimates."""
        loaded = settings.load()
        report = steps.fleet_observed_finops(loaded)
        chart = loaded.resolve(report["chart"])
        yield MaterializeResult(metadata={
            "observed vs estimated": MetadataValue.md(_md_table(report["comparison"])),
            "chart": MetadataValue.md(data_uri_markdown(chart, "observed vs estimated cost")),
            "budgets": MetadataValue.md(_md_table(report["budgets"]))})
        yield AssetCheckResult(check_name="observed_budget", passed=not report["over_budget"],
                               severity=AssetCheckSeverity.ERROR if loaded.params.gates.budgets.blocking
                               else AssetCheckSeverity.WARN,
                               metadata={"over_budget": ", ".join(report["over_budget"]) or "none"})

    @asset(deps=[AssetKey("fleet_telemetry")], kinds={"scipy"}, check_specs=[AssetCheckSpec(
        "no_production_drift", asset="production_drift", blocking=True,
        description="DP-noised production inputs match the release's reference profile.")], **common)
    def production_drift(settings: SettingsResource):
        """PSI of DP-noised production input histograms against the release's reference profile."""
        report = steps.fleet_production_drift(settings.load())
        rows = [{"feature": n, "psi": f.get("psi"), "drift": f.get("drift")} for n, f in report["features"].items()]
        yield MaterializeResult(metadata={"drift": report["drift"], "psi": MetadataValue.md(_md_table(rows))})
        yield AssetCheckResult(check_name="no_production_drift", passed=not report["drift"],
                               metadata={"drifted": ", ".join(report["drifted"]) or "none"})

    return [fleet_telemetry, canary_analysis, observed_finops, production_drift]


def telemetry_sensor(settings: Settings):
    @sensor(asset_selection=[AssetKey("fleet_telemetry")], minimum_interval_seconds=
            settings.params.automation.sensor_interval_seconds, default_status=sensor_status(),
            description="Adds a fleet_telemetry partition for each new day folder and materializes it.")
    def fleet_telemetry_sensor(context: SensorEvaluationContext, settings: SettingsResource) -> SensorResult:
        known = set(context.instance.get_dynamic_partitions(DAYS.name))
        new = [d for d in store.days(steps.telemetry_dir(settings.load())) if d not in known]
        return SensorResult(run_requests=[RunRequest(partition_key=d, run_key=f"fleet-{d}") for d in new],
                            dynamic_partitions_requests=[DAYS.build_add_request(new)] if new else [])

    return fleet_telemetry_sensor
