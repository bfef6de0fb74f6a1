"""Fairness of the Keras model and every on-device variant: per-group metrics with intervals, the change
each variant makes for each group, and the blocking gates on both.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from pipelines.core.config import FairnessConfig, FairnessGates
from pipelines.core.gates import GateResult, gate_limits
from pipelines.core.safe_text import md_cell
from pipelines.training.metrics import (
    LARGER,
    GroupCodes,
    floor_figures,
    group_codes,
    quantization_figures,
    scaled_cells,
    too_small,
)
from pipelines.training.tally import Chunk, Tallies

REFERENCE = "keras"


def evaluate_models(
    y_true: np.ndarray, probas: dict[str, np.ndarray], groups: pd.DataFrame | GroupCodes, config: FairnessConfig,
    threshold: float, min_group_size: int, sensitive: list[str] | None = None,
) -> dict[str, Any]:
    """Every model's overall and per-group metrics (with bootstrap intervals) on the same test rows. `groups`: the
    sensitive columns, or their group codes with the intersection (`sensitive` then names the columns).

    `probas` maps model name to probabilities; the first entry is the reference (Keras) and every other
    entry also gets each group's accuracy change from it (a paired bootstrap on the same rows).
    """
    codes = groups if isinstance(groups, dict) else group_codes(groups, intersection=True)
    with Tallies(threshold, reference=next(iter(probas))) as tallies:
        tallies.add(Chunk(np.asarray(y_true), codes, dict(probas), None))
        return evaluate_tallies(tallies, config, min_group_size,
                                sensitive if isinstance(groups, dict) else list(groups.columns))


def evaluate_tallies(tallies: Tallies, config: FairnessConfig, min_group_size: int,
                     sensitive: list[str] | None) -> dict[str, Any]:
    """evaluate_models from every model's counts on the test rows (gathered chunk by chunk); the tallies' reference
    is the first model."""
    options: dict[str, Any] = {"min_group_size": min_group_size, "n_boot": config.bootstrap,
                               "confidence": config.confidence, "seed": config.seed}
    reference, threshold = str(tallies.reference), tallies.threshold
    models: dict[str, Any] = {}
    for name, tally in tallies.models.items():
        models[name] = {"overall": tally.overall(), "groups": tally.groups(**options)}
        if name != reference:
            models[name]["quantization"] = {g: quantization_figures(n, c, **options)
                                            for g, (n, c) in tally.paired_cells().items()}
    first = next(iter(models.values()))["groups"]
    cells = tallies.models[reference].cells()
    floor = floor_figures(cells, share=config.pass_share, min_group_size=min_group_size, seed=config.seed)
    larger = {f"{factor:g}": floor_figures(scaled_cells(cells, factor), share=config.pass_share,
                                           min_group_size=min_group_size, seed=config.seed) for factor in LARGER}
    return {
        "threshold": threshold, "rows": int(tallies.rows), "reference": reference,
        "order": list(models),  # JSON files sort keys; this keeps the reference first
        "sensitive_features": sensitive, "groupings": list(first),
        "bootstrap": config.bootstrap, "confidence": config.confidence, "min_group_size": min_group_size,
        "flagged_groups": [{"grouping": g, "group": name, "rows": facts["groups"][name]["count"]}
                           for g, facts in first.items() for name in facts["small_groups"]],
        # gated groups with too few positives (negatives) for their true (false) positive rate to be gated
        "flagged_rates": [{"grouping": g, "group": name, "rate": rate,
                           DENOMINATOR[rate]: _conditional(facts["groups"][name], rate)}
                          for g, facts in first.items() for rate, names in facts.get("unmeasured_rates", {}).items()
                          for name in names],
        "models": models,
        # what a model with the same rates for every group measures on these test rows (the split's own noise)
        # ...and on test splits 1.5, 2 and 2.5 times larger with the same groups (`larger`, by factor)
        "equal_rates_floor": {"share": config.pass_share, "reference": reference, "figures": floor,
                              "larger": larger},
    }


def _extremes(facts: dict[str, Any], rate: str) -> str:
    """`true positive rate High 0.31 vs Low 0.09`: the groups at either end of a rate, over the groups it is
    measured on (enough rows, and enough positives or negatives for the true or false positive rate)."""
    left_out = set(facts["small_groups"]) | set(facts.get("unmeasured_rates", {}).get(rate, []))
    values = {g: m[rate] for g, m in facts["groups"].items() if g not in left_out and m[rate] is not None}
    if len(values) < 2:
        return f"{rate.replace('_', ' ')} not measured"
    high, low = max(values, key=values.get), min(values, key=values.get)  # type: ignore[arg-type]
    return f"{rate.replace('_', ' ')} {high} {values[high]:.3f} vs {low} {values[low]:.3f}"


DENOMINATOR = {"true_positive_rate": "positives", "false_positive_rate": "negatives"}


def unmeasured_text(facts: dict[str, Any], minimum: int) -> str:
    """`false positive rate leaves out 0 (9 negatives)`: the gated groups left out of a conditional rate's gap, with
    the count that is too small; empty when every gated group has enough."""
    parts = []
    for rate, names in facts.get("unmeasured_rates", {}).items():
        counted = DENOMINATOR[rate]
        counts = [f"{name} ({_conditional(facts['groups'][name], rate)} {counted})" for name in names]
        parts.append(f"{rate.replace('_', ' ')} leaves out {', '.join(counts)}")
    return "; ".join(parts) + (f" (under gates.fairness.min_group_size = {minimum})" if parts else "")


def _conditional(group: dict[str, Any], rate: str) -> int:
    """A group's positives (true positive rate) or negatives (false positive rate)."""
    return group["positives"] if rate == "true_positive_rate" else group["count"] - group["positives"]


