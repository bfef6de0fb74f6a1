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
TRAINING_HISTORY = "reports/training_history.csv"
TRAINING_PLOT = "reports/training_curve.png"
CONFUSION_MATRIX_PLOT = "reports/confusion_matrix.png"
# A stage's headline numbers for `dvc metrics show` / `diff` (pipelines.steps.records_metrics writes them).
RAW_DATASET_METRICS = "reports/metrics/raw_dataset.json"
VALIDATED_DATASET_METRICS = "reports/metrics/validated_dataset.json"
DATA_DRIFT_METRICS = "reports/metrics/data_drift.json"
DATASET_SPLITS_METRICS = "reports/metrics/dataset_splits.json"
TRAINED_MODEL_METRICS = "reports/metrics/trained_model.json"
MODEL_EVALUATION_METRICS = "reports/metrics/model_evaluation.json"
TFLITE_MODEL_METRICS = "reports/metrics/tflite_model.json"
COREML_MODEL_METRICS = "reports/metrics/coreml_model.json"
FOOTPRINT_REPORT_METRICS = "reports/metrics/footprint_report.json"
OFFLOAD_POLICY_METRICS = "reports/metrics/offload_policy.json"
FAIRNESS_TRADEOFF_METRICS = "reports/metrics/fairness_tradeoff.json"
FAIRNESS_REPORT_METRICS = "reports/metrics/fairness_report.json"
FEATURE_IMPORTANCE_METRICS = "reports/metrics/feature_importance.json"
MODEL_CARD_METRICS = "reports/metrics/model_card.json"
RELEASE_CANDIDATE_METRICS = "reports/metrics/release_candidate.json"
COST_REPORT = "reports/cost.json"  # FinOps: cost per variant and of the release, decision matrix, budgets
OFFLOAD_ENDPOINT = "build/offload_endpoint.yaml"  # Kubernetes manifests of the cloud offload endpoint
FINOPS_REPORT_METRICS = "reports/metrics/finops_report.json"


@dataclass(frozen=True)
class ArtifactPaths:
    """Absolute artifact paths under one project root."""

    root: Path

    def __getattr__(self, name: str) -> Path:
        relative = globals().get(name.upper())
        if not isinstance(relative, str):
            raise AttributeError(name)
        return self.root / relative
