"""Release gates: thresholds from params, one verdict each, with the reason."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from pipelines.core.config import ConversionGates, FairnessGates, KerasGates, Limit, OnDeviceGates
from pipelines.core.errors import PipelineError


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


def model_gates(evaluation: dict[str, Any], gates: KerasGates) -> list[GateResult]:
    """Gates on the float model's test accuracy: a floor, and the simple baselines it must beat or come close to."""
    accuracy, results = evaluation["overall"]["accuracy"], []
    if gates.min_accuracy is not None:
        results.append(_at_least("min_accuracy", "keras.min_accuracy", accuracy, gates.min_accuracy, "test accuracy"))
    simple = evaluation.get("baselines") or {}
    if gates.min_gain_over_majority is not None and "majority_class" in simple:
        majority = simple["majority_class"]["accuracy"]
        needed = majority + gates.min_gain_over_majority
        passed, note = _judged(accuracy >= needed, simple["majority_class"], gates.min_gain_over_majority)
        results.append(GateResult(
            "min_gain_over_majority", passed, accuracy, needed,
            f"test accuracy {accuracy:.4f} {'beats' if accuracy >= needed else 'does not beat'} the majority-class "
            f"rate {majority:.4f} by gates.keras.min_gain_over_majority = {gates.min_gain_over_majority:.4f}{note}"))
    if gates.max_gap_to_logistic is not None and "logistic_regression" in simple:
        logistic = simple["logistic_regression"]["accuracy"]
        needed = logistic - gates.max_gap_to_logistic
        passed, note = _judged(accuracy >= needed, simple["logistic_regression"], -gates.max_gap_to_logistic)
        results.append(GateResult(
            "max_gap_to_logistic", passed, accuracy, needed,
            f"test accuracy {accuracy:.4f} is {'within' if accuracy >= needed else 'more than'} "
            f"gates.keras.max_gap_to_logistic = {gates.max_gap_to_logistic:.4f} below logistic regression's "
            f"{logistic:.4f} (same split and inputs){note}"))
    return results


def _judged(met: bool, baseline: dict[str, Any], margin: float) -> tuple[bool, str]:
    """An accuracy gate against a baseline on the test rows: met, or not met but the paired bootstrap interval of
    the gain over the baseline (`gain_ci`, when measured) still reaches the margin, so the test split cannot tell
    the model short of it (the choice already judged it on more rows). Failed only when the whole interval is
    short."""
    interval = baseline.get("gain_ci")
    if met or not interval:
        return met, ""
    low, high = interval
    if high >= margin:
        return True, (f", but the interval of the gain [{low:+.4f}, {high:+.4f}] reaches {margin:+.4f}: the test split "
                      "cannot tell it short")
    return False, f" (interval of the gain [{low:+.4f}, {high:+.4f}], all below {margin:+.4f})"


def variant_gates(tflite: dict[str, Any], gates: ConversionGates) -> list[GateResult]:
    """Gates on every converted TFLite variant: agreement with the float model."""
    return [
        _at_least(f"min_agreement[{name}]", "conversion.min_agreement_with_keras", report["agreement_with_keras"],
                  gates.min_agreement_with_keras, f"{name} agreement")
        for name, report in tflite["variants"].items()
    ]


