"""Which bound head to deploy (`fairness.method: bound`): the most accurate on the held-out rows that meets the
accuracy gates and stays within the fairness limit in at least `fairness.pass_share` of simulated test splits; the
one-line stops when none can be released."""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from pipelines.core.group_rates import spread
from pipelines.training.metrics import labelled_groups
from pipelines.training.strength import short
from pipelines.training.targets import head_name

DRAWS = 2000  # simulated test splits per head: the pass share's own error is below 0.01


class Check(NamedTuple):
    """One limit the test-split fairness gate applies to the Keras model, as the choice simulates it."""
    grouping: str
    figure: str  # demographic_parity_difference or equalized_odds_difference
    limit: float
    labels: np.ndarray  # each held-out row's group in this grouping
    test_labels: np.ndarray  # each test row's group


FIGURE = {"demographic_parity": "demographic_parity_difference", "equalized_odds": "equalized_odds_difference"}


def _simulated(rng: np.random.Generator, y: np.ndarray, decisions: np.ndarray, check: Check, test_y: np.ndarray,
               min_group_size: int) -> np.ndarray:
    """The figure on each of DRAWS simulated test splits (0 where fewer than two groups have the rate)."""
    labels, test_labels = check.labels, check.test_labels
    names = sorted(set(test_labels) & set(labels))
    cells = [("selection_rate", np.ones_like(y, bool), np.ones_like(test_y, bool))] \
        if check.figure == "demographic_parity_difference" else \
        [("true_positive_rate", y > 0.5, test_y > 0.5), ("false_positive_rate", y <= 0.5, test_y <= 0.5)]
    measured = labelled_groups(test_labels, test_y, names, min_group_size)  # the groups the gate measures
    worst = np.zeros(DRAWS)
    for rate, held, tested in cells:
        eligible = measured[rate]
        rates = np.full((DRAWS, len(names)), np.nan)
        for i, g in enumerate(names):
            n, m = int(np.sum((labels == g) & held)), int(np.sum((test_labels == g) & tested))
            if n == 0 or m == 0:
                continue
            p = float(np.mean(decisions[(labels == g) & held]))
            rates[:, i] = rng.binomial(m, rng.binomial(n, p, DRAWS) / n) / m
        worst = np.fmax(worst, spread(rates, eligible))
    return worst


def joint_pass_share(y: np.ndarray, decisions: np.ndarray, test_y: np.ndarray, checks: list[Check],
                     min_group_size: int, seed: int,
                     more: tuple[tuple[np.ndarray, np.ndarray, list[Check]], ...] = ()) -> float:
    """The share of simulated test splits in which every check is within its limit (a two-stage bootstrap).

    Each group's rate (selection rate; true and false positive rates for equalized odds) is drawn from its
    held-out counts (how sure the held-out rows are of it), then a test split's rate from the test split's own
    group size: a small test split spreads the disparity, so a model measured just under the limit passes the
    gate on the test rows in about half the splits; this says how often. Groups with fewer than
    `min_group_size` test rows are left out, as the gate leaves them out. `more`: checks measured on other rows
    (their own labels and decisions), drawn in the same simulated splits.
    """
    rng = np.random.default_rng(seed)
    met = np.ones(DRAWS, bool)
    for rows_y, rows_decisions, rows_checks in ((y, decisions, checks), *more):
        for check in rows_checks:
            met &= _simulated(rng, rows_y, rows_decisions, check, test_y, min_group_size) <= check.limit + 1e-12
    return float(np.mean(met))


def pass_share(y: np.ndarray, decisions: np.ndarray, labels: np.ndarray, test_labels: np.ndarray,
               test_y: np.ndarray, limit: float, constraint: str, min_group_size: int, seed: int) -> float:
    """joint_pass_share of one limit: the constraint's disparity on one grouping."""
    return joint_pass_share(y, decisions, test_y, [Check("", FIGURE[constraint], limit, labels, test_labels)],
                            min_group_size, seed)


