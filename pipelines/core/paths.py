"""Where every artifact lives: declared once, shared by Dagster assets and DVC stages."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipelines.core.config import Settings

# Relative to the project root; the stage catalog (pipelines/catalog.py) names which stage writes each.
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
ONNX_MODEL = "models/onnx"  # ONNX Runtime Mobile: <variant>.onnx and the <variant>.ort files apps load
ONNX_REPORT = "reports/onnx.json"
TEACHER_MODEL = "models/teacher"  # the distillation teacher (pipelines.training.distill)
TEACHER_REPORT = "reports/teacher.json"
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
COST_REPORT = "reports/cost.json"  # FinOps: cost per variant and of the release, decision matrix, budgets
OFFLOAD_ENDPOINT = "build/offload_endpoint.yaml"  # Kubernetes manifests of the cloud offload endpoint
METRICS_DIR = "reports/metrics"  # one <stage>.json per stage: its headline numbers for `dvc metrics show`
FLEET_REPORTS_DIR = "reports/fleet"  # the post-release assets' reports and charts
FLEET_CANARY_REPORT = "reports/fleet/canary.json"
FLEET_GUARDRAILS_PLOT = "reports/fleet/guardrails.png"
FLEET_FINOPS_REPORT = "reports/fleet/observed_finops.json"
FLEET_COST_PLOT = "reports/fleet/observed_cost.png"
FLEET_DRIFT_REPORT = "reports/fleet/production_drift.json"
GATES_DIR = "reports/gates"  # one <stage>.json per gated stage: its gates' verdict (pipelines/core/verdict.py)

# Inside models/trained/ (and, for the feature spec, inside a release)
KERAS_MODEL_FILE = "model.keras"
FEATURE_SPEC_FILE = "feature_spec.json"
MLFLOW_RECORD_FILE = "mlflow.json"
MITIGATION_FILE = "mitigation.json"
BASELINE_FILE = "baseline.joblib"  # the reductions baseline, when trained_model fitted it (fairness.target: baseline)
PREDICTIONS_FILE = "predictions.parquet"  # Keras probabilities on the validation and test rows, every strength
HISTORY_FILE = "history.json"
PRIVACY_FILE = "privacy.json"  # DP-SGD budget or federated facts (only when train.privacy is not none)
SWEEP_FOLDER = "sweep"  # every mitigation strength trained, one Keras file each (the trade-off reads them)


def sweep_model_file(strength: float) -> str:
    """A sweep model's path inside models/trained/."""
    return f"{SWEEP_FOLDER}/strength_{strength:g}.keras"

# Inside a release folder
RELEASE_MANIFEST_FILE = "manifest.json"  # hashes, lineage and (encrypted releases) the encryption record
RELEASE_PROFILE_FILE = "reference_profile.json"  # what the next run's drift check compares against
RELEASE_COREML_PACKAGE = "model.mlpackage"  # the released Core ML variant, whatever its compression
RELEASE_ORT_FILE = "model.ort"  # the released ONNX Runtime Mobile variant (for an app shipping onnxruntime)
PRODUCTION_FILE = "deploy/production.yaml"  # the release production runs (GitOps: merging it deploys)


def tflite_file(variant: str) -> str:
    """A TFLite variant's file name, in models/tflite/ and in a release."""
    return f"model_{variant}.tflite"


def ort_file(variant: str) -> str:
    """An ONNX Runtime Mobile variant's ORT-format file, in models/onnx/ and in a release."""
    return f"model_{variant}.ort"


def coreml_package(variant: str) -> str:
    """A Core ML variant's package name in models/coreml/."""
    return f"model_{variant}.mlpackage"


def suite_path(settings: Settings) -> Path:
    """The model's Great Expectations suite: params validate.suite, else expectations/<release.model_name>/suite.json
    (built from the data on the model's first run)."""
    return settings.resolve(settings.params.validate_.suite
                            or f"expectations/{settings.params.release.model_name}/suite.json")


def metrics_file(stage: str) -> str:
    """A stage's headline-metrics file (written by core.step.records_metrics, listed as the DVC stage's metric)."""
    return f"{METRICS_DIR}/{stage}.json"


def verdict_file(stage: str) -> str:
    """A gated stage's verdict (written right after its step, read by the stages downstream of it)."""
    return f"{GATES_DIR}/{stage}.json"


@dataclass(frozen=True)
class ArtifactPaths:
    """Absolute artifact paths under one project root."""

    root: Path

    def metrics(self, stage: str) -> Path:
        return self.root / metrics_file(stage)

    def verdict(self, stage: str) -> Path:
        return self.root / verdict_file(stage)

    def __getattr__(self, name: str) -> Path:
        relative = globals().get(name.upper())
        if not isinstance(relative, str):
            raise AttributeError(name)
        return self.root / relative
