"""Which mitigation strength to deploy: with `fairness.strength: auto`, the most accurate sweep point on the
validation rows that meets the fairness gate's limit for the constrained grouping."""
from __future__ import annotations

from typing import Any

from pipelines.core.config import FairnessConfig, FairnessGates

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


def choose(points: list[dict[str, Any]], limit: float | None, key: str) -> tuple[dict[str, Any] | None, str]:
    """The most accurate point within the limit (ties: the weaker strength), and why; None if none is within.
    A model answering one class only is never chosen."""
    within = [p for p in points if not p.get("one_class")
              and (limit is None or (p[key] is not None and p[key] <= limit))]
    if not within:
        return None, ""
    best = max(within, key=lambda p: (round(p["accuracy"], 6), -p["strength"]))
    bound = "no limit is set for this grouping" if limit is None else \
        f"{key.replace('_', ' ')} {best[key]:.4f} <= {limit:g} on the training and validation rows"
    return best, (f"strength {best['strength']:g}: the most accurate on the validation rows "
                  f"({best['accuracy']:.4f}) with {bound}")


def least_disparate(points: list[dict[str, Any]], limit: float | None, key: str) -> tuple[dict[str, Any], str]:
    """When no point meets the limit: the one with the smallest measured disparity (then the most accurate)."""
    useful = [p for p in points if not p.get("one_class")] or points
    measured = [p for p in useful if p[key] is not None] or useful
    best = min(measured, key=lambda p: (p[key] if p[key] is not None else float("inf"), -p["accuracy"]))
    tried = ", ".join(f"{p['strength']:g}" for p in points)
    shown = "undefined" if best[key] is None else f"{best[key]:.4f}"
    wanted = "answers both classes" if limit is None else f"meets {key.replace('_', ' ')} <= {limit:g}"
    return best, (f"strength {best['strength']:g}: no strength tried ({tried}) {wanted}; the least disparate "
                  f"({shown}) is deployed and the fairness gate decides on the test rows")
