"""Train / validation / test splits, stratified by label and seeded."""
from __future__ import annotations

import numpy as np
import pandas as pd

from pipelines.core.config import DataConfig, Settings, SplitConfig
from pipelines.core.paths import ArtifactPaths
from pipelines.data.load import ORIGIN

SPLITS = ("train", "validation", "test")


def split_positions(frame: pd.DataFrame, data: DataConfig, config: SplitConfig) -> dict[str, np.ndarray]:
    """Row positions of each split: the shipped test file's rows as the test split when there is one, else a
    stratified share; then a stratified validation share of the rest. Positions, not frames: the caller copies one
    split at a time (at 10M rows each copy of the frame is gigabytes)."""
    # imported here, not at the top: scikit-learn takes 0.5 s to import, and most stages import this module
    from sklearn.model_selection import train_test_split

    labels = frame[data.label].to_numpy()
    everything = np.arange(len(frame))
    if ORIGIN in frame and (frame[ORIGIN] == "test_source").any():
        is_test = (frame[ORIGIN] == "test_source").to_numpy()
        rest, test = everything[~is_test], everything[is_test]
    else:
        rest, test = train_test_split(everything, test_size=config.test_size, random_state=config.seed, stratify=labels)
    train, validation = train_test_split(rest, test_size=config.validation_size, random_state=config.seed,
                                         stratify=labels[rest])
    return {"train": train, "validation": validation, "test": test}


def take(frame: pd.DataFrame, positions: np.ndarray) -> pd.DataFrame:
    """One split's rows, in the order of `positions`, without the origin column."""
    return frame.iloc[positions].drop(columns=[ORIGIN], errors="ignore").reset_index(drop=True)


def split_dataset(frame: pd.DataFrame, data: DataConfig, config: SplitConfig) -> dict[str, pd.DataFrame]:
    """Use the shipped test file as the test split when there is one; else carve one out."""
    return {name: take(frame, positions) for name, positions in split_positions(frame, data, config).items()}


def load_split(settings: Settings, name: str) -> pd.DataFrame:
    """One split (train, validation or test) as the dataset_splits step wrote it."""
    return pd.read_parquet(ArtifactPaths(settings.root).dataset_splits / f"{name}.parquet")
