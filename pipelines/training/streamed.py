"""Training rows read from a split's Parquet file as a tf.data pipeline, for a train split larger than
`data.batch_rows`: the rows arrive a row group at a time (encode_compact per batch), are shuffled within each batch
and across a buffer of minibatches, and are one-hot expanded in the graph, so memory no longer grows with them.
Per-row figures that depend on labels and groups only (labels, weights, group indicators, targets) stay in
memory: a few bytes a row, gathered by each batch's row positions."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from pipelines.core.config import DataConfig, FairnessConfig
from pipelines.data.features import (
    FeatureSpec,
    compact_rows,
    encoded_chunks,
    fit_feature_spec,
    fit_feature_spec_batches,
)
from pipelines.data.split_file import SplitFile

SHUFFLE_BATCHES = 64  # minibatches in the shuffle buffer (16k rows at batch_size 256), on top of the shuffled
# row-group order and rows shuffled within each batch read


@dataclass(frozen=True)
class StreamedRows:
    """A train split too large to hold, as the rows train_stacked fits on (the role of CompactRows in memory)."""

    split: SplitFile
    spec: FeatureSpec

    def __len__(self) -> int:
        return len(self.split)

    @property
    def sizes(self) -> tuple[int, ...]:
        return tuple(len(c.vocabulary) for c in self.spec.categorical)

    @property
    def width(self) -> int:
        return len(self.spec.numeric) + sum(self.sizes)

    def dataset(self, batch_size: int, seed: int, shuffle: int = SHUFFLE_BATCHES):
        """A tf.data.Dataset of (numeric, codes, row positions) minibatches; each pass over it is one epoch in a
        new seeded order (row groups, rows within a batch read, then a buffer of minibatches)."""
        import tensorflow as tf

        rng, groups = np.random.default_rng(seed), self.split.row_groups()

        def epoch():
            for positions, numeric, codes, _ in self.split.compact(self.spec, rng.permutation(groups).tolist()):
                mixed = rng.permutation(len(positions))
                for i in range(0, len(mixed), batch_size):
                    rows = mixed[i:i + batch_size]
                    yield numeric[rows], codes[rows], positions[rows]

        signature = (tf.TensorSpec([None, len(self.spec.numeric)], tf.float32),
                     tf.TensorSpec([None, len(self.sizes)], tf.int32), tf.TensorSpec([None], tf.int64))
        return tf.data.Dataset.from_generator(epoch, output_signature=signature) \
            .shuffle(shuffle, seed=seed, reshuffle_each_iteration=True).prefetch(tf.data.AUTOTUNE)

    def keras_dataset(self, labels: np.ndarray, batch_size: int, seed: int, weights: np.ndarray | None = None):
        """`dataset` as Keras fit takes it: (x, y) or (x, y, sample weight), x one-hot expanded in the graph."""
        import tensorflow as tf

        from pipelines.data.features import expand_tensor

        y = tf.constant(np.asarray(labels, np.float32))
        w = None if weights is None else tf.constant(np.asarray(weights, np.float32))
        sizes = list(self.sizes)

        def batch(numeric, codes, positions):
            x = expand_tensor(numeric, codes, sizes)
            return (x, tf.gather(y, positions)) if w is None else (x, tf.gather(y, positions), tf.gather(w, positions))

        return self.dataset(batch_size, seed).map(batch)


def training_rows(train: pd.DataFrame | SplitFile, spec: FeatureSpec) -> Any:
    """What train_stacked fits on: CompactRows of a frame, StreamedRows of a split file."""
    return StreamedRows(train, spec) if isinstance(train, SplitFile) else compact_rows(train, spec)


def encoded_parts(rows: pd.DataFrame | SplitFile, spec: FeatureSpec):
    """The rows' encoded matrix a piece at a time, in row order: from the frame, or read batch by batch."""
    return rows.encoded(spec) if isinstance(rows, SplitFile) else encoded_chunks(rows, spec)


def label_frame(train: pd.DataFrame | SplitFile, columns: list[str]) -> pd.DataFrame:
    """The frame itself, or of a split file only the columns named (labels and groups), every row."""
    return train.columns(list(dict.fromkeys(columns))) if isinstance(train, SplitFile) else train


def feature_spec(train: pd.DataFrame | SplitFile, config: DataConfig) -> FeatureSpec:
    """The feature spec learnt from the training rows: of the frame, or merged over a split file's batches."""
    if isinstance(train, SplitFile):
        return fit_feature_spec_batches((frame for _, frame in train.batches()), config)
    return fit_feature_spec(train, config)


def sweep_sample(train: pd.DataFrame | SplitFile, label: str, features: list[str],
                 config: FairnessConfig) -> pd.DataFrame:
    """mitigation.sweep_sample's rows; from a split file the same rows, indexed alike: the stratified sample is
    drawn on its label and group columns, then only those rows are read."""
    from pipelines.training.mitigation import stratified_sample
    from pipelines.training.mitigation import sweep_sample as frame_sample

    if not isinstance(train, SplitFile):
        return frame_sample(train, label, features, config)
    columns = [label, *features]
    cells = stratified_sample(train.columns(list(dict.fromkeys(columns))), columns, config.sample_rows, config.seed)
    return train.take(cells.index.to_numpy())


def file_labels(train: SplitFile, spec: FeatureSpec, features: list[str], side: list | None = None
                ) -> tuple[np.ndarray, pd.Categorical, np.ndarray]:
    """`encode_labels` and `mitigation.constraint_labels` of a split file's rows, read batch by batch (the group
    labels as a Categorical: a code a row, not a string a row), and the side limits' group indicators
    (pipelines.training.limits)."""
    from pandas.api.types import union_categoricals

    from pipelines.data.features import encode_labels
    from pipelines.training.limits import side_indicators
    from pipelines.training.mitigation import constraint_labels

    side = side or []
    columns = list(dict.fromkeys([spec.label, *features, *(c for s in side for c in s.columns)]))
    labels, groups, members = [], [], []
    for _, frame in train.batches(columns=columns):
        labels.append(encode_labels(frame, spec))
        groups.append(pd.Categorical(constraint_labels(frame, features)))
        members.append(side_indicators(frame, side))
    return np.concatenate(labels), union_categoricals(groups), np.concatenate(members)
