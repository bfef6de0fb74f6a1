"""Local differential privacy for the sensitive attribute, and what the server can still learn from it.

Each device reports its group through k-ary randomized response (Warner 1965; Kairouz et al. 2016): the true
group with probability e^eps / (e^eps + k - 1), else one of the other k - 1 uniformly. The report is drawn
once per device and salt epoch and then repeated (memoized, as RAPPOR does), so averaging a device's days
cannot undo the noise. That is eps-LDP for the attribute, per epoch.

The server never learns a device's group, but group totals are identifiable: if P[r, g] is the probability
of reporting r when the truth is g, the expected reported totals are P @ true totals, so P^-1 @ reported
totals is unbiased. Group selection rates are ratios of such totals; their gap gets a delta-method
interval from per-device influence values (devices are the independent units).
"""
from __future__ import annotations

import hashlib
from statistics import NormalDist

import numpy as np


def keep_probability(epsilon: float, k: int) -> float:
    return float(np.exp(epsilon) / (np.exp(epsilon) + k - 1))


def channel(epsilon: float, k: int) -> np.ndarray:
    """P[reported, true] of k-ary randomized response."""
    keep = keep_probability(epsilon, k)
    matrix = np.full((k, k), (1 - keep) / (k - 1))
    np.fill_diagonal(matrix, keep)
    return matrix


def randomize(groups: np.ndarray, epsilon: float, k: int, rng: np.random.Generator) -> np.ndarray:
    """What devices in `groups` (0..k-1) report."""
    groups = np.asarray(groups, dtype=np.int64)
    keep = rng.random(len(groups)) < keep_probability(epsilon, k)
    other = (groups + rng.integers(1, k, size=len(groups))) % k  # uniform over the k - 1 other groups
    return np.where(keep, groups, other)


def device_key(install_id: str, salt: str) -> str:
    """The pseudonymous device id: a salted hash (a new salt each epoch unlinks the epochs)."""
    return hashlib.sha256(f"{salt}:{install_id}".encode()).hexdigest()[:32]


def bucket(install_id: str, experiment: str) -> int:
    """Stable 0..99 assignment bucket of a device for a rollout or an experiment."""
    return int(hashlib.sha256(f"{experiment}:{install_id}".encode()).hexdigest()[:8], 16) % 100


def debiased_contributions(values: np.ndarray, reported: np.ndarray, epsilon: float, k: int) -> np.ndarray:
    """Per device, its unbiased contribution to each true group's total: values x P^-1[:, reported]."""
    inverse = np.linalg.inv(channel(epsilon, k))
    return np.asarray(values, dtype=float)[:, None] * inverse[:, np.asarray(reported, dtype=np.int64)].T


def debiased_rates(positives: np.ndarray, counts: np.ndarray, epsilon: float, k: int) -> np.ndarray:
    """Each true group's selection rate from totals per *reported* group (P^-1 applied to both totals); NaN for a
    group whose debiased count is not positive. Sums are all it needs, so SQL totals give the same rates."""
    inverse = np.linalg.inv(channel(epsilon, k))
    a, b = inverse @ np.asarray(positives, float), inverse @ np.asarray(counts, float)
    return a / np.where(b > 0, b, np.nan)


def gap(rates: np.ndarray) -> float | None:
    """The largest gap between two groups' rates (None when no rate is defined)."""
    return None if np.all(np.isnan(rates)) else float(np.nanmax(rates) - np.nanmin(rates))


def group_rates(positives: np.ndarray, counts: np.ndarray, reported: np.ndarray, epsilon: float, k: int,
                confidence: float = 0.95) -> dict:
    """Debiased selection rate of each true group, the largest gap between two groups, and its interval.

    `positives` and `counts` are per device (positive predictions, inferences), `reported` its RR report.
    """
    n = len(counts)
    if n < 2:
        return {"rates": [None] * k, "gap": None, "se": None, "low": None, "high": None, "devices": n}
    a = debiased_contributions(positives, reported, epsilon, k)  # n x k
    b = debiased_contributions(counts, reported, epsilon, k)
    mean_b = b.mean(axis=0)
    safe_b = np.where(mean_b > 0, mean_b, np.nan)
    report = np.asarray(reported, dtype=np.int64)
    rates = debiased_rates(np.bincount(report, weights=np.asarray(positives, float), minlength=k),
                           np.bincount(report, weights=np.asarray(counts, float), minlength=k), epsilon, k)
    hi, lo = int(np.nanargmax(rates)), int(np.nanargmin(rates))
    influence = (a[:, hi] - rates[hi] * b[:, hi]) / safe_b[hi] - (a[:, lo] - rates[lo] * b[:, lo]) / safe_b[lo]
    gap = float(rates[hi] - rates[lo])
    se = float(influence.std(ddof=1) / np.sqrt(n))
    z = NormalDist().inv_cdf(0.5 + confidence / 2)  # stdlib: the fleet assets load without scipy
    return {"rates": [float(r) for r in rates], "gap": gap, "se": se, "low": gap - z * se, "high": gap + z * se,
            "pair": (hi, lo), "influence": influence, "devices": n}