def _interval(facts: dict[str, Any], key: str, limit: float | None = None) -> str:
    low, high = (facts.get("ci") or {}).get(key, (None, None))
    if low is None or high is None:
        return ""
    straddles = " straddles the limit" if limit is not None and low <= limit < high else ""
    return f", CI [{low:.4f}, {high:.4f}]{straddles}"


def _unmeasurable(name: str, where: str, facts: dict[str, Any], threshold: float, minimum: int) -> GateResult:
    model = where.split(" ")[0]
    return GateResult(name, False, float(facts["eligible_groups"]), threshold,
                      f"{model} {too_small(where[len(model) + 1:], facts, minimum)}")


def _not_measured(name: str, key: str, where: str, facts: dict[str, Any], limit: float,
                  minimum: int) -> GateResult:
    """Equalized odds on a grouping whose groups have enough rows but too few positives and negatives for two of
    them: reported, not gated, as a group under gates.fairness.min_group_size is."""
    return GateResult(name, True, 0.0, float(limit),
                      f"{where}: equalized odds difference not measured, so not gated by gates.fairness.{key} = "
                      f"{limit:.4f}: {unmeasured_text(facts, minimum)}; give the test split more rows "
                      "(split.test_size) to gate it")


def _at_most(name: str, key: str, where: str, measured: float, limit: float, what: str) -> GateResult:
    passed = measured <= limit
    verb = "is within" if passed else "exceeds"
    return GateResult(name, passed, float(measured), float(limit),
                      f"{where}: {what} {verb} gates.fairness.{key} = {limit:.4f}")


