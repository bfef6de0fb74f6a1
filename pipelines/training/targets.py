"""Fair training targets for `fairness.method: bound`'s extra heads: the reductions baseline's soft decisions
(distillation) and massaged labels (each group's positive rate moved towards the overall rate, rows chosen by
logistic regression's ranking within the group). The network trained on them needs no sensitive input."""
from __future__ import annotations

from typing import Any

import numpy as np

DISTILLED = 2.0  # head keys above every bound (bounds are at most 1): the extra heads' names in sweep files
MASSAGED = {3.0: 1.0, 3.5: 1.5}  # head key -> how far each group's gap to the overall rate is closed (1: fully)


def extra_heads(constraint: str) -> list[float]:
    """The extra heads' keys: the distilled head; massaged ones only for demographic parity (their rates are
    selection rates)."""
    return [DISTILLED] + (sorted(MASSAGED) if constraint == "demographic_parity" else [])


def head_name(key: float) -> str:
    """How a head is named in the choice's lines: `bound 0.05`, `distilled from ExponentiatedGradient`, ..."""
    if key == DISTILLED:
        return "distilled from ExponentiatedGradient"
    if key in MASSAGED:
        return f"massaged x{MASSAGED[key]:g}"
    return f"bound {key:g}"


def massaged(labels: np.ndarray, y: np.ndarray, score: np.ndarray, closed: float) -> np.ndarray:
    """0/1 targets: in each group the rows ranked highest by `score` are positive, as many as the group's rate
    moved by `closed` x its gap towards the overall rate (1: every group at the overall rate; 1.5: half the gap
    the other way, room for what a network without the group as input keeps of it)."""
    overall, out = float(np.mean(y)), np.zeros(len(y), np.float32)
    for group in np.unique(labels):
        rows = np.flatnonzero(labels == group)
        rate = float(np.mean(y[rows]))
        wanted = int(round(np.clip(rate + closed * (overall - rate), 0.0, 1.0) * len(rows)))
        out[rows[np.argsort(-score[rows], kind="stable")[:wanted]]] = 1.0
    return out


class FairTargets:
    """The fitted teachers: ExponentiatedGradient (its soft decisions) and logistic regression (the ranking)."""

    def __init__(self, reduction: Any, ranking: Any, constraint: str):
        self.reduction, self.ranking, self.constraint = reduction, ranking, constraint

    def on(self, x: np.ndarray, y: np.ndarray, labels: np.ndarray) -> dict[float, np.ndarray]:
        """Each extra head's targets for these rows (massaged with these rows' own group rates)."""
        from pipelines.training.mitigation import soft_decisions

        out = {DISTILLED: soft_decisions(self.reduction, x).astype(np.float32)}
        if self.constraint == "demographic_parity":
            score = self.ranking.predict_proba(x)[:, 1]
            out |= {key: massaged(labels, y, score, closed) for key, closed in MASSAGED.items()}
        return out


def fit_targets(x: np.ndarray, y: np.ndarray, labels: np.ndarray, config: Any, seed: int) -> tuple[FairTargets, dict]:
    """The teachers fitted on these rows, and the reductions baseline's facts (the trade-off reuses the baseline
    when these are all the training rows it would fit on)."""
    from sklearn.linear_model import LogisticRegression

    from pipelines.training.mitigation import reductions_baseline

    _, facts = reductions_baseline(x, y, labels, config)
    ranking = LogisticRegression(max_iter=1000, random_state=seed).fit(x, y) \
        if config.constraint == "demographic_parity" else None
    return FairTargets(facts["fitted"], ranking, config.constraint), facts
