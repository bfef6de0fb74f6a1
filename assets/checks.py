"""Blocking gates: a failed check stops every asset downstream of it. Thresholds come from params `gates`."""
from __future__ import annotations

from dagster import AssetCheckResult, AssetCheckSeverity, MetadataValue, asset_check

from assets.resources import SettingsResource
from pipelines.core.config import Settings
from pipelines.core.gates import (
    GateResult,
    footprint_gates,
    gates_table,
    model_gates,
    variant_gates,
)
from pipelines.core.io import read_json
from pipelines.core.paths import ArtifactPaths
from pipelines.core.plots import data_uri_markdown


def _result(gates: list[GateResult], **extra) -> AssetCheckResult:
    failed = [g for g in gates if not g.passed]
    return AssetCheckResult(
        passed=not failed,
        description="; ".join(g.detail for g in failed) or "all gates passed",
        metadata={"gates": MetadataValue.md(gates_table(gates)), "failed": MetadataValue.int(len(failed))},
        **extra,
    )


@asset_check(asset="trained_model", name="fairness_gate", blocking=True)
def strength_gate(settings: SettingsResource) -> AssetCheckResult:
    """With fairness.strength auto, a strength met the fairness limit and gates.keras on the validation rows."""
    from pipelines.core.paths import MITIGATION_FILE
    from pipelines.training.strength import strength_gate as gate

    result = gate(read_json(ArtifactPaths(settings.load().root).trained_model / MITIGATION_FILE))
    return AssetCheckResult(passed=result.passed, description=result.detail,
                            metadata={"gates": MetadataValue.md(gates_table([result]))})


@asset_check(asset="model_evaluation", blocking=True)
def accuracy_gate(settings: SettingsResource) -> AssetCheckResult:
    """The Keras model's test accuracy meets gates.keras.min_accuracy."""
    loaded = settings.load()
    return _result(model_gates(read_json(ArtifactPaths(loaded.root).evaluation_report), loaded.params.gates.keras))


@asset_check(asset="tflite_model", blocking=True)
def agreement_gate(settings: SettingsResource) -> AssetCheckResult:
    """Every TFLite variant agrees with the Keras model on at least gates.conversion.min_agreement_with_keras."""
    loaded = settings.load()
    return _result(variant_gates(read_json(ArtifactPaths(loaded.root).tflite_report), loaded.params.gates.conversion))


@asset_check(asset="data_drift", blocking=True)
def drift_gate(settings: SettingsResource) -> AssetCheckResult:
    """Today's data has not drifted from the reference release (blocks only when drift.blocking)."""
    from pipelines.data.steps import drift_message, drift_table

    paths = ArtifactPaths(settings.load().root)
    report = read_json(paths.drift_report)
    severity = AssetCheckSeverity.ERROR if report["blocking"] else AssetCheckSeverity.WARN
    description = drift_message(report) if report["drift"] else (
        f"no drift against {report['reference']}" if report["reference"] else report["reason"])
    metadata = {"drift": MetadataValue.md(drift_table(report)), "reference": MetadataValue.text(report["reason"])}
    if paths.drift_plot.is_file():
        metadata["psi_chart"] = MetadataValue.md(data_uri_markdown(paths.drift_plot, "PSI per feature"))
    return AssetCheckResult(passed=not report["drift"], severity=severity, description=description, metadata=metadata)


@asset_check(asset="footprint_report", blocking=True)
def footprint_gate(settings: SettingsResource) -> AssetCheckResult:
    """Each platform has a released variant: the smallest passing gates.on_device."""
    loaded = settings.load()
    report = read_json(ArtifactPaths(loaded.root).footprint_report)
    return _result(footprint_gates(report, loaded.params.gates.on_device))


@asset_check(asset="fairness_report", blocking=True)
def fairness_gate(settings: SettingsResource) -> AssetCheckResult:
    """Keras and every TFLite variant meet gates.fairness: parity, equalized odds, per-group accuracy drop."""
    from pipelines.governance.fairness import fairness_gates, flagged_text

    loaded = settings.load()
    report = read_json(ArtifactPaths(loaded.root).fairness_report)
    result = _result(fairness_gates(report, loaded.params.gates.fairness))
    flagged = flagged_text(report)
    return AssetCheckResult(passed=result.passed, description=f"{result.description}; {flagged}",
                            metadata={**result.metadata, "flagged groups": MetadataValue.text(flagged)})


@asset_check(asset="finops_report", blocking=True)
def budget_gate(settings: SettingsResource) -> AssetCheckResult:
    """The release fits gates.budgets (monthly $, MB per device, model bytes); blocks when gates.budgets.blocking."""
    from pipelines.finops.cost import budget_gates

    loaded = settings.load()
    budgets = loaded.params.gates.budgets
    gates = budget_gates(read_json(ArtifactPaths(loaded.root).cost_report)["release"], budgets)
    result = _result(gates, severity=AssetCheckSeverity.ERROR if budgets.blocking else AssetCheckSeverity.WARN)
    if budgets.blocking or result.passed:
        return result
    return AssetCheckResult(passed=False, severity=AssetCheckSeverity.WARN, metadata=result.metadata,
                            description=result.description + " (warning: gates.budgets.blocking is false)")


GATES = [strength_gate, accuracy_gate, agreement_gate, drift_gate, footprint_gate, fairness_gate, budget_gate]


def expectations_check(settings: Settings) -> AssetCheckResult:
    """Pass/fail of the expectation suite, with every failed expectation and example values."""
    from pipelines.data.expectations import describe_failure
    from pipelines.data.steps import expectations_table

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