def unmet(point: dict[str, Any]) -> list[str]:
    """The other gated limits a head exceeds on the held-out rows, in words (`equalized odds difference 0.2400 >
    0.2 on male`)."""
    return [f"{figure.replace('_', ' ')} {value:.4f} > {short(limit)} on {grouping}"
            for grouping, figure, value, limit in point.get("other_limits", []) if value is not None and value > limit]


def _joint(p: dict[str, Any]) -> float:
    """The share of simulated test splits where every limit of the fairness gate passes (the bound's alone when the
    gate sets no other)."""
    return p["pass_share"] if p.get("joint_pass_share") is None else p["joint_pass_share"]


def choose(points: list[dict[str, Any]], limit: float | None, key: str, floor: float | None, floor_text: str,
           needed: float, how: str) -> tuple[dict[str, Any] | None, str]:
    """The head to deploy and why; None with the one-line reason when no head meets both the limit and the floor.

    Heads within every other limit the test-split fairness gate applies (`other_limits`) come first: the most
    accurate meeting the floor whose joint pass share (every limit at once) reaches `needed`; else whose pass share
    on the bound reaches it. Only where no head meets every limit on the rows are the others set aside (the line
    names what the head misses). Then: the most accurate meeting the floor whose pass share reaches `needed`; else,
    of the heads meeting the floor and the limit on the held-out rows, the one with the largest pass share (the
    line says how likely the test split is to pass). A head answering one class only is never chosen.
    """
    usable = [p for p in points if not p.get("one_class")]
    accurate = [p for p in usable if floor is None or round(p["accuracy"], 6) >= round(floor, 6)]
    gates = f" and {floor_text}" if floor is not None else ""
    if limit is None:
        if not accurate:
            return None, ""
        best = max(accurate, key=lambda p: (round(p["accuracy"], 6), p["bound"]))
        return best, (f"{head_name(best['bound'])}: the most accurate on {how} ({best['accuracy']:.4f}); no fairness "
                      f"limit is set for this grouping{gates}")
    within = [p for p in accurate if p[key] is not None and p[key] <= limit]
    every = [p for p in within if not unmet(p)]  # also within the gate's other limits on the rows
    what = key.replace("_", " ")

    confident = [p for p in every if _joint(p) >= needed]
    if confident:
        best = max(confident, key=lambda p: (round(p["accuracy"], 6), p["bound"]))
        return best, (f"{head_name(best['bound'])}: the most accurate on {how} ({best['accuracy']:.4f}) with {what} "
                      f"{best[key]:.4f} <= {short(limit)}{_others(best)} in {_joint(best):.0%} of simulated "
                      f"test splits (fairness.pass_share = {needed:g}){gates}")
    confident = [p for p in every if p["pass_share"] >= needed]
    if confident:  # the other limits met on the rows, though all of them together are less sure
        best = max(confident, key=lambda p: (round(p["accuracy"], 6), p["bound"]))
        return best, (f"{head_name(best['bound'])}: the most accurate on {how} ({best['accuracy']:.4f}) with {what} "
                      f"{best[key]:.4f} <= {short(limit)} in {best['pass_share']:.0%} of simulated test splits "
                      f"(fairness.pass_share = {needed:g}){gates}, and within{_others(best).removeprefix(' and')} "
                      f"on the rows (all limits in {_joint(best):.0%} of the splits)")
    missed = "" if every or not within else \
        "; no head is also within every other limit of gates.fairness: "
    confident = [p for p in (every or within) if p["pass_share"] >= needed]
    if confident:
        best = max(confident, key=lambda p: (round(p["accuracy"], 6), p["bound"]))
        return best, (f"{head_name(best['bound'])}: the most accurate on {how} ({best['accuracy']:.4f}) with {what} "
                      f"{best[key]:.4f} <= {short(limit)} in {best['pass_share']:.0%} of simulated test splits "
                      f"(fairness.pass_share = {needed:g}){gates}{missed}{'; '.join(unmet(best))}")
    if within:
        best = max(every or within, key=lambda p: (p["pass_share"], round(p["accuracy"], 6)))
        return best, (f"{head_name(best['bound'])}: {what} {best[key]:.4f} <= {short(limit)} on {how} at accuracy "
                      f"{best['accuracy']:.4f}{gates}, but within the limit in only {best['pass_share']:.0%} of "
                      f"simulated test splits (fairness.pass_share = {needed:g}): the test split may not pass"
                      f"{missed}{'; '.join(unmet(best))}")
    return None, ""


