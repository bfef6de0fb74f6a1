"""The gate's group figures from confusion counts: each group's rates, which groups a rate is measured over, and the
gaps between them (fairlearn's definitions). One definition for the fairness report, the bound choice and the test
share the split sizes for the gate (pipelines.data.split_size), which is why it lives in core."""
from __future__ import annotations

import warnings

import numpy as np


def intersection_name(columns: list[str]) -> str:
    """The key of the intersection of several sensitive features, e.g. `sex:race` (an interaction term;
    also a valid MLflow key, which `+` or `&` are not)."""
    return ":".join(columns)


def rates(counts: np.ndarray) -> dict[str, np.ndarray]:
    """The four rates from confusion counts (last axis [TN, FP, FN, TP]); NaN where undefined.

    fairlearn's definitions: accuracy (TP+TN)/n, selection rate (TP+FP)/n, TPR TP/(TP+FN), FPR FP/(FP+TN);
    the same integer ratios as MetricFrame's, so the same floats. Where fairlearn reports 0 for a rate
    without a denominator (no positives, no negatives), this gives NaN.
    """
    tn, fp, fn, tp = (counts[..., i].astype(float) for i in range(4))
    with np.errstate(invalid="ignore", divide="ignore"):
        return {"accuracy": (tp + tn) / (tn + fp + fn + tp), "selection_rate": (tp + fp) / (tn + fp + fn + tp),
                "true_positive_rate": tp / (tp + fn), "false_positive_rate": fp / (fp + tn)}


def spread(values: np.ndarray, eligible: np.ndarray) -> np.ndarray:
    """Max minus min over the eligible groups (last axis), ignoring undefined rates; undefined (NaN) unless two
    groups have the rate: one group has no gap to measure."""
    kept = np.where(eligible, values, np.nan)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices: no eligible group with that rate
        gap = np.nanmax(kept, axis=-1) - np.nanmin(kept, axis=-1)
    return np.where(np.sum(~np.isnan(kept), axis=-1) >= 2, gap, np.nan)


def measured_groups(counts: np.ndarray, minimum: int) -> dict[str, np.ndarray]:
    """Per rate, the groups it is measured over: at least `minimum` rows in the group and in the rate's own
    denominator (all the group's rows for accuracy and selection rate, its positives for the true positive rate,
    its negatives for the false positive rate). `counts`: [..., groups, 4] as [TN, FP, FN, TP].

    A rate over a few rows is noise, whatever the group's size: a group of 60 with 5 negatives has a false
    positive rate that moves by 0.2 with one row."""
    sized = counts.sum(axis=-1) >= minimum
    return {"accuracy": sized, "selection_rate": sized,
            "true_positive_rate": sized & (counts[..., 2] + counts[..., 3] >= minimum),
            "false_positive_rate": sized & (counts[..., 0] + counts[..., 1] >= minimum)}


def differences(rates: dict[str, np.ndarray], measured: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Demographic parity difference, equalized odds difference (fairlearn's definitions) and accuracy gap, each
    rate over the groups `measured_groups` measures it on; the equalized odds difference is the larger of the two
    gaps that can be measured."""
    tpr = spread(rates["true_positive_rate"], measured["true_positive_rate"])
    fpr = spread(rates["false_positive_rate"], measured["false_positive_rate"])
    return {"demographic_parity_difference": spread(rates["selection_rate"], measured["selection_rate"]),
            "equalized_odds_difference": np.fmax(tpr, fpr),
            "accuracy_gap": spread(rates["accuracy"], measured["accuracy"])}
