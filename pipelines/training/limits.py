"""The fairness gate's other limits as training constraints: beside the constrained grouping's bound, every gated
grouping's demographic parity and equalized odds limits (each sensitive feature alone, their intersection), so the
primal-dual heads (pipelines.training.stacked's `side`) aim at what the test-split gate will check."""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import pandas as pd

CONSTRAINT = {"demographic_parity_difference": "demographic_parity",
              "equalized_odds_difference": "equalized_odds"}
SIDE_FLOOR = 0.7  # no head trains a side limit tighter than this share of it: the heads' fractions search the
# constrained grouping's trade-off; squeezing every other limit with them (to 0.15 of each) left the tight heads
# one answer, the majority class for everyone


class SideLimit(NamedTuple):
    """One further limit a bound head trains towards."""
    grouping: str  # `race`, or the intersection `race:male`
    columns: list[str]  # the sensitive columns the grouping is made of
    constraint: str  # demographic_parity or equalized_odds
    ratio: float  # its gate limit over the constrained limit: a head bound to b keeps it within ratio x b
    groups: list[str]  # the groups the gate measures (at least min_group_size test rows); others take no part
    floor: float = 0.0  # the tightest a head trains it to: SIDE_FLOOR x its gate limit


class Limits(NamedTuple):
    """What the bound heads train towards besides their bound's figure: which groups of the constrained grouping the
    gate measures (the others, too small to gate, take no part in the constraint: their few rows are noise), and
    the side limits."""
    groups: list[str]
    side: list[SideLimit]


def gated_groups(test_labels: np.ndarray, minimum: int) -> list[str]:
    """A grouping's groups the fairness gate measures: those with at least `minimum` test rows."""
    names, counts = np.unique(test_labels, return_counts=True)
    return [str(n) for n, c in zip(names, counts) if c >= minimum]


def side_limits(checks: list[Any], limit: float, minimum: int, sensitive: list[str]) -> list[SideLimit]:
    """The side limits of the gate's other checks (pipelines.training.sweep.other_checks), relative to the
    constrained `limit`; a grouping with fewer than two gated groups is not constrained (the gate cannot fail it)."""
    out = []
    for check in checks:
        groups = gated_groups(check.test_labels, minimum)
        if len(groups) >= 2 and limit > 0:
            columns = [check.grouping] if check.grouping in sensitive else list(sensitive)
            out.append(SideLimit(check.grouping, columns, CONSTRAINT[check.figure], check.limit / limit, groups,
                                 check.limit * SIDE_FLOOR))
    return out


def side_indicators(frame: pd.DataFrame, side: list[SideLimit]) -> np.ndarray:
    """[rows, groups of every side limit]: one-hot membership of each limit's gated groups, side by side (a row of
    an ungated group is all zeros in that block)."""
    from pipelines.training.metrics import groupings
    from pipelines.training.mitigation import group_indicators

    blocks = [group_indicators(groupings(frame[limit.columns], intersection=True)[limit.grouping], limit.groups)
              for limit in side]
    return np.concatenate(blocks, axis=1) if blocks else np.zeros((len(frame), 0), np.float32)


def side_blocks(side: list[SideLimit]) -> tuple[tuple[int, str, float, float], ...]:
    """(columns, constraint, ratio, floor) of each block, as pipelines.training.stacked.train_stacked takes them."""
    return tuple((len(limit.groups), limit.constraint, limit.ratio, limit.floor) for limit in side)
