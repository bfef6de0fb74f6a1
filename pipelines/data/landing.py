"""An upstream drop, for demos and tests: one source table cut into daily files in the landing folder."""
from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from pipelines.core.config import Settings
from pipelines.core.errors import PipelineError
from pipelines.core.io import atomic_path
from pipelines.data.load import read_table
from pipelines.data.partitions import day_keys, incoming_folder


def split_days(frame: pd.DataFrame, folder: Path, keys: list[str]) -> list[Path]:
    """Cut a frame (rows in file order) into one Parquet file per day, written atomically; their paths."""
    if len(frame) < len(keys):
        raise PipelineError(f"--days {len(keys)}: the source has only {len(frame)} rows")
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for key, rows in zip(keys, np.array_split(np.arange(len(frame)), len(keys)), strict=True):
        target = folder / f"{key}.parquet"
        with atomic_path(target) as tmp:
            frame.iloc[rows].reset_index(drop=True).to_parquet(tmp, index=False)
        written.append(target)
    return written


def split_source(settings: Settings, days: int, start: date | None = None) -> list[Path]:
    """Cut data.source into `days` daily files in the landing folder (demo and tests: an upstream drop)."""
    data = settings.params.data
    source = settings.resolve(data.source)
    if source.is_dir():
        raise PipelineError(f"data.source: {source} is a folder of daily files already; name a file to cut "
                            "(e.g. --set data.source=data/adult/adult.data.gz)")
    frame = read_table(source, data, "source")
    return split_days(frame, incoming_folder(settings), day_keys(start or data.incoming.first_day, days))
