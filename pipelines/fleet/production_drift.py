"""Production drift: DP-noised input histograms from telemetry against the release's reference profile.

Each reporting device-day contributes the bucket counts of one sampled input, so adding or removing a
device-day changes each feature's histogram by at most 1 (L1 sensitivity 1). Laplace noise of scale
1 / fleet.histogram_epsilon per bucket makes each published histogram epsilon-DP (central DP, on top of the
pseudonymous ids); PSI on the reference's bins then says whether production inputs moved.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from pipelines.data.drift import psi


def noisy(counts: dict[str, list[int]], epsilon: float, seed: int = 0) -> dict[str, np.ndarray]:
    """Each histogram with Laplace(1/epsilon) noise, clipped at zero."""
    rng = np.random.default_rng(seed)
    return {name: np.clip(np.asarray(c, float) + rng.laplace(0, 1 / epsilon, len(c)), 0, None)
            for name, c in counts.items()}


def reference_shares(feature: dict[str, Any]) -> np.ndarray:
    """The reference profile's bin shares, in the contract's order (categorical: categories, then other)."""
    if feature["kind"] == "numeric":
        return np.asarray(feature["proportions"], float)
    counts = np.asarray(list(feature["counts"].values()) + [0], float)
    return counts / counts.sum()


def drift(counts: dict[str, list[int]], profile: dict[str, Any], epsilon: float, threshold: float,
          seed: int = 0) -> dict[str, Any]:
    """PSI per feature of the noised production histograms against the reference; drift if any exceeds."""
    features: dict[str, dict[str, Any]] = {}
    for name, hist in noisy(counts, epsilon, seed).items():
        ref = profile["features"].get(name)
        if ref is None:
            continue
        expected = reference_shares(ref)
        if len(expected) != len(hist) or hist.sum() <= 0:
            features[name] = {"psi": None, "reason": "bins differ from the reference profile"}
            continue
        value = psi(expected, hist / hist.sum())
        features[name] = {"psi": value, "drift": value > threshold, "reports": int(round(hist.sum()))}
    drifted = sorted(n for n, f in features.items() if f.get("drift"))
    return {"drift": bool(drifted), "drifted": drifted, "threshold": threshold, "epsilon": epsilon,
            "features": features}
