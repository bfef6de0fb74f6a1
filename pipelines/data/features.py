"""Feature spec: the encoding (vocabularies, normalization) an app reproduces on device."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel

from pipelines.core.config import DataConfig
from pipelines.core.errors import PipelineError
from pipelines.data.load import positive_mask
from pipelines.data.rowsplit import INTERNAL


class NumericFeature(BaseModel):
    name: str
    mean: float
    std: float
    # the training range: a value outside it is clamped first. The network never saw one there, an int8 input
    # clamps anyway, and a float16 program (Core ML) overflows on a value thousands of deviations out
    low: float | None = None
    high: float | None = None


class CategoricalFeature(BaseModel):
    name: str
    vocabulary: list[str]  # one-hot order; an unseen value encodes as all zeros


class FeatureSpec(BaseModel):
    """Everything needed to turn a raw row into the model's float32 input vector."""

    numeric: list[NumericFeature]
    categorical: list[CategoricalFeature]
    label: str
    positive_label: str | bool | int | float
    excluded: list[str]  # columns kept out of the model (sensitive features, unless params allow)

    @property
    def width(self) -> int:
        return len(self.numeric) + sum(len(c.vocabulary) for c in self.categorical)

    def input_names(self) -> list[str]:
        names = [n.name for n in self.numeric]
        for feature in self.categorical:
            names += [f"{feature.name}={value}" for value in feature.vocabulary]
        return names

    def app_contract(self) -> dict[str, Any]:
        """The spec as JSON plus a plain-language recipe for app developers."""
        return {
            "input_width": self.width,
            "input_names": self.input_names(),
            "recipe": "numeric: (min(max(x, low), high) - mean) / std (low, high: the training range; a missing "
            "value is the mean); categorical: one-hot in vocabulary order, unseen -> zeros; "
            "concatenate numeric then categorical, float32",
            **self.model_dump(),
        }


def model_inputs(frame: pd.DataFrame, config: DataConfig) -> list[str]:
    """Columns the model may see: not the label, not evaluation-only sensitive columns."""
    excluded = {config.label, *INTERNAL, *config.pii, *([config.key] if config.key else [])}
    if not config.sensitive_as_inputs:
        excluded |= set(config.sensitive_features)
    return [c for c in frame.columns if c not in excluded]


def _range(low: Any, high: Any) -> dict[str, float | None]:
    """A numeric feature's training range (None where the column has no value)."""
    finite = low is not None and high is not None and pd.notna(low) and pd.notna(high)
    return {"low": float(low), "high": float(high)} if finite else {"low": None, "high": None}


def fit_feature_spec(train: pd.DataFrame, config: DataConfig) -> FeatureSpec:
    """Learn vocabularies and normalization from the training split only."""
    columns = model_inputs(train, config)
    if not columns:
        raise PipelineError("data: no input columns left after removing label, sensitive and PII columns")
    numeric, categorical = [], []
    for column in columns:
        values = train[column]
        if pd.api.types.is_numeric_dtype(values):
            std = float(values.std(ddof=0))
            numeric.append(NumericFeature(name=column, mean=float(values.mean()), std=std if std > 0 else 1.0,
                                          **_range(values.min(), values.max())))
        else:
            vocabulary = sorted(values.dropna().astype(str).unique().tolist())
            categorical.append(CategoricalFeature(name=column, vocabulary=vocabulary))
    excluded = [c for c in train.columns if c not in columns and c not in (config.label, *INTERNAL)]
    return FeatureSpec(
        numeric=numeric, categorical=categorical, label=config.label,
        positive_label=config.positive_label, excluded=excluded,
    )


def fit_feature_spec_batches(batches: Iterable[pd.DataFrame], config: DataConfig) -> FeatureSpec:
    """`fit_feature_spec` of a split read batch by batch: vocabularies as unions, means and (population) standard
    deviations merged per batch (Chan et al.), equal to the whole frame's up to float rounding."""
    frame: pd.DataFrame | None = None
    stats: dict[str, tuple[int, float, float]] = {}  # column -> (count, mean, sum of squared deviations)
    extremes: dict[str, tuple[float, float]] = {}  # column -> (min, max)
    seen: dict[str, set[str]] = {}
    for batch in batches:
        frame = batch if frame is None else frame
        for column in model_inputs(frame, config):
            values = batch[column]
            if pd.api.types.is_numeric_dtype(frame[column]):
                x = values.dropna().to_numpy(dtype=np.float64)
                n, mean = len(x), float(x.mean()) if len(x) else 0.0
                m2 = float(((x - mean) ** 2).sum())
                total, mean0, m20 = stats.get(column, (0, 0.0, 0.0))
                if n:
                    low, high = extremes.get(column, (np.inf, -np.inf))
                    extremes[column] = (min(low, float(x.min())), max(high, float(x.max())))
                    delta, both = mean - mean0, total + n
                    stats[column] = (both, mean0 + delta * n / both, m20 + m2 + delta**2 * total * n / both)
                else:
                    stats.setdefault(column, (total, mean0, m20))
            else:
                seen.setdefault(column, set()).update(values.dropna().astype(str).unique().tolist())
    if frame is None:
        raise PipelineError("data: the training split has no rows")
    head = frame.iloc[:0].copy()
    spec = fit_feature_spec(head, config)  # the columns, exclusions and label as the whole frame gives them
    numeric = []
    for feature in spec.numeric:
        n, mean, m2 = stats[feature.name]
        std = float(np.sqrt(m2 / n)) if n else float("nan")
        numeric.append(NumericFeature(name=feature.name, mean=mean if n else float("nan"),
                                      std=std if std > 0 else 1.0, **_range(*extremes.get(feature.name, (None, None)))))
    categorical = [CategoricalFeature(name=c.name, vocabulary=sorted(seen.get(c.name, set())))
                   for c in spec.categorical]
    return spec.model_copy(update={"numeric": numeric, "categorical": categorical})


