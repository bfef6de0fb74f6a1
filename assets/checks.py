"""Blocking gates: a failed check stops every asset downstream of it."""
from __future__ import annotations

from dagster import AssetCheckResult, MetadataValue, asset_check

from assets.checks_data import drift_check
from assets.data import data_drift
from assets.governance import fairness_report
from assets.mobile import footprint_report, tflite_model
from assets.resources import SettingsResource
from assets.training import model_evaluation
from pipelines.gates import GateResult, footprint_gates, model_gates, variant_gates
from pipelines.io import read_json
from pipelines.paths import ArtifactPaths


def _result(gates: list[GateResult]) -> AssetCheckResult:
    failed = [g for g in gates if not g.passed]
    table = "| gate | measured | threshold | verdict |\n|---|---|---|---|\n" + "\n".join(
        f"| {g.name} | {g.measured:.4f} | {g.threshold:.4f} | {'pass' if g.passed else 'FAIL'} |" for g in gates
    )
    return AssetCheckResult(
        passed=not failed,
        description="; ".join(g.detail for g in failed) or "all gates passed",
        metadata={"gates": MetadataValue.md(table), "failed": MetadataValue.int(len(failed))},
    )


@asset_check(asset=model_evaluation, blocking=True)
def accuracy_gate(settings: SettingsResource) -> AssetCheckResult:
    """The Keras model's test accuracy meets gates.min_accuracy."""
    loaded = settings.load()
    report = read_json(ArtifactPaths(loaded.root).evaluation_report)
    return _result(model_gates(report, loaded.params.gates))


@asset_check(asset=tflite_model, blocking=True)
def agreement_gate(settings: SettingsResource) -> AssetCheckResult:
    """Every TFLite variant agrees with the Keras model on at least gates.min_agreement of test rows."""
    loaded = settings.load()
    report = read_json(ArtifactPaths(loaded.root).tflite_report)
    return _result(variant_gates(report, loaded.params.gates))


@asset_check(asset=data_drift, blocking=True)
def drift_gate(settings: SettingsResource) -> AssetCheckResult:
    """Today's data has not drifted from the reference release (blocks only when drift.blocking)."""
    return drift_check(settings.load())


@asset_check(asset=footprint_report, blocking=True)
def footprint_gate(settings: SettingsResource) -> AssetCheckResult:
    """Each platform has a released variant: the smallest passing accuracy, fairness and footprint budgets."""
    loaded = settings.load()
    report = read_json(ArtifactPaths(loaded.root).footprint_report)
    return _result(footprint_gates(report, loaded.params.footprint))


@asset_check(asset=fairness_report, blocking=True)
def fairness_gate(settings: SettingsResource) -> AssetCheckResult:
    """Keras and every TFLite variant meet the parity, equalized-odds and per-group accuracy-drop limits."""
    from pipelines.fairness import fairness_gates, flagged_text

    loaded = settings.load()
    report = read_json(ArtifactPaths(loaded.root).fairness_report)
    result = _result(fairness_gates(report, loaded.params.fairness.gates))
    flagged = flagged_text(report)
    return AssetCheckResult(passed=result.passed, description=f"{result.description}; {flagged}",
                            metadata={**result.metadata, "flagged groups": MetadataValue.text(flagged)})


@asset_check(asset="finops_report", blocking=True)
def budget_gate(settings: SettingsResource) -> AssetCheckResult:
    """The release fits the FinOps budgets (monthly $, MB per device, model bytes); blocks when finops.budgets.blocking."""
    from dagster import AssetCheckSeverity

    from pipelines.finops import budget_gates

    loaded = settings.load()
    report = read_json(ArtifactPaths(loaded.root).cost_report)
    result = _result(budget_gates(report["release"], loaded.params.finops))
    blocking = loaded.params.finops.budgets.blocking
    return AssetCheckResult(passed=result.passed, severity=AssetCheckSeverity.ERROR if blocking else AssetCheckSeverity.WARN,
                            description=result.description + ("" if blocking or result.passed else
                                                              " (warning: finops.budgets.blocking is false)"),
                            metadata=result.metadata)
