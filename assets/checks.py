"""Blocking gates: a failed check stops every asset downstream of it. Thresholds come from params `gates`.

Each gate is a check of the asset it judges, evaluated in that asset's own step right after the step function
(`check_specs` on the asset): a separate check step cost Dagster ~0.2 s of event-log writes for a few
milliseconds of work, six times a run."""
from __future__ import annotations

from collections.abc import Callable

from dagster import AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, MetadataValue

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


def strength_gate(loaded: Settings) -> AssetCheckResult:
    """With fairness.strength auto, a strength met the fairness limit and gates.keras on the validation rows."""
    from pipelines.core.paths import MITIGATION_FILE
    from pipelines.training.strength import strength_gate as gate

    result = gate(read_json(ArtifactPaths(loaded.root).trained_model / MITIGATION_FILE))
    return AssetCheckResult(passed=result.passed, description=result.detail,
                            metadata={"gates": MetadataValue.md(gates_table([result]))})


def accuracy_gate(loaded: Settings) -> AssetCheckResult:
    """The Keras model's test accuracy meets gates.keras.min_accuracy."""
    report = read_json(ArtifactPaths(loaded.root).evaluation_report)
    return _result(model_gates(report, loaded.params.gates.keras))


def agreement_gate(loaded: Settings) -> AssetCheckResult:
    """Every TFLite variant agrees with the Keras model on at least gates.conversion.min_agreement_with_keras."""
    report = read_json(ArtifactPaths(loaded.root).tflite_report)
    return _result(variant_gates(report, loaded.params.gates.conversion))


def drift_gate(loaded: Settings) -> AssetCheckResult:
    """Today's data has not drifted from the reference release (blocks only when drift.blocking)."""
    from pipelines.data.steps import drift_message, drift_table

    paths = ArtifactPaths(loaded.root)
    report = read_json(paths.drift_report)
    severity = AssetCheckSeverity.ERROR if report["blocking"] else AssetCheckSeverity.WARN
    description = drift_message(report) if report["drift"] else (
        f"no drift against {report['reference']}" if report["reference"] else report["reason"])
    metadata = {"drift": MetadataValue.md(drift_table(report)), "reference": MetadataValue.text(report["reason"])}
    if paths.drift_plot.is_file():
        metadata["psi_chart"] = MetadataValue.md(data_uri_markdown(paths.drift_plot, "PSI per feature"))
    return AssetCheckResult(passed=not report["drift"], severity=severity,
                            description=description, metadata=metadata)


def footprint_gate(loaded: Settings) -> AssetCheckResult:
    """Each platform has a released variant: the smallest passing gates.on_device."""
    report = read_json(ArtifactPaths(loaded.root).footprint_report)
    return _result(footprint_gates(report, loaded.params.gates.on_device))


def fairness_gate(loaded: Settings) -> AssetCheckResult:
    """Keras and every TFLite variant meet gates.fairness: parity, equalized odds, per-group accuracy drop."""
    from pipelines.governance.fairness import compact_failures, fairness_gates, flagged_text

    report = read_json(ArtifactPaths(loaded.root).fairness_report)
    gates = fairness_gates(report, loaded.params.gates.fairness)
    result, flagged = _result(gates), flagged_text(report)
    line = compact_failures(report, gates) or result.description  # one line; every model's detail in metadata
    return AssetCheckResult(passed=result.passed, description=f"{line}; {flagged}",
                            metadata={**result.metadata, "flagged groups": MetadataValue.text(flagged),
                                      "detail": MetadataValue.md("\n".join(f"- {g.detail}" for g in gates
                                                                           if not g.passed) or "all gates passed")})


def budget_gate(loaded: Settings) -> AssetCheckResult:
    """The release fits gates.budgets (monthly $, MB per device, model bytes); blocks when gates.budgets.blocking."""
    from pipelines.finops.cost import budget_gates

    budgets = loaded.params.gates.budgets
    gates = budget_gates(read_json(ArtifactPaths(loaded.root).cost_report)["release"], budgets)
    severity = AssetCheckSeverity.ERROR if budgets.blocking else AssetCheckSeverity.WARN
    result = _result(gates, severity=severity)
    if budgets.blocking or result.passed:
        return result
    return AssetCheckResult(passed=False, severity=AssetCheckSeverity.WARN,
                            metadata=result.metadata,
                            description=result.description + " (warning: gates.budgets.blocking is false)")


# The asset each gate judges, and the check's name there (the one place a gate's name is written).
GATES: dict[str, tuple[str, Callable[[Settings], AssetCheckResult]]] = {
    "trained_model": ("fairness_gate", strength_gate), "model_evaluation": ("accuracy_gate", accuracy_gate),
    "tflite_model": ("agreement_gate", agreement_gate), "data_drift": ("drift_gate", drift_gate),
    "footprint_report": ("footprint_gate", footprint_gate), "fairness_report": ("fairness_gate", fairness_gate),
    "finops_report": ("budget_gate", budget_gate)}


def gate_spec(asset: str) -> AssetCheckSpec:
    """The blocking check spec of the asset's gate (its docstring is the description the UI shows)."""
    name, gate = GATES[asset]
    return AssetCheckSpec(name, asset=asset, blocking=True, description=gate.__doc__)


def gate_result(asset: str, loaded: Settings) -> AssetCheckResult:
    """The asset's gate evaluated on what its step just wrote, under the check name GATES gives it."""
    name, gate = GATES[asset]
    return gate(loaded)._replace(check_name=name)


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
