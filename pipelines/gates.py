"""Release gates: thresholds from params, one verdict each, with the reason."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from pipelines.config import GatesConfig
from pipelines.errors import PipelineError


@dataclass(frozen=True)
class GateResult:
    name: str
    passed: bool
    measured: float
    threshold: float
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _at_least(name: str, key: str, measured: float, threshold: float, what: str) -> GateResult:
    passed = measured >= threshold
    verb = "meets" if passed else "is below"
    return GateResult(name, passed, measured, threshold, f"{what} {measured:.4f} {verb} gates.{key} = {threshold:.4f}")


def model_gates(evaluation: dict[str, Any], gates: GatesConfig) -> list[GateResult]:
    """Gates on the float model's test metrics."""
    return [_at_least("min_accuracy", "min_accuracy", evaluation["overall"]["accuracy"], gates.min_accuracy, "test accuracy")]


def variant_gates(tflite: dict[str, Any], gates: GatesConfig) -> list[GateResult]:
    """Gates on every converted TFLite variant: agreement with the float model."""
    return [
        _at_least(f"min_agreement[{name}]", "min_agreement", report["agreement_with_keras"], gates.min_agreement, f"{name} agreement")
        for name, report in tflite["variants"].items()
    ]


def require_all(results: list[GateResult]) -> None:
    """Stop the release at the first failed gate, naming it."""
    for result in results:
        if not result.passed:
            raise PipelineError(f"gate {result.name} failed: {result.detail}")
