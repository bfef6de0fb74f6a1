"""Model steps: the trained Keras model (MLflow-registered) and its evaluation."""
from __future__ import annotations

from typing import Any

import pandas as pd

from pipelines.config import Settings
from pipelines.features import FeatureSpec, encode_features, encode_labels, fit_feature_spec
from pipelines.hashing import dvc_md5
from pipelines.io import atomic_path, read_json, write_json
from pipelines.lineage import git_state
from pipelines.metrics import classification_metrics, group_metrics
from pipelines.paths import ArtifactPaths
from pipelines.steps import StepResult, records_metrics
from pipelines.plots import confusion_matrix_chart, training_plots
from pipelines.tracking import log_files, log_to_run, log_training_run, run_url

MODEL_FILE = "model.keras"
SPEC_FILE = "feature_spec.json"
MLFLOW_FILE = "mlflow.json"
MITIGATION_FILE = "mitigation.json"


def load_split(settings: Settings, name: str) -> pd.DataFrame:
    return pd.read_parquet(ArtifactPaths(settings.root).dataset_splits / f"{name}.parquet")


def load_trained(settings: Settings) -> tuple[Any, FeatureSpec, dict[str, str]]:
    """The saved Keras model, its feature spec and its MLflow record."""
    import keras

    folder = ArtifactPaths(settings.root).trained_model
    spec = FeatureSpec.model_validate(read_json(folder / SPEC_FILE)["spec"])
    return keras.models.load_model(folder / MODEL_FILE), spec, read_json(folder / MLFLOW_FILE)


def run_tags(settings: Settings) -> dict[str, str]:
    """Tags every MLflow run carries: the data version and the code commit."""
    paths = ArtifactPaths(settings.root)
    state = git_state(settings.root)
    return {"data_version": dvc_md5(paths.raw_dataset), "git_commit": str(state["git_commit"]),
            **settings.params.project.tags()}  # FinOps: project, owner, cost_center, environment


def mitigation_facts(settings: Settings, strength: float) -> dict[str, Any]:
    """What the fairness mitigation did to the training run (models/trained/mitigation.json)."""
    from pipelines.mitigation import constrained_features

    fairness = settings.params.fairness
    return {"method": fairness.method if strength else "none", "constraint": fairness.constraint,
            "features": constrained_features(fairness, settings.params.data), "strength": strength}


def fit_mitigated(settings: Settings, train: pd.DataFrame, validation: pd.DataFrame, spec: FeatureSpec,
                  strength: float) -> tuple[Any, dict[str, list[float]]]:
    """The Keras model trained with the fairness mitigation at `strength` (0: unmitigated)."""
    from pipelines.mitigation import constrained_features, training_inputs
    from pipelines.train import train_model

    fairness, y_train = settings.params.fairness, encode_labels(train, spec)
    features = constrained_features(fairness, settings.params.data)
    extra = training_inputs(train, validation, y_train, fairness, features, strength)
    return train_model(encode_features(train, spec), y_train, encode_features(validation, spec),
                       encode_labels(validation, spec), settings.params.train, **extra)


@records_metrics
def trained_model(settings: Settings) -> StepResult:
    data, config = settings.params.data, settings.params.train
    train, validation = load_split(settings, "train"), load_split(settings, "validation")
    spec = fit_feature_spec(train, data)
    strength = settings.params.fairness.strength
    model, history = fit_mitigated(settings, train, validation, spec, strength)
    target = ArtifactPaths(settings.root).trained_model
    with atomic_path(target) as tmp:
        tmp.mkdir()
        model.save(tmp / MODEL_FILE)
        write_json(tmp / SPEC_FILE, {"spec": spec.model_dump(), "app_contract": spec.app_contract()})
        write_json(tmp / "history.json", history)
        write_json(tmp / MITIGATION_FILE, mitigation_facts(settings, strength))
        record = log_training_run(settings, history, tmp, run_tags(settings))
        write_json(tmp / MLFLOW_FILE, record)
    last = {k: round(v[-1], 4) for k, v in history.items()}
    plots = training_plots(settings.root, history)
    paths = ArtifactPaths(settings.root)
    log_files(settings, record["run_id"], "reports", [paths.validation_report, paths.drift_report, paths.training_history])
    log_files(settings, record["run_id"], "plots", [*plots.values(), paths.drift_plot])
    return StepResult(
        summary={"input_width": spec.width, "epochs": config.epochs, "fairness_strength": strength, **last, **record,
                 "mlflow_run": run_url(settings, record["experiment_id"], record["run_id"]), "path": str(target)},
        plots=plots,
    )


@records_metrics
def model_evaluation(settings: Settings) -> StepResult:
    from pipelines.train import predict_keras

    model, spec, record = load_trained(settings)
    test = load_split(settings, "test")
    y_true, threshold = encode_labels(test, spec), settings.params.train.threshold
    proba = predict_keras(model, encode_features(test, spec))
    report = {
        "overall": classification_metrics(y_true, proba, threshold),
        "groups": group_metrics(y_true, proba, test[settings.params.data.sensitive_features], threshold),
        "threshold": threshold,
    }
    path = ArtifactPaths(settings.root).evaluation_report
    write_json(path, report)
    log_to_run(settings, record["run_id"], {f"test_{k}": v for k, v in report["overall"].items()}, {"reports": path})
    positive = settings.params.data.positive_label
    matrix = confusion_matrix_chart(y_true, proba, threshold, (f"not {positive}", positive),
                                    ArtifactPaths(settings.root).confusion_matrix_plot)
    log_files(settings, record["run_id"], "plots", [matrix])
    return StepResult(
        summary={k: round(v, 4) for k, v in report["overall"].items()} | {"path": str(path)},
        tables={"groups": groups_table(report["groups"])},
        plots={"confusion matrix": matrix},
    )


def groups_table(groups: dict[str, dict[str, Any]]) -> str:
    """Per-group accuracy and selection rate as Markdown."""
    rows = ["| feature | group | rows | accuracy | selection rate |", "|---|---|---|---|---|"]
    for feature, facts in groups.items():
        for group, m in facts["groups"].items():
            rows.append(f"| {feature} | {group} | {m['count']} | {m['accuracy']:.4f} | {m['selection_rate']:.4f} |")
    return "\n".join(rows)

