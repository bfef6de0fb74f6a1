"""Means and spreads over splits, the issue's acceptance rule, and the 20-split gate count."""
from __future__ import annotations

import statistics
from typing import Any

FIGURES = ("accuracy", "dpd", "eod")
ACCURACY_SLACK = 0.01  # issue 25: released int8 Android accuracy >= the EG baseline's - 0.01
DPD_SLACK = 0.01  # ... at DPD <= the EG baseline's + 0.01 (means over the splits)
REFERENCE = "eg_randomized"
PIPELINE = "pipeline"
PIPELINE_KERAS = "pipeline_keras"


def spread(values: list[float | None]) -> dict[str, Any]:
    """Mean and sample standard deviation of the measured values (None: the figure was undefined on that split)."""
    kept = [v for v in values if v is not None]
    return {"mean": statistics.fmean(kept) if kept else None,
            "std": statistics.stdev(kept) if len(kept) > 1 else (0.0 if kept else None), "n": len(kept)}


def method_points(splits: list[dict[str, Any]]) -> dict[str, list[dict[str, float]]]:
    """Per method, its figures on each split it has: the baselines, the released variant and the run's Keras model."""
    points: dict[str, list[dict[str, float]]] = {}
    for split in splits:
        for name, figures in split.get("baselines", {}).items():
            points.setdefault(name, []).append(figures)
        if "pipeline" in split:
            points.setdefault(PIPELINE, []).append({k: split["pipeline"][k] for k in FIGURES})
            points.setdefault(PIPELINE_KERAS, []).append(split["pipeline"]["keras"])
    return points


def summarize(splits: list[dict[str, Any]]) -> dict[str, Any]:
    """Each method's mean and spread per figure, the releases and stops, and the acceptance verdict."""
    methods = {name: {f: spread([p[f] for p in pts]) for f in FIGURES}
               for name, pts in method_points(splits).items()}
    released = [s for s in splits if "pipeline" in s]
    return {"methods": methods, "frontier": frontier_summary(splits), "splits": len(splits), "released": len(released),
            "variants": sorted({s["pipeline"]["variant"] for s in released}),
            "mitigations": mitigations(released),
            "stops": [{"seed": s["seed"], "line": s["stop"]} for s in splits if "stop" in s],
            "acceptance": acceptance(methods, len(released), len(splits))}


def _mitigation_name(facts: dict[str, Any]) -> str:
    """`none`, `penalty 3`, or under method bound the chosen head as the model card names it (`bound 0.05`,
    `distilled from ExponentiatedGradient`, `massaged x1.5`)."""
    from pipelines.training.targets import head_name

    if facts["method"] == "none":
        return "none"
    if facts["method"] == "bound" and isinstance(facts.get("strength"), int | float):
        return head_name(float(facts["strength"]))
    return f"{facts['method']} {facts['strength']}"


def mitigations(released: list[dict[str, Any]]) -> dict[str, int]:
    """How often each mitigation (method and its strength or bound) was what the run released."""
    counts: dict[str, int] = {}
    for split in released:
        facts = split["pipeline"].get("mitigation")
        if facts:
            name = _mitigation_name(facts)
            counts[name] = counts.get(name, 0) + 1
    return dict(sorted(counts.items(), key=lambda item: -item[1]))


def acceptance(methods: dict[str, Any], released: int, splits: int) -> dict[str, Any]:
    """Issue 25's rule: a release on every split, whose Android variant's mean accuracy is at least the
    ExponentiatedGradient baseline's minus 0.01 and mean DPD at most the baseline's plus 0.01."""
    reference = methods.get(REFERENCE)
    if reference is None or reference["accuracy"]["mean"] is None:
        return {"passed": False, "why": "no ExponentiatedGradient baseline was measured"}
    if released < splits:
        return {"passed": False, "why": f"released on {released} of {splits} splits"}
    mine = methods[PIPELINE]
    accuracy_ok = mine["accuracy"]["mean"] >= reference["accuracy"]["mean"] - ACCURACY_SLACK
    dpd_ok = (mine["dpd"]["mean"] is not None and reference["dpd"]["mean"] is not None
              and mine["dpd"]["mean"] <= reference["dpd"]["mean"] + DPD_SLACK)
    why = []
    if not accuracy_ok:
        why.append(f"accuracy {mine['accuracy']['mean']:.3f} < {reference['accuracy']['mean']:.3f} - {ACCURACY_SLACK}")
    if not dpd_ok:
        why.append(f"DPD {_num(mine['dpd']['mean'])} > {_num(reference['dpd']['mean'])} + {DPD_SLACK}")
    return {"passed": accuracy_ok and dpd_ok, "why": "; ".join(why) or "meets both bounds"}


def gate_count(splits: list[dict[str, Any]]) -> dict[str, Any]:
    """How many splits released a model whose fairness gates passed on the test split (the issue asks >= 18 of 20)."""
    passed = sum(1 for s in splits if "pipeline" in s and s["pipeline"]["fairness_gate"])
    judged = [s["reference_gates"] for s in splits if "reference_gates" in s]
    references = {method: sum(not failures[method] for failures in judged) for method in (judged[0] if judged else {})}
    return {"splits": len(splits), "passed": passed, "released": sum(1 for s in splits if "pipeline" in s),
            "stops": sorted({s["stop"] for s in splits if "stop" in s}),
            # the same fairness gate on the reference models' test decisions, over the splits that judged them
            "references": references, "reference_splits": len(judged)}


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def frontier_summary(splits: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Per deterministic family, each bound's (or GridSearch model's) mean and spread over the splits that have it,
    in bound order; GridSearch keeps only the models no other of its models beats on both mean accuracy and DPD."""
    found: dict[str, dict[Any, list[dict[str, float]]]] = {}
    for split in splits:
        for family, points in split.get("frontier", {}).items():
            for point in points:
                key = point.get("eps", point.get("index"))
                found.setdefault(family, {}).setdefault(key, []).append(point)
    summary = {}
    for family, by_key in found.items():
        rows = [{"key": key, **{f: spread([p[f] for p in pts]) for f in FIGURES}}
                for key, pts in sorted(by_key.items())]
        summary[family] = pareto(rows) if family == "grid_search" else rows
    return summary


def pareto(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows that no other row beats on mean accuracy and mean DPD both (ties kept once), by DPD."""
    usable = [r for r in rows if r["dpd"]["mean"] is not None]

    def beaten(row):
        return any(o["accuracy"]["mean"] >= row["accuracy"]["mean"] and o["dpd"]["mean"] <= row["dpd"]["mean"]
                   and (o["accuracy"]["mean"], -o["dpd"]["mean"]) != (row["accuracy"]["mean"], -row["dpd"]["mean"])
                   for o in usable)
    kept, seen = [], set()
    for row in sorted(usable, key=lambda r: (r["dpd"]["mean"], -r["accuracy"]["mean"])):
        figures = (row["accuracy"]["mean"], row["dpd"]["mean"])
        if not beaten(row) and figures not in seen:
            kept.append(row)
            seen.add(figures)
    return kept


def reaches(row: dict[str, Any], reference: dict[str, Any]) -> bool:
    """A mean point within the acceptance rule's slack of the reference's: accuracy >= its - 0.01, DPD <= its + 0.01."""
    return (row["accuracy"]["mean"] >= reference["accuracy"]["mean"] - ACCURACY_SLACK
            and row["dpd"]["mean"] is not None and reference["dpd"]["mean"] is not None
            and row["dpd"]["mean"] <= reference["dpd"]["mean"] + DPD_SLACK)
