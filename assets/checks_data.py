"""Check results for the data assets, built from the reports the steps wrote."""
from __future__ import annotations

from dagster import AssetCheckResult, AssetCheckSeverity, MetadataValue

from pipelines.config import Settings
from pipelines.expectations import describe_failure
from pipelines.io import read_json
from pipelines.paths import ArtifactPaths
from pipelines.plots import data_uri_markdown
from pipelines.steps.data import expectations_table
from pipelines.steps.drift import drift_message, drift_table


def drift_check(settings: Settings) -> AssetCheckResult:
    """Fails (ERROR, so it blocks) on drift when drift.blocking, else warns; passes with the reason when no reference."""
    paths = ArtifactPaths(settings.root)
    report = read_json(paths.drift_report)
    severity = AssetCheckSeverity.ERROR if report["blocking"] else AssetCheckSeverity.WARN
    description = drift_message(report) if report["drift"] else (
        f"no drift against {report['reference']}" if report["reference"] else report["reason"])
    metadata = {"drift": MetadataValue.md(drift_table(report)), "reference": MetadataValue.text(report["reason"])}
    if paths.drift_plot.is_file():
        metadata["psi_chart"] = MetadataValue.md(data_uri_markdown(paths.drift_plot, "PSI per feature"))
    return AssetCheckResult(passed=not report["drift"], severity=severity, description=description, metadata=metadata)


def expectations_check(settings: Settings) -> AssetCheckResult:
    """Pass/fail of the expectation suite, with every failed expectation and example values."""
    report = read_json(ArtifactPaths(settings.root).validation_report)
    outcome = report["expectations"]
    failed = outcome["failed"]
    return AssetCheckResult(
        check_name="expectations",
        passed=bool(report["success"]),
        severity=AssetCheckSeverity.ERROR,
        description=describe_failure(outcome) if failed else f"all {outcome['evaluated']} expectations passed",
        metadata={"expectations": MetadataValue.md(expectations_table(outcome)),
                  "failed": MetadataValue.int(len(failed)), "evaluated": MetadataValue.int(outcome["evaluated"])},
    )