def fairness_gates(report: dict[str, Any], gates: FairnessGates) -> list[GateResult]:
    """Parity and equalized-odds limits for every model and grouping, and the per-group accuracy drop of
    every variant from the reference; each verdict names the model, grouping and groups, and by how much."""
    results: list[GateResult] = []
    groupings, minimum = report["groupings"], report["min_group_size"]
    for model in report["order"]:
        entry = report["models"][model]
        for grouping, facts in entry["groups"].items():
            where = f"{model} {grouping}"
            for key, value, rates, limit in gate_limits(gates, grouping, groupings):
                name = f"{key}[{model}/{grouping}]"
                if facts["eligible_groups"] < 2:
                    results.append(_unmeasurable(name, where, facts, limit, minimum))
                    continue
                if facts[value] is None:  # equalized odds: no rate has two groups with enough rows to count on
                    results.append(_not_measured(name, key, where, facts, limit, minimum))
                    continue
                spread = "; ".join(_extremes(facts, r) for r in rates)
                left_out = unmeasured_text(facts, minimum) if value == "equalized_odds_difference" else ""
                left_out = f"; {left_out}" if left_out else ""
                what = (f"{value.replace('_', ' ')} {facts[value]:.4f} ({spread}{_interval(facts, value, limit)}"
                        f"{left_out})")
                results.append(_at_most(name, key, where, facts[value], limit, what))
            change = entry.get("quantization", {}).get(grouping)
            if change is None or gates.max_group_accuracy_drop is None:
                continue
            name = f"max_group_accuracy_drop[{model}/{grouping}]"
            if change["worst_group"] is None:
                results.append(_unmeasurable(name, where, facts, gates.max_group_accuracy_drop, minimum))
                continue
            results.append(_group_drop(name, where, change, gates.max_group_accuracy_drop, report["reference"]))
    return results


def _drop_interval(group: dict[str, Any]) -> tuple[float, float] | None:
    """The paired bootstrap interval of a group's accuracy drop (the same rows, reference vs variant), if measured."""
    low, high = group.get("ci") or (None, None)
    return None if low is None or high is None else (-high, -low)


def _group_drop(name: str, where: str, change: dict[str, Any], limit: float, reference: str) -> GateResult:
    """A variant's per-group accuracy drop from the reference: failed only where a group's whole paired bootstrap
    interval of the drop is above the limit; a point drop over the limit whose interval straddles it passes, and
    the line says so (a few rows of a small group cannot tell the variant worse)."""
    groups, small = change["groups"], set(change["small_groups"])
    drops = {g: -facts["change"] for g, facts in groups.items() if g not in small}
    over = [g for g in drops if drops[g] > limit]
    sure = [g for g in over if _drop_interval(groups[g]) is None or _drop_interval(groups[g])[0] > limit]  # type: ignore[index]
    group = max(sure, key=drops.get) if sure else change["worst_group"]  # type: ignore[arg-type]
    facts, interval = groups[group], _drop_interval(groups[group])
    ci = "" if interval is None else f", CI [{interval[0]:.4f}, {interval[1]:.4f}]"
    what = (f"{group} accuracy {facts['reference_accuracy']:.4f} -> {facts['variant_accuracy']:.4f} vs {reference} "
            f"(drop {drops[group]:.4f}{ci}, {facts['changed_decisions']} decisions changed)")
    if over and not sure:
        return GateResult(name, True, float(drops[group]), float(limit),
                          f"{where}: {what} is over gates.fairness.max_group_accuracy_drop = {limit:.4f}, but the "
                          "interval straddles the limit: the test split cannot tell it over")
    return _at_most(name, "max_group_accuracy_drop", where, drops[group], limit, what)


