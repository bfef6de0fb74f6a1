"""Which mitigation strength to deploy: with `fairness.strength: auto`, the most accurate sweep point on the
validation rows that meets the fairness gate's limit for the constrained grouping and the Keras accuracy gates."""
from __future__ import annotations

from typing import Any

from pipelines.core.config import FairnessConfig, FairnessGates, KerasGates
from pipelines.core.gates import GateResult

DISPARITY = {"demographic_parity": "demographic_parity_difference", "equalized_odds": "equalized_odds_difference"}
MAX_EXTENSIONS = 3  # when no strength meets the limit, the sweep adds this many doublings of its top strength


def gate_limit(gates: FairnessGates, constraint: str, grouping: str) -> float | None:
    """The fairness gate's limit on the constrained disparity for this grouping (None: reported, not gated)."""
    limit = getattr(gates, f"max_{DISPARITY[constraint]}")
    return limit.get(grouping) if isinstance(limit, dict) else limit


def baseline_limit(gate: float | None, baseline: float | None) -> tuple[float | None, str]:
    """`fairness.target: baseline`: the limit is the smaller of the gate's and the reductions baseline's disparity
    (an undefined baseline disparity leaves the gate's), and the phrase saying which."""
    if baseline is None:
        return gate, "the reductions baseline's disparity is undefined: the gate's limit applies"
    if gate is not None and gate < baseline:
        return gate, f"the gate's limit {gate:g} is below the reductions baseline's disparity {baseline:.4f}"
    return baseline, f"limit: the reductions baseline's disparity {baseline:.4f}"


def accuracy_floor(gates: KerasGates, logistic: float, majority: float) -> tuple[float | None, str]:
    """The validation accuracy gates.keras asks of a sweep point (the highest of its bounds, with logistic
    regression and the majority class measured on the validation rows), and the phrase naming each bound."""
    bounds = []
    if gates.min_accuracy is not None:
        bounds.append((gates.min_accuracy, f"accuracy >= {gates.min_accuracy:g}"))
    if gates.max_gap_to_logistic is not None:
        bounds.append((logistic - gates.max_gap_to_logistic,
                       f"accuracy within {gates.max_gap_to_logistic:g} of logistic regression ({logistic:.4f})"))
    if gates.min_gain_over_majority is not None:
        bounds.append((majority + gates.min_gain_over_majority,
                       f"{gates.min_gain_over_majority:g} above the majority class ({majority:.4f})"))
    if not bounds:
        return None, ""
    return max(b for b, _ in bounds), ", ".join(text for _, text in bounds)


def strengths(config: FairnessConfig) -> list[float]:
    """The sweep, plus the pinned strength when params fix one."""
    pinned = [] if config.strength == "auto" else [float(config.strength)]
    return sorted({float(s) for s in config.sweep} | set(pinned))


def extension(tried: list[float]) -> list[float]:
    """Stronger points to try next, trained together: the top strength doubled MAX_EXTENSIONS times
    (from 1 when only 0 was tried)."""
    top = max(tried)
    first = top * 2 if top > 0 else 1.0
    return [first * 2 ** i for i in range(MAX_EXTENSIONS)]


def fair(point: dict[str, Any], limit: float | None, key: str) -> bool:
    """The point answers both classes and its disparity is within the limit (no limit: any measured value)."""
    return not point.get("one_class") and (limit is None or (point[key] is not None and point[key] <= limit))


def accurate(point: dict[str, Any], floor: float | None) -> bool:
    """The point's validation accuracy meets the floor (compared at 6 decimals: equal rates are equal)."""
    return floor is None or round(point["accuracy"], 6) >= round(floor, 6)


def choose(points: list[dict[str, Any]], limit: float | None, key: str, floor: float | None = None,
           floor_text: str = "") -> tuple[dict[str, Any] | None, str]:
    """The most accurate point within the limit and the accuracy floor (ties: the weaker strength), and why;
    None if none is within both. A model answering one class only is never chosen."""
    within = [p for p in points if fair(p, limit, key) and accurate(p, floor)]
    if not within:
        return None, ""
    best = max(within, key=lambda p: (round(p["accuracy"], 6), -p["strength"]))
    bound = "no limit is set for this grouping" if limit is None else \
        f"{key.replace('_', ' ')} {best[key]:.4f} <= {short(limit)} on the training and validation rows"
    gates = f", and {floor_text} on the validation rows" if floor is not None else ""
    return best, (f"strength {best['strength']:g}: the most accurate on the validation rows "
                  f"({best['accuracy']:.4f}) with {bound}{gates}")


def none_within(points: list[dict[str, Any]], limit: float | None, key: str, floor: float | None = None,
                floor_text: str = "") -> tuple[dict[str, Any], str]:
    """When no point meets both: the one line the fairness gate stops the run with (every point's accuracy and
    disparity), and the point kept for inspection: the least disparate (then the most accurate)."""
    useful = [p for p in points if not p.get("one_class")] or points
    measured = [p for p in useful if p[key] is not None] or useful
    best = min(measured, key=lambda p: (p[key] if p[key] is not None else float("inf"), -p["accuracy"]))
    bounds = ([] if limit is None else [f"{key.replace('_', ' ')} <= {short(limit)}"]) + \
        ([] if floor is None else [floor_text])
    wanted = f"meets {' and '.join(bounds)}" if bounds else "answers both classes"
    ordered = sorted(points, key=lambda p: p["strength"])
    tried = ", ".join(f"strength {p['strength']:g} reaches {p['accuracy']:.4f} at "
                      f"{'undefined' if p[key] is None else format(p[key], '.4f')}"
                      for p in ordered if not p.get("one_class"))
    single = [f"{p['strength']:g}" for p in ordered if p.get("one_class")]
    if single:
        tried += ("; " if tried else "") + f"strength {', '.join(single)} answer{'s' if len(single) == 1 else ''} " \
                 "one class only"
    return best, (f"no strength {wanted} on the validation rows (disparity on the training and validation "
                  f"rows): {tried}; strength {best['strength']:g} (the least disparate) is kept, not released")


def short(value: float) -> str:
    """A limit as params would write it: at most four decimals, no trailing zeros."""
    return f"{value:.4f}".rstrip("0").rstrip(".")


def strength_gate(mitigation: dict[str, Any]) -> GateResult:
    """The fairness gate on the deployed strength: with `auto`, some sweep point met the limit and the accuracy
    floor on the validation rows (a pinned or private strength passes; the test-row gates judge it)."""
    passed = mitigation.get("within_gates", True)
    point = next((p for p in mitigation.get("validation", []) if p["strength"] == mitigation["strength"]), None)
    return GateResult("fairness_strength", bool(passed), float(point["accuracy"]) if point else 0.0,
                      float(mitigation.get("accuracy_floor") or 0.0),
                      mitigation.get("chosen_by", "pinned in params fairness.strength"))
