"""A split scored chunk by chunk: every model's probabilities, the labels and the group codes (a few bytes a row),
never the split's text columns or its encoded matrix at once. The figures are then the ones
pipelines.training.metrics computes on the whole split (the same functions on the same numbers)."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipelines.data.features import FeatureSpec, encode_features, encode_labels
from pipelines.data.split_file import READ_ROWS, SplitFile
from pipelines.training.metrics import GroupCodes, group_codes, merge_group_codes

CHUNK = READ_ROWS  # a multiple of the runtimes' PREDICT_CHUNK: a frame's rows reach each runtime in the same calls


def chunks(rows: pd.DataFrame | SplitFile, columns: list[str] | None = None) -> Iterator[pd.DataFrame]:
    """The rows a chunk at a time, in row order: slices of the frame, or the split file's batches."""
    if isinstance(rows, SplitFile):
        for _, frame in rows.batches(columns=columns):
            yield frame
        return
    frame = rows if columns is None else rows[columns]
    for start in range(0, max(len(frame), 1), CHUNK):  # an empty frame: one empty chunk
        yield frame.iloc[start:start + CHUNK]


def group_values(rows: pd.DataFrame | SplitFile, columns: list[str]) -> dict[str, list[str]]:
    """Each column's distinct groups (as metrics.groupings names them, a missing value `(missing)`), sorted, read
    chunk by chunk: nothing a row is kept."""
    from pipelines.training.metrics import groupings

    seen: dict[str, set[str]] = {c: set() for c in columns}
    for frame in chunks(rows, columns):
        for column, labels in groupings(frame[columns]).items():
            seen[column] |= set(labels)
    return {column: sorted(values) for column, values in seen.items()}


def take_rows(rows: pd.DataFrame | SplitFile, positions: np.ndarray) -> pd.DataFrame:
    """The rows at these sorted positions (`frame.iloc[positions]`), read from the file when it is one."""
    return rows.take(positions) if isinstance(rows, SplitFile) else rows.iloc[positions]


def bounded_sample(rows: pd.DataFrame | SplitFile, limit: int, seed: int) -> pd.DataFrame:
    """Every row of a frame; of a split file larger than `limit`, `limit` rows drawn at random (seeded, in row
    order): what a fit or a calibration that would otherwise take every row reads."""
    if not isinstance(rows, SplitFile):
        return rows
    if len(rows) <= limit:
        return rows.take(np.arange(len(rows)))
    return rows.take(np.sort(np.random.default_rng(seed).choice(len(rows), size=limit, replace=False)))


def sample_rows(rows: pd.DataFrame | SplitFile, n: int, seed: int) -> pd.DataFrame:
    """`frame.sample(min(n, rows), random_state=seed)`: the same rows in the same order, of a split file read from
    it (pandas draws the positions with RandomState(seed).choice, without replacement)."""
    if not isinstance(rows, SplitFile):
        return rows.sample(min(n, len(rows)), random_state=seed)
    positions = np.random.RandomState(seed).choice(len(rows), size=min(n, len(rows)), replace=False)
    return rows.take(np.sort(positions)).loc[positions]


@dataclass
class Scored:
    """Per row of a split: the labels, each model's probabilities and each grouping's group code."""

    y: np.ndarray
    probas: dict[str, np.ndarray]
    groups: GroupCodes
    head: np.ndarray  # the first rows, encoded (latency is timed on them)

    def __len__(self) -> int:
        return len(self.y)

    def codes(self, columns: list[str]) -> GroupCodes:
        """The groupings of these columns alone (no intersection)."""
        return {c: self.groups[c] for c in columns}

    def frame(self, columns: list[str]) -> pd.DataFrame:
        """These group columns as categoricals (what pipelines.training.mitigation.check_groups reads)."""
        return pd.DataFrame({c: pd.Categorical.from_codes(self.groups[c][1], self.groups[c][0]) for c in columns})


def score(rows: pd.DataFrame | SplitFile, spec: FeatureSpec, sensitive: list[str],
          models: dict[str, Callable[[np.ndarray], np.ndarray]], intersection: bool = True,
          head_rows: int = 0) -> Scored:
    """One pass over the rows: each chunk encoded once and given to every model (without models, only the label and
    group columns are read)."""
    encoded = bool(models) or head_rows > 0
    total = len(rows)  # the per-row arrays are filled in place: no list of chunks and its concatenated copy
    labels = np.zeros(total, np.float32)
    probas: dict[str, np.ndarray] = {}
    codes, head, start = [], [], 0
    for frame in chunks(rows, None if encoded else list(dict.fromkeys([spec.label, *sensitive]))):
        stop = start + len(frame)
        labels[start:stop] = encode_labels(frame, spec)
        codes.append(group_codes(frame[sensitive], intersection))
        if encoded:
            x = encode_features(frame, spec)
            for name, predict in models.items():
                out = np.asarray(predict(x))
                probas.setdefault(name, np.zeros(total, out.dtype))[start:stop] = out
            if start < head_rows:
                head.append(x[:head_rows - start])
        start = stop
    return Scored(labels, {name: probas.get(name, np.zeros(0)) for name in models}, merge_group_codes(codes),
                  np.concatenate(head) if head else np.zeros((0, spec.width), np.float32))
