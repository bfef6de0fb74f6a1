"""Which split a row belongs to: a seeded hash of the row's key, so every engine (pandas batches, Spark) and every
batch size put the same row in the same split.

The rule (one definition; the Spark engine computes the same expression):
  key = the `data.key` column's text when params name one, else f"{origin}:{n}" with origin "source" or
        "test_source" and n the 0-based data-row number in that file, assigned when read, before any row is dropped
        (n counts the rows the CSV reader yields: blank lines are skipped, a UCI comment line counts; a folder of
        daily files is numbered through its accepted days, oldest first)
  u   = int(md5(f"{split.seed}:{key}").hexdigest()[:13], 16) / 16**13        (52 bits: exact in a float64)
  without a shipped test file: test if u < test_size, else validation if u < test_size + (1 - test_size) *
  validation_size, else train; with one (data.test_source): its rows are test, the others validation if
  u < validation_size, else train.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np
import pandas as pd

from pipelines.core.config import DataConfig, SplitConfig

SPLITS = ("train", "validation", "test")
TRAIN, VALIDATION, TEST = 0, 1, 2  # codes of SPLITS
ORIGIN = "_origin"  # which source file a row came from ("source" or "test_source"); dropped at the split
ROW = "_row"  # the row's 0-based data-row number in its file, assigned when read; dropped at the split
INTERNAL = (ORIGIN, ROW)  # bookkeeping columns: never features, never profiled, never validated
_SCALE = float(16**13)


def row_keys(frame: pd.DataFrame, data: DataConfig) -> list[str]:
    """Each row's key: the data.key column's text, else `origin:row`."""
    if data.key is not None:
        return frame[data.key].astype("string").fillna("").tolist()
    origins = frame[ORIGIN].astype("string").tolist()
    return [f"{origin}:{row}" for origin, row in zip(origins, frame[ROW].tolist(), strict=True)]


def unit_hash(keys: Iterable[str], seed: int) -> np.ndarray:
    """u in [0, 1) per key: the first 13 hex digits of md5("seed:key") over 16**13."""
    prefix = f"{seed}:"
    return np.fromiter((int(hashlib.md5((prefix + key).encode()).hexdigest()[:13], 16) / _SCALE for key in keys),
                       dtype=np.float64)


def assign(u: np.ndarray, shipped: np.ndarray | None, config: SplitConfig) -> np.ndarray:
    """Split codes (TRAIN, VALIDATION, TEST) from the hashes; `shipped` marks rows of the shipped test file (None:
    there is no shipped test file, so a test share is carved out)."""
    codes = np.full(len(u), TRAIN, dtype=np.int8)
    if shipped is None:
        codes[u < config.test_size + (1 - config.test_size) * config.validation_size] = VALIDATION
        codes[u < config.test_size] = TEST
    else:
        codes[u < config.validation_size] = VALIDATION
        codes[shipped] = TEST
    return codes


def split_codes(frame: pd.DataFrame, data: DataConfig, config: SplitConfig) -> np.ndarray:
    """Each row's split code; depends only on the row itself, so any batch of rows gets the same answer."""
    u = unit_hash(row_keys(frame, data), config.seed)
    shipped = (frame[ORIGIN] == "test_source").to_numpy(dtype=bool) if data.test_source is not None else None
    return assign(u, shipped, config)