def _fmt(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() and abs(value) >= 100 else f"{value:.4f}"


def _within(name: str, key: str, measured: float, threshold: float, what: str, at_most: bool) -> GateResult:
    passed = measured <= threshold if at_most else measured >= threshold
    verb = ("is within" if passed else "exceeds") if at_most else ("meets" if passed else "is below")
    return GateResult(name, passed, float(measured), float(threshold),
                      f"{what} {_fmt(measured)} {verb} {key} = {_fmt(threshold)}")


def on_device_gates(variant: dict[str, Any], reference: dict[str, Any], footprint: OnDeviceGates) -> list[GateResult]:
    """What one on-device variant must pass to be released: accuracy, agreement, fairness, footprint.

    `reference` is the Keras model (accuracy, groups); tier `estimates` exist only where latency was measured;
    `fairness_gates` are the variant's gates.fairness verdicts from the fairness report (fairness_report judges every
    TFLite and ORT variant on the test rows; Core ML prediction needs macOS, so iOS variants carry none).
    """
    gates = [
        _within("max_accuracy_drop", "gates.on_device.max_accuracy_drop", reference["accuracy"] - variant["accuracy"],
                footprint.max_accuracy_drop, "accuracy drop vs Keras", at_most=True),
        _within("min_agreement", "gates.on_device.min_agreement_with_keras", variant["agreement_with_keras"],
                footprint.min_agreement_with_keras,
                "agreement with Keras", at_most=False),
    ]
    if "non_finite_outputs" in variant:  # a broken conversion's NaN or inf outputs
        gates.append(_within("finite_outputs", "the limit", variant["non_finite_outputs"], 0,
                             "test rows with a non-finite output", at_most=True))
    for feature, facts in variant["groups"].items():
        rise = facts["demographic_parity_difference"] - reference["groups"][feature]["demographic_parity_difference"]
        gates.append(_within(f"max_parity_increase[{feature}]", "gates.on_device.max_parity_increase", rise,
                             footprint.max_parity_increase, f"{feature} parity difference rise vs Keras", at_most=True))
    gates += [GateResult(**g) for g in variant.get("fairness_gates") or []]  # judged by fairness_report
    gates.append(_within("max_bytes", "gates.on_device.max_bytes", variant["size_bytes"], footprint.max_bytes,
                         "size in bytes", at_most=True))
    for tier, estimate in (variant.get("estimates") or {}).items():
        if tier not in footprint.max_p95_ms:
            raise PipelineError(f"gates.on_device.max_p95_ms: no budget for device tier '{tier}'")
        gates.append(_within(f"max_p95_ms[{tier}]", f"gates.on_device.max_p95_ms.{tier}", estimate["p95_ms"],
                             footprint.max_p95_ms[tier], f"{tier}-tier p95 ms (estimate)", at_most=True))
        gates.append(_within(f"max_energy_mj[{tier}]", "gates.on_device.max_energy_mj", estimate["energy_mj"],
                             footprint.max_energy_mj, f"{tier}-tier mJ per inference (estimate)", at_most=True))
    return gates


def gate_model(name: str) -> str:
    """The model a per-model gate judges: `max_demographic_parity_difference[int8/sex]` -> `int8`."""
    return name.partition("[")[2].rstrip("]").partition("/")[0]


def select_variant(sizes: dict[str, int], verdicts: dict[str, list[GateResult]]) -> str | None:
    """The released variant: the smallest that passes every gate (ties: the first listed); None if none does."""
    passing = [name for name in sizes if all(g.passed for g in verdicts[name])]
    return min(passing, key=lambda name: sizes[name]) if passing else None


def download_sizes(variants: dict[str, dict[str, Any]]) -> dict[str, int]:
    """What each variant costs a phone to download: its gzip bytes where measured, else its file bytes (the size
    select_variant ranks: a pruned model is as large as its dense parent but compresses better)."""
    return {name: int(v.get("gzip_bytes") or v["size_bytes"]) for name, v in variants.items()}


def footprint_gates(report: dict[str, Any], footprint: OnDeviceGates) -> list[GateResult]:
    """Per platform: the released variant's gates (measured vs budget), or why no variant qualifies."""
    results: list[GateResult] = []
    for platform, facts in report["platforms"].items():
        variants = facts["variants"]
        verdicts = {name: on_device_gates(v, report["reference"], footprint) for name, v in variants.items()}
        chosen = select_variant(download_sizes(variants), verdicts)
        if chosen is not None:
            results += [GateResult(f"{platform}/{chosen} {g.name}", *_tail(g)) for g in verdicts[chosen]]
            continue
        results.append(GateResult(f"{platform} released variant", False, 0.0, 1.0,
                                  f"{platform}: none of {', '.join(variants)} passes every gate"))
        results += [GateResult(f"{platform}/{name} {g.name}", *_tail(g))
                    for name, gates in verdicts.items() for g in gates if not g.passed]
    return results


def _tail(gate: GateResult) -> tuple[bool, float, float, str]:
    return gate.passed, gate.measured, gate.threshold, gate.detail


def require_all(results: list[GateResult]) -> None:
    """Stop the release at the first failed gate, naming it."""
    for result in results:
        if not result.passed:
            raise PipelineError(f"gate {result.name} failed: {result.detail}")


def gates_table(results: list[GateResult]) -> str:
    """Every gate as a Markdown row: measured value, threshold and verdict."""
    rows = ["| gate | measured | threshold | verdict |", "|---|---|---|---|"]
    rows += [f"| {g.name} | {g.measured:.4f} | {g.threshold:.4f} | {'pass' if g.passed else 'FAIL'} |" for g in results]
    return "\n".join(rows)


def _limit(limit: Limit, grouping: str, groupings: list[str], key: str) -> float | None:
    if isinstance(limit, dict):
        unknown = sorted(set(limit) - set(groupings))
        if unknown:
            raise PipelineError(f"gates.fairness.{key}: '{unknown[0]}' is not a grouping ({', '.join(groupings)})")
        return limit.get(grouping)
    return limit


LIMITS = (  # the fairness gate's limits: params key, figure, the rates it spreads over
    ("max_demographic_parity_difference", "demographic_parity_difference", ("selection_rate",)),
    ("max_equalized_odds_difference", "equalized_odds_difference", ("true_positive_rate", "false_positive_rate")),
)


def gate_limits(gates: FairnessGates, grouping: str, groupings: list[str]) -> list[tuple[str, str, tuple, float]]:
    """Every limit the fairness gate applies to one grouping: (params key, figure, rates, limit); a limit of None
    (reported, not gated) is left out. The one definition the gate and the bound choice (which must meet it) use."""
    out = []
    for key, value, rates in LIMITS:
        limit = _limit(getattr(gates, key), grouping, groupings, key)
        if limit is not None:
            out.append((key, value, rates, limit))
    return out
