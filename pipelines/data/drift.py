"""Drift of new data (and of the reference model's predictions on it) against a reference profile.

Per feature: PSI on the reference's bins, plus a KS test (numeric) or a chi-squared test (categorical).
With tens of thousands of rows the tests flag tiny shifts, so a test only counts as drift when PSI also
exceeds `min_effect`; PSI above `psi_threshold` counts on its own.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from pipelines.core.config import DriftConfig
from pipelines.data.order_stats import Batches, histogram, quantiles

EPS = 1e-4
QUANTILES = 1000  # the reference keeps its distribution as this many quantiles (a sample for KS)
BINS = 10


def numeric_profile(batches: Batches) -> dict[str, Any]:
    """A numeric column's profile, read in batches (each call of `batches` reads it again): BINS bins cut at its
    quantiles with the share of values in each, QUANTILES quantiles and the count. The figures are np.quantile's and
    np.histogram's on the whole column (pipelines.data.order_stats), whatever its length."""
    count, (cuts, spread) = quantiles(batches, [np.linspace(0, 1, BINS + 1), np.linspace(0, 1, QUANTILES)])
    edges = np.unique(cuts)
    counts = histogram(batches, _open_edges(edges))
    return {"kind": "numeric", "edges": edges.tolist(), "proportions": (counts / counts.sum()).tolist(),
            "quantiles": spread.tolist(), "count": count}


def _numeric_profile(values: np.ndarray) -> dict[str, Any]:
    return numeric_profile(lambda: (values,))


def _open_edges(edges: np.ndarray) -> np.ndarray:
    inner = np.asarray(edges, dtype=float)[1:-1]
    return np.concatenate([[-np.inf], inner, [np.inf]])


def profile_frame(frame: pd.DataFrame, columns: list[str]) -> dict[str, Any]:
    """What a later run needs to test drift against this data, without keeping any rows."""
    features = {}
    for column in columns:
        values = frame[column].dropna()
        if pd.api.types.is_numeric_dtype(values):
            features[column] = _numeric_profile(values.to_numpy(dtype=float))
        else:
            counts = values.astype(str).value_counts()
            features[column] = {"kind": "categorical", "counts": {str(k): int(v) for k, v in counts.items()}}
    return {"rows": len(frame), "features": features}


def schema_difference(reference: dict[str, Any], current: dict[str, Any]) -> str | None:
    """How two profiles' columns differ (names or numeric/categorical kind); None when they are the same schema."""
    ref, now = reference["features"], current["features"]
    missing, new = sorted(set(ref) - set(now)), sorted(set(now) - set(ref))
    kinds = sorted(c for c in set(ref) & set(now) if ref[c]["kind"] != now[c]["kind"])
    parts = [f"{label}: {', '.join(cols[:5])}" for label, cols in
             (("missing today", missing), ("new today", new), ("type changed", kinds)) if cols]
    return "; ".join(parts) or None


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index of two proportion vectors over the same bins."""
    e, a = np.clip(expected, EPS, None), np.clip(actual, EPS, None)
    return float(np.sum((a - e) * np.log(a / e)))


def _numeric_drift(ref: dict[str, Any], values: np.ndarray) -> dict[str, Any]:
    # imported here: scipy.stats takes a second to import, and a run without a reference release never needs it
    from scipy import stats

    counts = np.histogram(values, bins=_open_edges(np.asarray(ref["edges"])))[0]
    actual = counts / max(counts.sum(), 1)
    test = stats.ks_2samp(np.asarray(ref["quantiles"]), values)
    return {"kind": "numeric", "psi": psi(np.asarray(ref["proportions"]), actual), "test": "ks",
            "statistic": float(test.statistic), "p_value": float(test.pvalue)}


def _categorical_drift(ref: dict[str, Any], values: pd.Series) -> dict[str, Any]:
    from scipy import stats

    new = values.astype(str).value_counts()
    categories = sorted(set(ref["counts"]) | set(new.index))
    ref_counts = np.array([ref["counts"].get(c, 0) for c in categories], dtype=float)
    new_counts = np.array([new.get(c, 0) for c in categories], dtype=float)
    table = np.vstack([ref_counts, new_counts])
    table = table[:, table.sum(axis=0) > 0]
    chi2, p_value = (stats.chi2_contingency(table)[:2] if table.shape[1] > 1 else (0.0, 1.0))
    unseen = [c for c in categories if c not in ref["counts"]]
    return {"kind": "categorical", "psi": psi(ref_counts / ref_counts.sum(), new_counts / new_counts.sum()),
            "test": "chi2", "statistic": float(chi2), "p_value": float(p_value), "unseen": unseen[:10]}


def _verdict(result: dict[str, Any], config: DriftConfig) -> bool:
    significant = result["p_value"] < config.p_value and result["psi"] > config.min_effect
    return bool(result["psi"] > config.psi_threshold or significant)


def compare(reference: dict[str, Any], frame: pd.DataFrame, config: DriftConfig, seed: int = 0) -> dict[str, Any]:
    """Per-feature drift of `frame` against a reference profile, with the overall verdict."""
    if len(frame) > config.sample_rows:
        frame = frame.sample(config.sample_rows, random_state=seed)
    features = {}
    for column, ref in reference["features"].items():
        if column not in frame:
            features[column] = {"kind": ref["kind"], "psi": float("inf"), "p_value": 0.0, "test": "missing",
                                "statistic": float("nan"), "drifted": True}
            continue
        values = frame[column].dropna()
        result = (_numeric_drift(ref, values.to_numpy(dtype=float)) if ref["kind"] == "numeric"
                  else _categorical_drift(ref, values))
        features[column] = result | {"drifted": _verdict(result, config)}
    drifted = [c for c, r in features.items() if r["drifted"]]
    return {"features": features, "drifted": drifted, "drift": bool(drifted)}


def prediction_drift(reference_quantiles: list[float], proba: np.ndarray, config: DriftConfig) -> dict[str, Any]:
    """The reference model's score distribution on new data vs on its own data."""
    result = _numeric_drift(_numeric_profile(np.asarray(reference_quantiles)), proba)
    return result | {"drifted": _verdict(result, config)}
