"""How large the test split is. `split.test_size` as set; with `split.auto_test_size` (the default) the smallest
share from test_size up to `split.max_test_size`, in STEP steps, at which a model with the same rates for every group
passes every limit of the fairness gate in at least `fairness.pass_share` of simulated test splits.

On small data the gate's groups have a few dozen test rows, and their selection rates swing by chance: at the
default share a model fair by construction can fail the gate on a quarter of the test splits, so the gate cannot
tell fair models from unfair ones. A larger test split fixes that, at the cost of training rows; where no share up
to the cap lets the gate tell (more test rows also bring more small groups over gates.fairness.min_group_size), the
share stays at test_size, and the gate's stop line says what the test split can tell.

Counted from the validated rows' sensitive groups and labels only (no model): each simulated test split draws every
intersection cell's test rows and positives from its counts, and a model that selects every row at the data's
positive rate, whatever its group and label; the gate's own figures (pipelines.core.group_rates) and limits
(pipelines.core.gates.gate_limits) judge it. The share is the same for every split.seed, and a shipped test file
(data.test_source) leaves nothing to size.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipelines.core.config import Params, SplitConfig
from pipelines.core.gates import gate_limits
from pipelines.core.group_rates import differences, intersection_name, measured_groups, rates
from pipelines.data.load import positive_mask
from pipelines.data.stream import parquet_batches

STEP = 0.05  # shares tried: test_size, test_size + STEP, ... up to split.max_test_size
DRAWS = 2000  # simulated test splits per share: the pass share's own error is about 0.007 near 0.9
CHUNK_VALUES = 1 << 22  # confusion counts drawn at a time (32 MiB of int64)
MAX_CELLS = 5000  # more combinations of sensitive values than this are not sized (test_size kept, and said)
_ROWS, _POSITIVES = "_rows", "_positives"


def cell_counts(validated: Path, params: Params) -> pd.DataFrame:
    """Rows and positives per intersection cell of the sensitive features (a missing value is its own group), read
    batch by batch: one row per cell, the sensitive columns then _rows and _positives."""
    data = params.data
    columns = list(dict.fromkeys([*data.sensitive_features, data.label]))
    parts = []
    for batch in parquet_batches(validated, data.batch_rows, columns=columns):
        frame = batch[list(data.sensitive_features)].astype("string")
        frame[_ROWS] = 1
        frame[_POSITIVES] = positive_mask(batch[data.label], data.positive_label).astype(np.int64).to_numpy()
        parts.append(frame.groupby(list(data.sensitive_features), dropna=False, sort=False)[[_ROWS, _POSITIVES]]
                     .sum().reset_index())
    if not parts:
        return pd.DataFrame(columns=[*data.sensitive_features, _ROWS, _POSITIVES])
    return (pd.concat(parts, ignore_index=True).groupby(list(data.sensitive_features), dropna=False, sort=False)
            [[_ROWS, _POSITIVES]].sum().reset_index())


def fair_pass_share(cells: pd.DataFrame, params: Params, share: float) -> float:
    """The share of DRAWS simulated test splits of `share` of the rows in which a model selecting every row at the
    data's positive rate passes every parity and equalized-odds limit of the fairness gate (drawn CHUNK_VALUES
    numbers at a time, so many cells take time, not memory)."""
    columns = list(params.data.sensitive_features)
    gates, minimum = params.gates.fairness, params.gates.fairness.min_group_size
    rows, positives = cells[_ROWS].to_numpy(np.int64), cells[_POSITIVES].to_numpy(np.int64)
    if rows.sum() == 0:
        return 1.0
    rate = positives.sum() / rows.sum()
    groupings = {c: pd.factorize(cells[c], use_na_sentinel=False)[0] for c in columns}
    if len(columns) > 1:
        groupings[intersection_name(columns)] = np.arange(len(cells))
    gated = {name: (np.argsort(codes, kind="stable"), limits) for name, codes in groupings.items()
             if (limits := gate_limits(gates, name, list(groupings)))}
    starts = {name: np.flatnonzero(np.diff(np.sort(groupings[name]), prepend=-1)) for name in gated}
    rng = np.random.default_rng(params.fairness.seed)
    met, chunk = [], max(1, CHUNK_VALUES // (4 * len(rows)))
    for first in range(0, DRAWS, chunk):
        tested = rng.binomial(rows, share, (min(chunk, DRAWS - first), len(rows)))
        pos = rng.hypergeometric(positives, rows - positives, tested)
        neg = tested - pos
        tp, fp = rng.binomial(pos, rate), rng.binomial(neg, rate)
        confusion = np.stack([neg - fp, fp, pos - tp, tp], axis=-1)  # (draws, cells, [TN, FP, FN, TP])
        passed = np.ones(len(tested), bool)
        for name, (order, limits) in gated.items():
            counts = np.add.reduceat(confusion[:, order], starts[name], axis=1)  # (draws, groups, 4)
            measurable = np.sum(counts.sum(axis=-1) >= minimum, axis=-1) >= 2  # else the gate cannot measure a gap
            figures = differences(rates(counts), measured_groups(counts, minimum))
            for _, figure, _, limit in limits:
                value = figures[figure]  # NaN: equalized odds without two groups to count on is reported, not gated
                passed &= measurable & (np.isnan(value) | (value <= limit + 1e-12))
        met.append(passed)
    return float(np.mean(np.concatenate(met)))


def sized_split(params: Params, validated: Path) -> tuple[SplitConfig, dict[str, Any], dict[str, str]]:
    """The split config with the test share the splits use, and what chose it: the step's summary figures (the
    share; with auto_test_size, how often a fair model passes the gate there) and a table of the shares tried."""
    config = params.split
    if params.data.test_source is not None:
        return config, {}, {}
    if not config.auto_test_size or not params.data.sensitive_features:
        return config, {"test_share": config.test_size}, {}
    cells = cell_counts(validated, params)
    if len(cells) > MAX_CELLS:
        return config, {"test_share": config.test_size}, {"test share": (
            f"split.auto_test_size: {len(cells):,} combinations of sensitive values (over {MAX_CELLS:,}) are not "
            "sized; split.test_size kept")}
    needed, tried = params.fairness.pass_share, {}
    shares = np.round(np.arange(config.test_size, config.max_test_size + 1e-9, STEP), 4).tolist() or [config.test_size]
    for share in shares:
        tried[share] = fair_pass_share(cells, params, share)
        if tried[share] >= needed:
            break
    chosen = share if tried[share] >= needed else config.test_size
    table = ["| test share | a fair model passes the fairness gate |", "|---|---|"] + [
        f"| {s:g}{' (used)' if s == chosen else ''} | {v:.1%} of simulated test splits |" for s, v in tried.items()]
    why = {"test share": "\n".join(table) + f"\n\nsplit.auto_test_size: the smallest share where it reaches "
                                             f"fairness.pass_share = {needed:g}" + (
        "" if tried[chosen] >= needed else f", none up to split.max_test_size = {config.max_test_size:g}; "
        "split.test_size kept")}
    return (config.model_copy(update={"test_size": chosen}),
            {"test_share": chosen, "fair_gate_pass_share": round(tried[chosen], 4)}, why)
