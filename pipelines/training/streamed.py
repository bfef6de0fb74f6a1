"""Training rows read from a split's Parquet file as a tf.data pipeline, for a train split larger than
`data.batch_rows`: the rows arrive a row group at a time (encode_compact per batch), are shuffled within each batch
and across a buffer of minibatches, and are one-hot expanded in the graph, so memory no longer grows with them.
The per-row figures the training needs besides the inputs (labels, weights, group indicators, targets) are made
from each batch's own rows (`BatchFigures`), so nothing a row is held for the whole split."""
from __future__ import annotations

from collections.abc import Callable
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
class BatchFigures:
    """A batch's per-row figures, made from its own rows as pipelines.training.bounded.fit_heads makes them for a
    frame: the loss targets (labels, or the teacher's mix), sample weights per head (class weights from the whole
    split's positive share), the constrained grouping's indicators over `vocabulary` then the side limits' blocks
    (pipelines.training.limits), and each head's targets (the loss targets)."""

    spec: FeatureSpec
    features: list[str]
    vocabulary: list[str]
    side: list
    heads: int
    weigh: Callable[[np.ndarray], np.ndarray | None]  # labels -> class weights, or None
    targets: Callable[[pd.DataFrame, np.ndarray], np.ndarray]  # (rows, labels) -> loss targets

    def __call__(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        from pipelines.data.features import encode_labels
        from pipelines.training.limits import side_indicators
        from pipelines.training.mitigation import constraint_labels, group_indicators

        labels = encode_labels(frame, self.spec)
        y = np.asarray(self.targets(frame, labels), np.float32)
        balance = self.weigh(labels)
        weights = np.ones((len(frame), self.heads), np.float32) if balance is None else \
            np.repeat(balance[:, None], self.heads, axis=1)
        members = np.concatenate([group_indicators(constraint_labels(frame, self.features), self.vocabulary),
                                  side_indicators(frame, self.side)], axis=1).astype(np.float32)
        return y, weights, members, np.repeat(y[:, None], self.heads, axis=1)

    @property
    def columns(self) -> int:
        return len(self.vocabulary) + sum(len(limit.groups) for limit in self.side)


@dataclass(frozen=True)
class StreamedRows:
    """A train split too large to hold, as the rows train_stacked fits on (the role of CompactRows in memory).
    With `figures`, each batch also carries its per-row figures (BatchFigures) instead of row positions into
    arrays held for every row."""

    split: SplitFile
    spec: FeatureSpec
    figures: BatchFigures | None = None

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

        from pipelines.data.features import encode_compact

        rng, groups, figures = np.random.default_rng(seed), self.split.row_groups(), self.figures

        def epoch():
            for start, frame in self.split.batches(rng.permutation(groups).tolist()):
                positions = np.arange(start, start + len(frame), dtype=np.int64)
                numeric, codes = encode_compact(frame, self.spec)
                per_row = () if figures is None else figures(frame)
                mixed = rng.permutation(len(positions))
                for i in range(0, len(mixed), batch_size):
                    rows = mixed[i:i + batch_size]
                    yield numeric[rows], codes[rows], positions[rows], *(f[rows] for f in per_row)

        signature: tuple = (tf.TensorSpec([None, len(self.spec.numeric)], tf.float32),
                            tf.TensorSpec([None, len(self.sizes)], tf.int32), tf.TensorSpec([None], tf.int64))
        if figures is not None:
            heads = figures.heads
            signature += (tf.TensorSpec([None], tf.float32), tf.TensorSpec([None, heads], tf.float32),
                          tf.TensorSpec([None, figures.columns], tf.float32), tf.TensorSpec([None, heads], tf.float32))
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
    from pipelines.training.mitigation import CellNumbers, StratifiedSampler
    from pipelines.training.mitigation import sweep_sample as frame_sample

    if not isinstance(train, SplitFile):
        return frame_sample(train, label, features, config)
    columns = list(dict.fromkeys([label, *features]))  # only which rows share a cell matters: codes will do
    if config.sample_rows is None or len(train) <= config.sample_rows:
        return train.take(np.arange(len(train)))
    # two passes over the label and group columns, nothing kept a row: each cell's rows counted, then each cell's
    # sample drawn batch by batch (the rows stratified_sample draws from the whole frame)
    numbering, counts = CellNumbers(columns), np.zeros(0, np.int64)
    for _, frame in train.batches(columns=columns):
        found = np.bincount(numbering(frame))
        counts = np.pad(counts, (0, max(0, len(found) - len(counts))))
        counts[:len(found)] += found
    sampler = StratifiedSampler(counts, config.sample_rows, config.seed)
    for start, frame in train.batches(columns=columns):
        sampler.add(start, numbering(frame))  # the numbers of the first pass: CellNumbers remembers them
    return train.take(sampler.positions())


def heldout_rows(validation: pd.DataFrame | SplitFile, label: str, features: list[str], config: FairnessConfig,
                 rows: int) -> pd.DataFrame:
    """The validation rows the heads stop early and the bound is chosen on: the frame, or of a split file a
    stratified sample of about `rows` rows (label x constrained groups, seeded as the sweep's sample)."""
    if not isinstance(validation, SplitFile):
        return validation
    return sweep_sample(validation, label, features, config.model_copy(update={"sample_rows": rows}))
