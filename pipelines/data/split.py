"""Train / validation / test splits, stratified by label and seeded."""
from __future__ import annotations

import pandas as pd

from pipelines.core.config import DataConfig, Settings, SplitConfig
from pipelines.core.paths import ArtifactPaths
from pipelines.data.load import ORIGIN

SPLITS = ("train", "validation", "test")


def split_dataset(frame: pd.DataFrame, data: DataConfig, config: SplitConfig) -> dict[str, pd.DataFrame]:
    """Use the shipped test file as the test split when there is one; else carve one out."""
    # imported here, not at the top: scikit-learn takes 0.5 s to import, and most stages import this module
    from sklearn.model_selection import train_test_split

    labels = frame[data.label]
    if ORIGIN in frame and (frame[ORIGIN] == "test_source").any():
        is_test = frame[ORIGIN] == "test_source"
        rest, test = frame[~is_test], frame[is_test]
    else:
        rest, test = train_test_split(
            frame, test_size=config.test_size, random_state=config.seed, stratify=labels
        )
    train, validation = train_test_split(
        rest, test_size=config.validation_size, random_state=config.seed, stratify=rest[data.label]
    )
    parts = {"train": train, "validation": validation, "test": test}
    return {name: part.drop(columns=[ORIGIN], errors="ignore").reset_index(drop=True) for name, part in parts.items()}


def load_split(settings: Settings, name: str) -> pd.DataFrame:
    """One split (train, validation or test) as the dataset_splits step wrote it."""
    return pd.read_parquet(ArtifactPaths(settings.root).dataset_splits / f"{name}.parquet")
