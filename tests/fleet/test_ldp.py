"""Randomized response: the report is eps-LDP, and the debiased group rates and gap are unbiased with
intervals that cover."""
from __future__ import annotations

import numpy as np

from pipelines.fleet import ldp


def test_the_channel_is_epsilon_ldp_and_invertible():
    for k in (2, 5):
        p = ldp.channel(1.0, k)
        assert np.allclose(p.sum(axis=0), 1)
        assert np.isclose(p.max(axis=1).max() / p.min(), np.exp(1.0))  # likelihood ratio bound e^eps
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 2, 200_000)
    reported = ldp.randomize(truth, 1.0, 2, rng)
    assert abs((reported == truth).mean() - ldp.keep_probability(1.0, 2)) < 0.005


def _devices(rng, n=4000, rates=(0.15, 0.30), k=2, epsilon=1.0):
    truth = rng.integers(0, k, n)
    counts = rng.poisson(10, n)
    positives = rng.binomial(counts, np.asarray(rates)[truth])
    return truth, counts, positives, ldp.randomize(truth, epsilon, k, rng)


def test_debiased_gap_interval_covers_the_true_gap_in_most_samples():
    rng = np.random.default_rng(1)
    covered, estimates = 0, []
    for _ in range(200):
        truth, counts, positives, reported = _devices(rng)
        realized = [positives[truth == g].sum() / counts[truth == g].sum() for g in (0, 1)]
        result = ldp.group_rates(positives, counts, reported, 1.0, 2)
        true_gap = max(realized) - min(realized)
        covered += result["low"] <= true_gap <= result["high"]
        estimates.append(result["gap"] - true_gap)
    assert covered / 200 >= 0.9
    assert abs(np.mean(estimates)) < 0.01  # unbiased up to noise (naive rates on reports would shrink the gap)


def test_naive_rates_on_reports_are_biased_and_the_debiased_ones_are_not():
    rng = np.random.default_rng(2)
    _truth, counts, positives, reported = _devices(rng, n=50_000, rates=(0.1, 0.4, 0.2), k=3)
    naive = [positives[reported == g].sum() / counts[reported == g].sum() for g in (0, 1, 2)]
    debiased = ldp.group_rates(positives, counts, reported, 1.0, 3)["rates"]
    assert naive[1] - naive[0] < 0.2  # shrunk towards each other by the noise
    assert np.allclose(debiased, [0.1, 0.4, 0.2], atol=0.03)
