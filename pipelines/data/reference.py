"""The reference a drift check compares today's data with: a published release's data profile and model."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipelines.core.config import Settings
from pipelines.core.errors import PipelineError
from pipelines.core.io import read_json
from pipelines.core.paths import RELEASE_PROFILE_FILE, ArtifactPaths
from pipelines.data.drift import profile_frame
from pipelines.data.features import FeatureSpec, encode_features
from pipelines.data.rowsplit import INTERNAL
from pipelines.data.stream import sample_rows
from pipelines.release_format.deployment import production_or_latest
from pipelines.release_format.litert import predict_tflite


def find_reference(settings: Settings) -> tuple[Path | None, str]:
    """The release to compare against and why: configured, production, previous candidate, or none."""
    configured = settings.params.drift.reference
    if configured != "auto":
        folder = settings.resolve(configured)
        if not (folder / RELEASE_PROFILE_FILE).is_file():
            raise PipelineError(f"drift.reference: {folder} has no {RELEASE_PROFILE_FILE}")
        return folder, "configured in drift.reference"
    folder, why = production_or_latest(settings, RELEASE_PROFILE_FILE)  # type: ignore[assignment]
    return folder, why if folder else f"no reference: {why}, so nothing to drift from"


def current_profile(frame: pd.DataFrame) -> dict[str, Any]:
    """Today's data profile (no rows kept)."""
    return profile_frame(frame, [c for c in frame.columns if c not in INTERNAL])


def reference_predictions(content: bytes, spec: FeatureSpec, frame: pd.DataFrame, rows: int) -> np.ndarray:
    """Scores of a TFLite model on (a sample of) a frame."""
    sample = frame.sample(min(rows, len(frame)), random_state=0) if len(frame) > rows else frame
    return predict_tflite(content, encode_features(sample, spec))


def release_profile(settings: Settings, model: bytes, spec: FeatureSpec) -> dict[str, Any]:
    """The profile a release carries so later runs can test drift against it (no rows kept)."""
    paths = ArtifactPaths(settings.root)
    batch_rows = settings.params.data.batch_rows  # a bounded sample of larger data, never all of it
    frame = sample_rows(paths.validated_dataset, batch_rows, batch_rows)
    proba = reference_predictions(model, spec, frame, settings.params.drift.sample_rows)
    return read_json(paths.data_profile) | {"predictions": np.quantile(proba, np.linspace(0, 1, 1000)).tolist()}
