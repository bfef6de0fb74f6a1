"""Classification metrics overall and per sensitive group."""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from pipelines.core.group_rates import differences, intersection_name, measured_groups, rates
from pipelines.training.auc import below_and_ties, mann_whitney


def roc_auc(y_true: np.ndarray, proba: np.ndarray, chunk: int = 1 << 20) -> float:
    """ROC AUC as the Mann-Whitney statistic (ties counted half: sklearn's roc_auc_score), NaN with one class.

    Exact, in about 5 bytes a row: the negatives' scores sorted in place, each positive's place among them found by
    binary search, `chunk` rows at a time (sklearn's sorts and cumulative sums held about 60 bytes a row)."""
    proba = np.asarray(proba)
    if np.isnan(proba).any():
        raise ValueError("Input contains NaN.")
    positive = np.asarray(y_true) > 0.5
    negatives = proba[~positive]
    negatives.sort()
    below = ties = 0
    for start in range(0, len(proba), chunk):  # the positives a chunk at a time
        b, t = below_and_ties(negatives, proba[start:start + chunk][positive[start:start + chunk]])
        below, ties = below + b, ties + t
    return mann_whitney(below, ties, len(proba) - len(negatives), len(negatives))


def classification_metrics(y_true: np.ndarray, proba: np.ndarray, threshold: float) -> dict[str, float]:
    """Accuracy, AUC, precision, recall, F1 and selection rate at the decision threshold (as sklearn's scores with
    zero_division=0), from the confusion counts: a byte a row at a time, not sklearn's copies."""
    proba = np.asarray(proba)
    predicted, truth = proba >= threshold, np.asarray(y_true) > 0.5
    tp = int(np.count_nonzero(predicted & truth))
    selected, positives = int(np.count_nonzero(predicted)), int(np.count_nonzero(truth))
    confusion = np.array([len(proba) - selected - positives + tp, selected - tp, positives - tp, tp])
    return classification_figures(confusion, roc_auc(truth, proba))


def classification_figures(confusion: np.ndarray, auc: float) -> dict[str, float]:
    """classification_metrics from the confusion counts [TN, FP, FN, TP] and the AUC."""
    tn, fp, fn, tp = (int(v) for v in confusion)
    rows, selected, positives = tn + fp + fn + tp, tp + fp, tp + fn
    return {
        "accuracy": (rows - fp - fn) / rows if rows else float("nan"),
        "auc": auc,
        "precision": tp / selected if selected else 0.0,
        "recall": tp / positives if positives else 0.0,
        "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0,
        "selection_rate": selected / rows if rows else float("nan"),
        "rows": int(rows),
    }


MISSING_GROUP = "(missing)"
RATES = ("accuracy", "selection_rate", "true_positive_rate", "false_positive_rate")
DIFFERENCES = ("demographic_parity_difference", "equalized_odds_difference", "accuracy_gap")


def _group_labels(values: pd.Series) -> np.ndarray:
    """Group names as text; a missing value is its own group (fairlearn rejects missing values)."""
    return values.astype("string").fillna(MISSING_GROUP).to_numpy(dtype=object)


def groupings(groups: pd.DataFrame, intersection: bool = False) -> dict[str, np.ndarray]:
    """Group label per row for each sensitive feature, plus their intersection (`Female:White`) if asked."""
    result = {str(c): _group_labels(groups[c]) for c in groups.columns}
    if intersection and len(groups.columns) > 1:
        joined = [":".join(values) for values in zip(*result.values())]
        result[intersection_name([str(c) for c in groups.columns])] = np.array(joined, dtype=object)
    return result


COUNT_CHUNK = 1 << 20  # rows per bincount: its int64 cells stay 8 MiB, whatever the split's size