def compact_failures(report: dict[str, Any], results: list[GateResult], test_size: float | None = None) -> str:
    """One short line for every failed fairness gate: per limit and grouping, the figure (one value, or the range
    over the models), which models, the limit, whether the reference's interval straddles it, and where the test
    split is too small to tell a fair model (with what larger splits would measure; `test_size` is the share the
    splits used, None for a shipped test file), then once what to change. The per-model detail stays in the report
    and the check's metadata."""
    failed: dict[tuple[str, str], list[GateResult]] = {}
    for gate in results:
        if not gate.passed:
            key, _, where = gate.name.partition("[")
            model, _, grouping = where.rstrip("]").partition("/")
            failed.setdefault((key, grouping), []).append(replace(gate, name=model))
    parts: list[str] = []
    noisy: list[bool] = []  # per limit below the split's noise: whether a larger split gets within it
    for (key, grouping), gates in failed.items():
        models = [g.name for g in gates]
        facts = report["models"][models[0]]["groups"][grouping]
        if (facts["eligible_groups"] < 2 and key != "max_group_accuracy_drop") or \
                (key == "max_group_accuracy_drop" and gates[0].detail.split(" ", 2)[2].startswith("only")):
            parts.append(too_small(grouping, facts, report["min_group_size"]))
            continue
        low, high = min(g.measured for g in gates), max(g.measured for g in gates)
        figure = f"{low:.4f}" if round(low, 4) == round(high, 4) else f"{low:.4f} to {high:.4f}"
        what, ci = key.removeprefix("max_").replace("_", " "), ""
        if key == "max_group_accuracy_drop":
            what = "worst group accuracy drop vs " + report["reference"]
        elif report["reference"] in models:
            ci = _interval(facts, key.removeprefix("max_"), gates[0].threshold).removeprefix(", ")
            ci = f" ({report['reference']} {ci})" if ci else ""
        noise, helps = _noise(report, key, grouping, gates[0].threshold, test_size)
        if noise:
            noisy.append(helps)
        parts.append(f"{grouping}: {what} {figure}{ci} exceeds gates.fairness.{key} = {gates[0].threshold:g} on "
                     f"{_which(models, len(report['order']))}{noise}")
    if noisy:
        parts.append("these limits are below what the test split can tell: " + (
            "give it more rows (split.test_size), or gate larger groups (gates.fairness.min_group_size)"
            if any(noisy) else
            "more test rows alone stay over them at these group sizes; gate larger groups "
            "(gates.fairness.min_group_size), or set the grouping's limit to null in gates.fairness"))
    return "; ".join(parts)


def _noise(report: dict[str, Any], key: str, grouping: str, limit: float, test_size: float | None
           ) -> tuple[str, bool]:
    """Where the limit is below what a model with equal rates for every group measures on these test rows (its
    `share` quantile), say so with what larger test splits of the same groups would measure, and whether one of
    them gets within the limit: such a limit fails fair models on this split too often to tell them apart."""
    floor = report.get("equal_rates_floor") or {}
    figure = key.removeprefix("max_")
    value = (floor.get("figures", {}).get(grouping) or {}).get(figure)
    if value is None or value <= limit:
        return "", False
    found = {factor: (figures.get(grouping) or {}).get(figure) for factor, figures in floor.get("larger", {}).items()}
    larger: dict[str, float] = {factor: v for factor, v in found.items() if v is not None}
    return (f" (a model with the same rates for every group measures {value:.4f} or more on {1 - floor['share']:.0%} "
            f"of test splits with these groups{_larger(larger, test_size)})",
            not larger or any(v <= limit for v in larger.values()))


def _larger(larger: dict[str, float], test_size: float | None) -> str:
    """`; 0.1012, 0.0870, 0.0801 with 1.5, 2 and 2.5 times the rows (split.test_size 0.3, 0.4, 0.5)`: the same
    quantile on test splits of the same groups that many times larger (a group under gates.fairness.min_group_size
    now may be gated there, so it need not fall)."""
    if not larger:
        return ""
    factors = list(larger)
    named = ", ".join(factors[:-1]) + (" and " if len(factors) > 1 else "") + factors[-1]
    sizes = "" if test_size is None else " (split.test_size " + ", ".join(
        f"{round(test_size * float(factor), 3):g}" for factor in factors) + ")"
    return f"; {', '.join(f'{v:.4f}' for v in larger.values())} with {named} times the rows{sizes}"


NAMED = 4  # models a compact line names before counting the rest


