"""Train / validation / test splits by a seeded hash of each row's key (pipelines.data.rowsplit)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from pipelines.core.config import DataConfig, Settings, SplitConfig
from pipelines.core.paths import ArtifactPaths
from pipelines.data.rowsplit import INTERNAL, SPLITS, split_codes
from pipelines.data.split_file import SplitFile

READ_ROWS = 65_536  # rows a split file is read and encoded at a time: 500,000 rows of text cost ~300 MB more

__all__ = [
    "READ_ROWS",
    "SPLITS",
    "SplitFile",
    "load_split",
    "open_split",
    "split_columns",
    "split_dataset",
    "split_positions",
    "take",
]


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


def open_split(settings: Settings, name: str) -> pd.DataFrame | SplitFile:
    """The split as a frame when it has at most `data.batch_rows` rows (as load_split), else its file, to be read a
    batch at a time (pipelines.data.split_file)."""
    split = SplitFile.open(ArtifactPaths(settings.root).dataset_splits / f"{name}.parquet",
                           min(settings.params.data.batch_rows, READ_ROWS))
    return load_split(settings, name) if len(split) <= settings.params.data.batch_rows else split


def split_columns(settings: Settings, name: str, columns: list[str]) -> pd.DataFrame:
    """Only these columns of a split (labels, groups): what load_split(...)[columns] gives, without the rest."""
    return pd.read_parquet(ArtifactPaths(settings.root).dataset_splits / f"{name}.parquet", columns=columns)