def cell_counts(codes: np.ndarray, k: int, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Rows per group and (label, decision): shape (k, 4) as [TN, FP, FN, TP]. `y_true` and `y_pred` are 0/1
    (bool or int); counted COUNT_CHUNK rows at a time."""
    out = np.zeros(4 * k, np.int64)
    for start in range(0, len(codes), COUNT_CHUNK):
        stop = start + COUNT_CHUNK
        cells = codes[start:stop].astype(np.int64) * 4
        cells += np.asarray(y_true[start:stop], np.int64) * 2
        cells += np.asarray(y_pred[start:stop], np.int64)
        out += np.bincount(cells, minlength=4 * k)
    return out.reshape(k, 4)


def labelled_groups(labels: np.ndarray, y_true: np.ndarray, names: list[str], minimum: int) -> dict[str, np.ndarray]:
    """measured_groups for rows known only by group and label (no decisions), in the order of `names`: which groups
    each rate would be measured over on these rows, e.g. a split's test rows before a model scores them."""
    labels, positive = np.asarray(labels), np.asarray(y_true) > 0.5
    counts = np.zeros((len(names), 4), np.int64)
    for i, name in enumerate(names):
        mine = labels == name
        counts[i, 0], counts[i, 2] = np.count_nonzero(mine & ~positive), np.count_nonzero(mine & positive)
    return measured_groups(counts, minimum)


def _number(value: float) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


def _interval(samples: np.ndarray, confidence: float) -> list[float | None]:
    """Percentile bootstrap interval over the first axis, NaN-aware."""
    tail = (1 - confidence) / 2 * 100
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        low, high = np.nanpercentile(samples, [tail, 100 - tail], axis=0)
    return [_number(low), _number(high)]


def bootstrap_counts(counts: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """`n_boot` resamples of the rows as cell counts, shape (n_boot, *counts.shape).

    Resampling rows with replacement only changes how many rows fall in each cell, so a multinomial
    draw over the cells is the same bootstrap as resampling rows, without touching the rows.
    """
    flat = counts.reshape(-1)
    draws = np.random.default_rng(seed).multinomial(int(flat.sum()), flat / flat.sum(), size=n_boot)
    return draws.reshape(n_boot, *counts.shape)


GroupCodes = dict[str, tuple[np.ndarray, np.ndarray]]  # grouping -> (sorted group names, a code per row)


def group_codes(groups: pd.DataFrame, intersection: bool = False) -> GroupCodes:
    """Each grouping's group names (sorted) and a group code per row: what the per-group figures count by. A few
    bytes a row instead of a string a row, so a large split's groups can be kept chunk by chunk
    (`merge_group_codes`)."""
    out = {}
    for name, labels in groupings(groups, intersection).items():
        names, codes = np.unique(labels.astype(str), return_inverse=True)
        out[name] = (names, codes.astype(np.int32))
    return out


def merge_group_codes(parts: list[GroupCodes]) -> GroupCodes:
    """The codes of consecutive chunks as `group_codes` gives them for all their rows at once (the same sorted
    names, the same codes)."""
    out = {}
    for name in (parts[0] if parts else {}):
        names = np.unique(np.concatenate([p[name][0] for p in parts]))
        out[name] = (names, np.concatenate([np.searchsorted(names, p[name][0]).astype(np.int32)[p[name][1]]
                                            for p in parts]))
    return out


def compact_codes(groups: GroupCodes) -> GroupCodes:
    """The same codes in the smallest signed type that holds them, as pandas keeps a categorical's codes (so
    `pd.Categorical.from_codes` shares them): a byte a row for up to 128 groups, where `group_codes` gives four
    (what a step keeps for a large split's rows)."""
    def smallest(count: int) -> type:
        return next(t for t in (np.int8, np.int16, np.int32) if count <= np.iinfo(t).max + 1)

    return {name: (names, codes.astype(smallest(len(names)), copy=False)) for name, (names, codes) in groups.items()}


def _as_codes(groups: pd.DataFrame | GroupCodes, intersection: bool) -> GroupCodes:
    return groups if isinstance(groups, dict) else group_codes(groups, intersection)


def group_metrics(
    y_true: np.ndarray, proba: np.ndarray, groups: pd.DataFrame | GroupCodes, threshold: float, *,
    intersection: bool = False, min_group_size: int = 1, n_boot: int = 0, confidence: float = 0.95, seed: int = 0,
) -> dict[str, dict[str, Any]]:
    """Per sensitive feature (and their intersection): rates by group and the gaps, by fairlearn's definitions.

    Each group has its row count, accuracy, selection rate, true and false positive rate (None where a
    group has no positives or no negatives). The demographic parity difference, equalized odds difference
    and accuracy gap are taken over groups with at least `min_group_size` rows; smaller groups are listed
    under `small_groups` and left out. With `n_boot`, every figure gets a percentile bootstrap interval.

    The rates come from each group's confusion counts (one `np.bincount` per grouping) rather than from
    fairlearn's MetricFrame, whose per-group pandas calls cost ~0.3 s each; the figures are fairlearn's
    (MetricFrame rates, demographic_parity_difference, equalized_odds_difference), and
    tests/governance/test_fairness_metrics.py checks them against fairlearn on Adult rows and edge cases.
    `groups` is the sensitive columns, or their `group_codes` (a large split's, gathered chunk by chunk).
    """
    y_true = np.asarray(y_true) > 0.5  # 0/1 labels as a byte a row
    y_pred = np.asarray(proba) >= threshold
    return {name: group_figures(names, cell_counts(codes, len(names), y_true, y_pred), min_group_size=min_group_size,
                                n_boot=n_boot, confidence=confidence, seed=seed)
            for name, (names, codes) in _as_codes(groups, intersection).items()}


def group_figures(names: np.ndarray, counts: np.ndarray, *, min_group_size: int = 1, n_boot: int = 0,
                  confidence: float = 0.95, seed: int = 0) -> dict[str, Any]:
    """One grouping's group_metrics from its groups' (sorted) names and confusion cells [TN, FP, FN, TP]."""
    sizes = counts.sum(axis=1)
    measured = measured_groups(counts, min_group_size)
    eligible = measured["selection_rate"]
    point = rates(counts)  # NaN where a rate has no denominator (fairlearn reports 0 there)
    facts: dict[str, Any] = {
        "groups": {str(g): {"count": int(sizes[i]), "positives": int(counts[i, 2] + counts[i, 3]),
                            **{m: _number(point[m][i]) for m in RATES}} for i, g in enumerate(names)},
        **{d: _number(v) for d, v in differences(point, measured).items()},  # type: ignore[arg-type]
        "eligible_groups": int(eligible.sum()),
        "small_groups": [str(g) for g in names[~eligible]],
        # groups large enough to gate whose positives (negatives) are too few for their true (false) positive rate
        "unmeasured_rates": {rate: [str(g) for g in names[eligible & ~measured[rate]]]
                             for rate in ("true_positive_rate", "false_positive_rate")
                             if (eligible & ~measured[rate]).any()},
    }
    if n_boot:
        samples = bootstrap_counts(counts, n_boot, seed)
        sampled = rates(samples)
        for i, g in enumerate(names):
            facts["groups"][str(g)]["ci"] = {m: _interval(sampled[m][:, i], confidence) for m in RATES}
        facts["ci"] = {d: _interval(v, confidence) for d, v in differences(sampled, measured).items()}
    return facts


def equal_rates_floor(
    y_true: np.ndarray, proba: np.ndarray, groups: pd.DataFrame | GroupCodes, threshold: float, *, share: float,
    intersection: bool = False, min_group_size: int = 1, draws: int = 2000, seed: int = 0,
) -> dict[str, dict[str, float | None]]:
    """Per grouping, the disparity a model fair by construction still shows on test rows like these, at the `share`
    quantile of `draws` binomial draws per group and label: the demographic parity difference of a model that
    selects every group at this model's overall selection rate, and the equalized odds difference of one that gives
    every group this model's overall true and false positive rate. A limit below it fails such a fair model on more
    than 1 - share of test splits with these groups: they are too small to tell, whatever was trained."""
    y_true = np.asarray(y_true) > 0.5
    y_pred = np.asarray(proba) >= threshold
    cells = {name: (names, cell_counts(codes, len(names), y_true, y_pred))
             for name, (names, codes) in _as_codes(groups, intersection).items()}
    return floor_figures(cells, share=share, min_group_size=min_group_size, draws=draws, seed=seed)


LARGER = (1.5, 2.0, 2.5)  # test splits this many times larger, for which equal_rates_floor is also reported


def scaled_cells(cells: dict[str, tuple[np.ndarray, np.ndarray]], factor: float
                 ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each grouping's confusion cells as a test split `factor` times larger with the same composition would count
    them (rounded): a group under gates.fairness.min_group_size here may be gated there."""
    return {name: (names, np.rint(np.asarray(counts) * factor).astype(np.int64)) for name, (names, counts) in
            cells.items()}


def floor_figures(cells: dict[str, tuple[np.ndarray, np.ndarray]], *, share: float, min_group_size: int = 1,
                  draws: int = 2000, seed: int = 0) -> dict[str, dict[str, float | None]]:
    """equal_rates_floor from each grouping's group names and confusion cells [TN, FP, FN, TP] (every grouping
    counts the same rows)."""
    total = next(iter(cells.values()))[1].sum(axis=0) if cells else np.zeros(4, np.int64)
    tp, selected, positives = int(total[3]), int(total[1] + total[3]), int(total[2] + total[3])
    negatives, rows = int(total[0] + total[1]), int(total.sum())
    rate = {"selection": selected / rows if rows else 0.0,
            "tpr": tp / positives if positives else 0.0,
            "fpr": (selected - tp) / negatives if negatives else 0.0}
    rng = np.random.default_rng(seed)
    result: dict[str, dict[str, float | None]] = {}
    for name, (names, counts) in cells.items():
        k = len(names)
        n_neg, n_pos = counts[:, 0] + counts[:, 1], counts[:, 2] + counts[:, 3]
        measured = measured_groups(counts, min_group_size)
        figures: dict[str, float | None] = {}
        for figure, (on_pos, on_neg) in {"demographic_parity_difference": ("selection", "selection"),
                                         "equalized_odds_difference": ("tpr", "fpr")}.items():
            drawn_fp = rng.binomial(n_neg, rate[on_neg], (draws, k))
            drawn_tp = rng.binomial(n_pos, rate[on_pos], (draws, k))
            gaps = differences(rates(np.stack([n_neg - drawn_fp, drawn_fp, n_pos - drawn_tp, drawn_tp], axis=-1)),
                                measured)[figure]
            figures[figure] = _number(np.nanquantile(gaps, share)) if np.isfinite(gaps).any() else None
        result[name] = figures
    return result


def quantization_effects(
    y_true: np.ndarray, reference: np.ndarray, variant: np.ndarray, groups: pd.DataFrame | GroupCodes,
    threshold: float, *,
    intersection: bool = False, min_group_size: int = 1, n_boot: int = 0, confidence: float = 0.95, seed: int = 0,
) -> dict[str, dict[str, Any]]:
    """Each group's accuracy change from a reference model (Keras) to a variant, with a paired bootstrap.

    `change` is variant minus reference accuracy (negative: the variant is worse for that group);
    `worst_drop` is the largest fall over groups with at least `min_group_size` rows.
    """
    y_true = np.asarray(y_true) > 0.5
    right_ref = (np.asarray(reference) >= threshold) == y_true
    right_var = (np.asarray(variant) >= threshold) == y_true
    # cells [both wrong, only variant right, only reference right, both right]
    return {name: quantization_figures(names, cell_counts(codes, len(names), right_ref, right_var),
                                       min_group_size=min_group_size, n_boot=n_boot, confidence=confidence, seed=seed)
            for name, (names, codes) in _as_codes(groups, intersection).items()}


def quantization_figures(names: np.ndarray, counts: np.ndarray, *, min_group_size: int = 1, n_boot: int = 0,
                         confidence: float = 0.95, seed: int = 0) -> dict[str, Any]:
    """One grouping's quantization_effects from its groups' names and paired cells [both wrong, only variant
    right, only reference right, both right]."""
    sizes = counts.sum(axis=1)
    eligible = sizes >= min_group_size
    change = (counts[:, 1] - counts[:, 2]) / sizes
    facts: dict[str, Any] = {"groups": {
        str(g): {"count": int(sizes[i]), "reference_accuracy": float((counts[i, 2] + counts[i, 3]) / sizes[i]),
                 "variant_accuracy": float((counts[i, 1] + counts[i, 3]) / sizes[i]),
                 "change": float(change[i]), "changed_decisions": int(counts[i, 1] + counts[i, 2])}
        for i, g in enumerate(names)}}
    drops = np.where(eligible, -change, np.nan)
    worst = int(np.nanargmax(drops)) if eligible.any() else None
    facts["worst_group"] = None if worst is None else str(names[worst])
    facts["worst_drop"] = None if worst is None else float(drops[worst])
    facts["small_groups"] = [str(g) for g in names[~eligible]]
    if n_boot:
        samples = bootstrap_counts(counts, n_boot, seed)
        with np.errstate(invalid="ignore", divide="ignore"):
            changes = (samples[..., 1] - samples[..., 2]) / samples.sum(axis=-1)
        for i, g in enumerate(names):
            facts["groups"][str(g)]["ci"] = _interval(changes[:, i], confidence)
    return facts


def agreement(a: np.ndarray, b: np.ndarray, threshold: float) -> float:
    """Share of rows where two models make the same decision."""
    return float(np.count_nonzero((a >= threshold) == (b >= threshold)) / len(a)) if len(a) else float("nan")


def too_small(grouping: str, facts: dict[str, Any], minimum: int) -> str:
    """Why a grouping's gap cannot be measured: its small groups with their row counts, and what to change."""
    counts = {g: facts["groups"][g]["count"] for g in facts["small_groups"]}
    small = ", ".join(f"{g} ({n} rows)" for g, n in counts.items()) or "none"
    largest = max(counts.values(), default=0)
    lower = f"lower gates.fairness.min_group_size to {largest}, " if 2 <= largest < minimum else ""
    return (f"{grouping}: only {facts['eligible_groups']} group(s) have at least gates.fairness.min_group_size = "
            f"{minimum} test rows (too small: {small}); the gap cannot be measured: {lower}give the test split more "
            f"rows (split.test_size), or set this grouping's limit to null in gates.fairness")
