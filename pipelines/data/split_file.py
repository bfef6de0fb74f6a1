"""A split read from its Parquet file a batch at a time, for splits larger than `data.batch_rows`: the training and
scoring steps then never hold the whole split as one frame."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.core.config import Settings
from pipelines.core.errors import PipelineError
from pipelines.core.paths import ArtifactPaths
from pipelines.data.features import FeatureSpec, encode_compact, encode_features, encode_labels
from pipelines.data.split import load_split

READ_ROWS = 65_536  # rows a split file is read and encoded at a time: 500,000 rows of text cost ~300 MB more


def _where(path: Path) -> str:
    """The file as a message names it: its folder and name (data/prepared/splits/train.parquet -> splits/...)."""
    return f"{path.parent.name}/{path.name}"


def _open(path: Path) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(path, pre_buffer=False)  # pre-buffered row groups stay cached as the file is read
    except (pa.ArrowException, OSError) as exc:
        raise PipelineError(f"{_where(path)} is not a readable Parquet file ({str(exc)[:200]})") from exc


@dataclass(frozen=True)
class SplitFile:
    """One split's Parquet file, read in batches of at most `batch_rows` rows (one row group after another)."""

    path: Path
    rows: int
    batch_rows: int

    @classmethod
    def open(cls, path: Path, batch_rows: int) -> SplitFile:
        return cls(path, _open(path).metadata.num_rows, batch_rows)

    def __len__(self) -> int:
        return self.rows

    def batches(self, row_groups: list[int] | None = None, columns: list[str] | None = None
                ) -> Iterator[tuple[int, pd.DataFrame]]:
        """(position of the first row, frame) per batch, in file order or in the order of `row_groups`; each frame
        has the dtypes pandas reads the whole file with."""
        handle = _open(self.path)
        schema = handle.schema_arrow
        if columns is not None:
            schema = pa.schema([schema.field(c) for c in columns], metadata=schema.metadata)
        starts = np.concatenate([[0], np.cumsum([handle.metadata.row_group(g).num_rows
                                                 for g in range(handle.num_row_groups)])])
        try:
            for group in range(handle.num_row_groups) if row_groups is None else row_groups:
                start = int(starts[group])
                for batch in handle.iter_batches(batch_size=self.batch_rows, row_groups=[group], columns=columns):
                    yield start, pa.Table.from_batches([batch], schema=schema).to_pandas()
                    start += batch.num_rows
        except (pa.ArrowException, OSError) as exc:
            raise PipelineError(f"{_where(self.path)} is not a readable Parquet file ({str(exc)[:200]})") from exc

    def row_groups(self) -> int:
        return _open(self.path).num_row_groups

    def columns(self, names: list[str]) -> pd.DataFrame:
        """These columns of every row (a few narrow columns: the labels and groups), in row order."""
        parts = [frame for _, frame in self.batches(columns=names)]
        return pd.concat(parts, ignore_index=True) if parts else pd.read_parquet(self.path, columns=names)

    def take(self, positions: np.ndarray) -> pd.DataFrame:
        """The rows at these sorted positions, indexed by their positions (as `frame.iloc[positions]` of the whole
        split would be)."""
        kept = []
        for start, frame in self.batches():
            inside = positions[(positions >= start) & (positions < start + len(frame))]
            kept.append(frame.iloc[inside - start].set_axis(inside))
        return pd.concat(kept) if kept else pd.read_parquet(self.path).iloc[:0]

    def encoded(self, spec: FeatureSpec) -> Iterator[np.ndarray]:
        """`encode_features` of every row, a batch at a time, in row order (as encoded_chunks of the frame)."""
        for _, frame in self.batches():
            yield encode_features(frame, spec)

    def compact(self, spec: FeatureSpec, row_groups: list[int] | None = None
                ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
        """(positions, numeric, codes, labels) per batch: `encode_compact` and `encode_labels` of its rows."""
        for start, frame in self.batches(row_groups):
            yield (np.arange(start, start + len(frame), dtype=np.int64), *encode_compact(frame, spec),
                   encode_labels(frame, spec))

    def labels(self, spec: FeatureSpec) -> np.ndarray:
        """`encode_labels` of every row."""
        return encode_labels(self.columns([spec.label]), spec)


def open_split(settings: Settings, name: str) -> pd.DataFrame | SplitFile:
    """The split as a frame when it has at most `data.batch_rows` rows (as load_split), else its file, read
    READ_ROWS rows at a time."""
    batch_rows = settings.params.data.batch_rows
    split = SplitFile.open(ArtifactPaths(settings.root).dataset_splits / f"{name}.parquet", min(batch_rows, READ_ROWS))
    return load_split(settings, name) if len(split) <= batch_rows else split


def split_columns(settings: Settings, name: str, columns: list[str]) -> pd.DataFrame:
    """Only these columns of a split (labels, groups): what load_split(...)[columns] gives, without the rest."""
    return pd.read_parquet(ArtifactPaths(settings.root).dataset_splits / f"{name}.parquet", columns=columns)
