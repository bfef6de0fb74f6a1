"""Feature spec: the encoding (vocabularies, normalization) an app reproduces on device."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel

from pipelines.core.config import DataConfig
from pipelines.core.errors import PipelineError
from pipelines.data.load import ORIGIN, positive_mask


class NumericFeature(BaseModel):
    name: str
    mean: float
    std: float


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
            "recipe": "numeric: (x - mean) / std; categorical: one-hot in vocabulary order, unseen -> zeros; "
            "concatenate numeric then categorical, float32",
            **self.model_dump(),
        }


def model_inputs(frame: pd.DataFrame, config: DataConfig) -> list[str]:
    """Columns the model may see: not the label, not evaluation-only sensitive columns."""
    excluded = {config.label, ORIGIN, *config.pii}
    if not config.sensitive_as_inputs:
        excluded |= set(config.sensitive_features)
    return [c for c in frame.columns if c not in excluded]


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
            numeric.append(NumericFeature(name=column, mean=float(values.mean()), std=std if std > 0 else 1.0))
        else:
            vocabulary = sorted(values.dropna().astype(str).unique().tolist())
            categorical.append(CategoricalFeature(name=column, vocabulary=vocabulary))
    excluded = [c for c in train.columns if c not in columns and c not in (config.label, ORIGIN)]
    return FeatureSpec(
        numeric=numeric, categorical=categorical, label=config.label,
        positive_label=config.positive_label, excluded=excluded,
    )


def encode_features(frame: pd.DataFrame, spec: FeatureSpec) -> np.ndarray:
    """Vectorized encoding of a frame into the model's float32 matrix."""
    missing = [f.name for f in [*spec.numeric, *spec.categorical] if f.name not in frame.columns]
    if missing:
        raise PipelineError(f"features: column '{missing[0]}' expected by the feature spec is missing")
    out = np.zeros((len(frame), spec.width), dtype=np.float32)
    col = 0
    for feature in spec.numeric:
        values = pd.to_numeric(frame[feature.name], errors="coerce").to_numpy(dtype=np.float64, na_value=feature.mean)
        out[:, col] = (values - feature.mean) / feature.std
        col += 1
    for feature in spec.categorical:
        codes = pd.Categorical(frame[feature.name].astype("string"), categories=feature.vocabulary).codes
        rows = np.flatnonzero(codes >= 0)
        out[rows, col + codes[rows]] = 1.0
        col += len(feature.vocabulary)
    return out


def encode_labels(frame: pd.DataFrame, spec: FeatureSpec) -> np.ndarray:
    """1 for the positive label, else 0."""
    return positive_mask(frame[spec.label], spec.positive_label).to_numpy(dtype=np.float32)
