"""Permutation feature importance over raw input columns: model-agnostic, so it runs on any variant."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from pipelines.core.safe_text import md_cell
from pipelines.data.features import FeatureSpec, encode_features, encode_labels


def input_blocks(spec: FeatureSpec) -> dict[str, slice]:
    """Each raw column's columns in the encoded matrix: numeric ones first, then each one-hot block
    (the layout of pipelines.data.features.encode_features and FeatureSpec.input_names)."""
    blocks, start = {}, 0
    for feature in spec.numeric:
        blocks[feature.name], start = slice(start, start + 1), start + 1
    for category in spec.categorical:
        blocks[category.name], start = slice(start, start + len(category.vocabulary)), start + len(category.vocabulary)
    return blocks


def permutation_importance(
    predict: Callable[[np.ndarray], np.ndarray], frame: pd.DataFrame, spec: FeatureSpec, threshold: float,
    repeats: int, seed: int,
) -> dict[str, Any]:
    """Accuracy lost when one raw column's values are shuffled across rows (then re-encoded), per column.

    Shuffling the raw column (not its one-hot block) keeps each permuted row a valid input, as an app
    would encode it. Columns come as a list sorted by mean drop; a drop near 0 means the model barely uses it.
    """
    y = encode_labels(frame, spec).astype(int)
    encoded = encode_features(frame, spec)
    baseline = float((((predict(encoded) >= threshold).astype(int)) == y).mean())
    rng = np.random.default_rng(seed)
    columns: list[dict[str, Any]] = []
    for column, block in input_blocks(spec).items():
        drops = []
        for _ in range(repeats):
            # each row encodes on its own, so encoding the shuffled column = shuffling its encoded block's rows
            # (the same permutation rng.permutation(values) draws; tests check it against re-encoding)
            order = rng.permutation(len(frame))
            shuffled = encoded.copy()
            shuffled[:, block] = encoded[order, block]
            accuracy = float((((predict(shuffled) >= threshold).astype(int)) == y).mean())
            drops.append(baseline - accuracy)
        columns.append({"column": column, "mean_accuracy_drop": float(np.mean(drops)), "std": float(np.std(drops)),
                        "drops": [round(d, 6) for d in drops]})
    ranked = sorted(columns, key=lambda c: -c["mean_accuracy_drop"])  # a list: JSON keeps its order
    return {"metric": "accuracy drop", "baseline_accuracy": baseline, "rows": int(len(frame)), "repeats": repeats,
            "seed": seed, "columns": ranked}


def importance_table(result: dict[str, Any]) -> str:
    """Markdown: columns by mean accuracy drop."""
    rows = ["| column | mean accuracy drop | std |", "|---|---|---|"]
    rows += [f"| {md_cell(c['column'])} | {c['mean_accuracy_drop']:.4f} | {c['std']:.4f} |" for c in result["columns"]]
    return "\n".join(rows)
