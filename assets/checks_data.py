"""Check results for the data assets, built from the reports the steps wrote."""
from __future__ import annotations

from dagster import AssetCheckResult, AssetCheckSeverity, MetadataValue

from pipelines.config import Settings
from pipelines.io import read_json
from pipelines.paths import ArtifactPaths
from pipelines.steps.data import expectations_table


def expectations_check(settings: Settings) -> AssetCheckResult:
    """Pass/fail of the expectation suite, with every failed expectation and example values."""
    report = read_json(ArtifactPaths(settings.root).validation_report)
    outcome = report["expectations"]
    failed = outcome["failed"]
    return AssetCheckResult(
        check_name="expectations",
        passed=bool(report["success"]),
        severity=AssetCheckSeverity.ERROR,
        description=f"{len(failed)} of {outcome['evaluated']} expectations failed" if failed
        else f"all {outcome['evaluated']} expectations passed",
        metadata={"expectations": MetadataValue.md(expectations_table(outcome)),
                  "failed": MetadataValue.int(len(failed)), "evaluated": MetadataValue.int(outcome["evaluated"])},
    )
