"""Train / validation / test splits by a seeded hash of each row's key (pipelines.data.rowsplit)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from pipelines.core.config import DataConfig, Settings, SplitConfig
from pipelines.core.paths import ArtifactPaths
from pipelines.data.rowsplit import INTERNAL, SPLITS, split_codes

__all__ = ["SPLITS", "load_split", "split_dataset", "split_positions", "take"]


def split_positions(frame: pd.DataFrame, data: DataConfig, config: SplitConfig) -> dict[str, np.ndarray]:
    """Row positions of each split, in row order. Positions, not frames: the caller copies one split at a time."""
    codes = split_codes(frame, data, config)
    return {name: np.flatnonzero(codes == code) for code, name in enumerate(SPLITS)}


def take(frame: pd.DataFrame, positions: np.ndarray) -> pd.DataFrame:
    """One split's rows, in the order of `positions`, without the bookkeeping columns (origin, row number)."""
    return frame.iloc[positions].drop(columns=list(INTERNAL), errors="ignore").reset_index(drop=True)


def split_dataset(frame: pd.DataFrame, data: DataConfig, config: SplitConfig) -> dict[str, pd.DataFrame]:
    """The shipped test file's rows are the test split when there is one; the rest by each row's hash."""
    return {name: take(frame, positions) for name, positions in split_positions(frame, data, config).items()}


def load_split(settings: Settings, name: str) -> pd.DataFrame:
    """One split (train, validation or test) as the dataset_splits step wrote it."""
    return pd.read_parquet(ArtifactPaths(settings.root).dataset_splits / f"{name}.parquet")
