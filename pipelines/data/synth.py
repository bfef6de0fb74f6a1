"""Larger data sets made from real rows: resampled with noise on numeric columns, for scale tests."""
from __future__ import annotations

import numpy as np
import pandas as pd


def synthesize(frame: pd.DataFrame, rows: int, noise: float = 0.05, seed: int = 0) -> pd.DataFrame:
    """`rows` rows drawn with replacement; numeric columns get Gaussian noise of `noise` x their std,
    clipped to the observed range (and rounded where the column holds whole numbers)."""
    rng = np.random.default_rng(seed)
    out = frame.iloc[rng.integers(0, len(frame), rows)].reset_index(drop=True)
    for column in frame.columns:
        values = frame[column]
        if not pd.api.types.is_numeric_dtype(values):
            continue
        jittered = out[column].to_numpy(dtype=float) + rng.normal(0, noise * float(values.std()), rows)
        jittered = np.clip(jittered, float(values.min()), float(values.max()))
        whole = bool(np.all(np.mod(values.dropna().to_numpy(dtype=float), 1) == 0))
        out[column] = np.round(jittered) if whole else jittered
    return out