def _check_columns(frame: pd.DataFrame, spec: FeatureSpec) -> None:
    missing = [f.name for f in [*spec.numeric, *spec.categorical] if f.name not in frame.columns]  # type: ignore[attr-defined]
    if missing:
        raise PipelineError(f"features: column '{missing[0]}' expected by the feature spec is missing")


def encode_compact(frame: pd.DataFrame, spec: FeatureSpec) -> tuple[np.ndarray, np.ndarray]:
    """The encoding before one-hot: normalized numeric columns (float32) and each categorical column's vocabulary
    index (int32, -1 for an unseen value). At 97 one-hot columns this is ~8x smaller than the matrix, so all of a
    large training split fits; `expand` (NumPy) and `expand_tensor` (in the training graph) make the matrix."""
    _check_columns(frame, spec)
    numeric = np.empty((len(frame), len(spec.numeric)), dtype=np.float32)
    for i, feature in enumerate(spec.numeric):
        values = pd.to_numeric(frame[feature.name], errors="coerce").to_numpy(dtype=np.float64, na_value=feature.mean)
        if feature.low is not None and feature.high is not None:
            values = np.clip(values, feature.low, feature.high)
        numeric[:, i] = (values - feature.mean) / feature.std
    codes = np.empty((len(frame), len(spec.categorical)), dtype=np.int32)
    for i, category in enumerate(spec.categorical):
        codes[:, i] = pd.Categorical(frame[category.name].astype("string"), categories=category.vocabulary).codes
    return numeric, codes


def expand(numeric: np.ndarray, codes: np.ndarray, spec: FeatureSpec) -> np.ndarray:
    """The model's float32 matrix from `encode_compact`'s parts: numeric columns, then one-hot blocks."""
    out = np.zeros((len(numeric), spec.width), dtype=np.float32)
    out[:, :len(spec.numeric)] = numeric
    col = len(spec.numeric)
    for i, feature in enumerate(spec.categorical):
        rows = np.flatnonzero(codes[:, i] >= 0)
        out[rows, col + codes[rows, i]] = 1.0
        col += len(feature.vocabulary)
    return out


def expand_tensor(numeric, codes, sizes: list[int]):
    """`expand` inside a TensorFlow graph (a batch at a time): tf.one_hot of -1 is all zeros, as unseen values are."""
    import tensorflow as tf

    return tf.concat([numeric] + [tf.one_hot(codes[:, i], size, dtype=tf.float32) for i, size in enumerate(sizes)],
                     axis=1)


@dataclass(frozen=True)
class CompactRows:
    """Rows in `encode_compact`'s form, with the vocabulary sizes that turn them into the model's matrix."""

    numeric: np.ndarray
    codes: np.ndarray
    sizes: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.numeric)

    @property
    def width(self) -> int:
        return self.numeric.shape[1] + sum(self.sizes)


def compact_rows(frame: pd.DataFrame, spec: FeatureSpec) -> CompactRows:
    return CompactRows(*encode_compact(frame, spec), tuple(len(c.vocabulary) for c in spec.categorical))


def encode_features(frame: pd.DataFrame, spec: FeatureSpec) -> np.ndarray:
    """Vectorized encoding of a frame into the model's float32 matrix."""
    return expand(*encode_compact(frame, spec), spec)


# rows per piece: the matrix of 10M rows would be ~4 GB. A multiple of train.PREDICT_CHUNK, so Keras sees the
# same row slices as when it is given the whole matrix
ENCODE_CHUNK = 262_144


def encoded_chunks(frame: pd.DataFrame, spec: FeatureSpec, rows: int = ENCODE_CHUNK):
    """`encode_features` of the frame, a slice of rows at a time (the same values, in order; an empty frame gives
    one empty matrix)."""
    for start in range(0, max(len(frame), 1), rows):
        yield encode_features(frame.iloc[start:start + rows], spec)


def encode_labels(frame: pd.DataFrame, spec: FeatureSpec) -> np.ndarray:
    """1 for the positive label, else 0."""
    return positive_mask(frame[spec.label], spec.positive_label).to_numpy(dtype=np.float32)