REACH_ACCURACY = 0.01  # a head reaches the reductions baseline's point at most this far below its accuracy


def reaching(points: list[dict[str, Any]], baseline: dict[str, Any], key: str, slack: float) -> list[dict[str, Any]]:
    """The heads at the reductions baseline's point on the held-out rows: accuracy at most REACH_ACCURACY below the
    baseline's and disparity at most the baseline's + `slack`."""
    if baseline.get(key) is None:
        return []
    return [p for p in points if p[key] is not None and p[key] <= baseline[key] + slack
            and round(p["accuracy"], 6) >= round(baseline["accuracy"] - REACH_ACCURACY, 6)]


def frontier_choice(points: list[dict[str, Any]], baseline: dict[str, Any], limit: float | None, key: str,
                    floor: float | None, floor_text: str, needed: float, how: str) -> tuple[dict[str, Any] | None, str]:
    """`fairness.target: frontier`: of the heads reaching the reductions baseline's point (its disparity; failing
    that, 0.01 above it), the one `choose` deploys, when it also passes every limit of the fairness gate at once in
    the share of simulated test splits asked (`joint_pass_share`); else None."""
    what = key.replace("_", " ")
    for slack in (0.0, REACH_ACCURACY):
        best, why = choose(reaching(points, baseline, key, slack), limit, key, floor, floor_text, needed, how)
        if best is not None and (limit is None or _joint(best) >= needed):
            at = f"{baseline[key]:.4f}" + (f" + {slack:g}" if slack else "")
            return best, (f"{why}; it reaches the reductions baseline's point on {how}: accuracy within "
                          f"{REACH_ACCURACY:g} of {baseline['accuracy']:.4f}, {what} at most {at}")
    return None, ""


def _others(point: dict[str, Any]) -> str:
    """` and the gate's 3 other limits`: the other limits the share counts, when there are any."""
    count = len(point.get("other_limits", []))
    return f" and the fairness gate's {count} other limit{'s' if count > 1 else ''}" if count else ""


def stop_line(points: list[dict[str, Any]], limit: float | None, key: str, floor: float | None, floor_text: str,
              how: str, simple: dict[str, float], min_gain: float | None,
              baseline: dict[str, Any] | None = None) -> tuple[dict[str, Any], str]:
    """When no head can be released: the head kept for inspection and the one line the run stops with (with where
    the reductions baseline got on the same rows, when measured). Where logistic regression itself does not beat
    the majority class, the reason is the data, not fairness."""
    usable = [p for p in points if not p.get("one_class")] or points
    majority, logistic = simple["majority_class"], simple["logistic_regression"]
    if min_gain is not None and logistic < majority + min_gain and \
            not any(floor is None or p["accuracy"] >= floor for p in usable):
        best = max(usable, key=lambda p: p["accuracy"])
        return best, (f"no signal beyond the majority class on {how}: logistic regression {logistic:.4f} and the "
                      f"best network {best['accuracy']:.4f} against always answering the majority class "
                      f"{majority:.4f} (gates.keras.min_gain_over_majority = {min_gain:g}); no model is released")
    measured = [p for p in usable if p[key] is not None] or usable
    best = min(measured, key=lambda p: (p[key] if p[key] is not None else float("inf"), -p["accuracy"]))
    bound = "answering both classes" if limit is None else f"the bound {key.replace('_', ' ')} <= {short(limit)}"
    gates = f" and {floor_text}" if floor is not None else ""
    reached = "undefined" if best[key] is None else f"{best[key]:.4f}"
    also = "" if baseline is None or baseline.get(key) is None else \
        f"; the reductions baseline reaches {baseline[key]:.4f} at accuracy {baseline['accuracy']:.4f} there"
    return best, (f"no network meets {bound}{gates} on {how}: the lowest disparity reached is {reached} at "
                  f"accuracy {best['accuracy']:.4f} ({head_name(best['bound'])} head){also}; no model is released")
