"""Where every artifact lives: declared once, shared by Dagster assets and DVC stages."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# Relative to the project root. dvc.yaml lists the same paths (a test keeps them in step).
RAW_DATASET = "data/raw/dataset.parquet"
VALIDATED_DATASET = "data/prepared/validated.parquet"
VALIDATION_REPORT = "reports/validation.json"
DATA_PROFILE = "data/prepared/profile.json"
DRIFT_REPORT = "reports/drift.json"
DRIFT_PLOT = "reports/drift.png"
DATASET_SPLITS = "data/prepared/splits"
TRAINED_MODEL = "models/trained"
EVALUATION_REPORT = "reports/evaluation.json"
TFLITE_MODEL = "models/tflite"
TFLITE_REPORT = "reports/tflite.json"
COREML_MODEL = "models/coreml"
COREML_REPORT = "reports/coreml.json"
FOOTPRINT_REPORT = "reports/footprint.json"
FOOTPRINT_TABLE = "reports/footprint.csv"
FOOTPRINT_CHART = "reports/footprint.png"
OFFLOAD_REPORT = "reports/offload.json"
OFFLOAD_GRID = "reports/offload.csv"
FAIRNESS_TRADEOFF = "reports/fairness_tradeoff.json"
FAIRNESS_TRADEOFF_TABLE = "reports/fairness_tradeoff.csv"
FAIRNESS_TRADEOFF_PLOT = "reports/fairness_tradeoff.png"
FAIRNESS_REPORT = "reports/fairness.json"
IMPORTANCE_REPORT = "reports/importance.json"
MODEL_CARD_MARKDOWN = "reports/model_card.md"
MODEL_CARD_JSON = "reports/model_card.json"
RELEASE_CANDIDATE = "build/release_candidate"


@dataclass(frozen=True)
class ArtifactPaths:
    """Absolute artifact paths under one project root."""

    root: Path

    def __getattr__(self, name: str) -> Path:
        relative = globals().get(name.upper())
        if not isinstance(relative, str):
            raise AttributeError(name)
        return self.root / relative