def _which(models: list[str], total: int) -> str:
    """`every model (16)`, `keras, int8 (2 of 16)`, or the first NAMED names and how many more."""
    if len(models) == total and total > 1:
        return f"every model ({total})"
    named = ", ".join(models[:NAMED]) + (f" and {len(models) - NAMED} more" if len(models) > NAMED else "")
    return f"{named} ({len(models)} of {total})"


def flagged_text(report: dict[str, Any], list_rates: bool = True) -> str:
    """One line naming the groups too small to gate (and the rates counted on too few rows; only how many with
    `list_rates` False, as a stop line has them), or that there are none."""
    flagged, minimum = report["flagged_groups"], report["min_group_size"]
    rates = flagged_rates_text(report.get("flagged_rates", []), minimum, list_rates)
    if not flagged:
        return f"every group has at least {minimum} test rows" + (f"; {rates}" if rates else "")
    listed = ", ".join(f"{f['grouping']}={f['group']} ({f['rows']})" for f in flagged)
    return (f"{len(flagged)} group(s) under {minimum} test rows, reported but not gated: {listed}"
            + (f"; {rates}" if rates else ""))


SHORT = {"true_positive_rate": "TPR", "false_positive_rate": "FPR"}


def flagged_rates_text(flagged: list[dict[str, Any]], minimum: int, listed: bool = True) -> str:
    """`TPR or FPR on fewer than 30 positives or negatives, reported but not gated: race=black FPR (12 negatives)`
    (with `listed` False: how many, and where they are listed); empty when there are none."""
    if not flagged:
        return ""
    if not listed:
        return (f"{len(flagged)} TPR or FPR figure(s) on fewer than {minimum} positives or negatives, reported but "
                "not gated (listed in the fairness check)")
    names = ", ".join(f"{f['grouping']}={f['group']} {SHORT[f['rate']]} ({f[DENOMINATOR[f['rate']]]} "
                      f"{DENOMINATOR[f['rate']]})" for f in flagged)
    return f"TPR or FPR on fewer than {minimum} positives or negatives, reported but not gated: {names}"


def _fmt(value: float | None, ci: list | None = None) -> str:
    if value is None:
        return "n/a"
    if ci and ci[0] is not None and ci[1] is not None:
        return f"{value:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]"
    return f"{value:.3f}"


def groups_table(groups: dict[str, Any]) -> str:
    """Markdown: one row per group with its rates and intervals."""
    rows = ["| grouping | group | rows | accuracy | selection rate | TPR | FPR |", "|---|---|---|---|---|---|---|"]
    for grouping, facts in groups.items():
        for group, m in facts["groups"].items():
            ci = m.get("ci", {})
            flag = " (small)" if group in facts["small_groups"] else ""
            rows.append(f"| {md_cell(grouping)} | {md_cell(group)}{flag} | {m['count']} | " + " | ".join(
                _fmt(m[r], ci.get(r)) for r in ("accuracy", "selection_rate", "true_positive_rate",
                                                "false_positive_rate")) + " |")
    return "\n".join(rows)


def models_table(report: dict[str, Any]) -> str:
    """Markdown: accuracy, parity and equalized-odds difference per model and grouping, worst group change."""
    rows = ["| model | accuracy | grouping | DPD | EOD | worst group change vs " + report["reference"] + " |",
            "|---|---|---|---|---|---|"]
    for model in report["order"]:
        entry = report["models"][model]
        for grouping, facts in entry["groups"].items():
            ci = facts.get("ci", {})
            change = entry.get("quantization", {}).get(grouping)
            worst = (f"{md_cell(change['worst_group'])} "
                     f"{-change['worst_drop']:+.4f}" if change and change["worst_group"] else "")
            rows.append(f"| {model} | {entry['overall']['accuracy']:.4f} | {md_cell(grouping)} "
                        f"| {_fmt(facts['demographic_parity_difference'], ci.get('demographic_parity_difference'))} "
                        f"| {_fmt(facts['equalized_odds_difference'], ci.get('equalized_odds_difference'))} | {worst} "
                        "|")
    return "\n".join(rows)
