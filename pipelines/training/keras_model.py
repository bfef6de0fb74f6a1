"""The project's Keras model: trained with the fairness mitigation at a strength, and loaded back with its spec."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from pipelines.core.config import Settings
from pipelines.core.io import read_json
from pipelines.core.paths import (
    FEATURE_SPEC_FILE,
    KERAS_MODEL_FILE,
    MLFLOW_RECORD_FILE,
    PREDICTIONS_FILE,
    ArtifactPaths,
)
from pipelines.data.features import FeatureSpec, compact_rows, encode_features, encode_labels
from pipelines.data.split_file import SplitFile
from pipelines.training.streamed import encoded_parts, label_frame, training_rows

if TYPE_CHECKING:
    from pipelines.training.tally import Aligned


def load_trained(settings: Settings) -> tuple[Any, FeatureSpec, dict[str, str]]:
    """The saved Keras model, its feature spec and its MLflow record."""
    import keras

    folder = ArtifactPaths(settings.root).trained_model
    spec = FeatureSpec.model_validate(read_json(folder / FEATURE_SPEC_FILE)["spec"])
    return keras.models.load_model(folder / KERAS_MODEL_FILE), spec, read_json(folder / MLFLOW_RECORD_FILE)


def load_spec(settings: Settings) -> tuple[FeatureSpec, dict[str, str]]:
    """The trained model's feature spec and MLflow record, without loading Keras (and TensorFlow)."""
    folder = ArtifactPaths(settings.root).trained_model
    return FeatureSpec.model_validate(read_json(folder / FEATURE_SPEC_FILE)["spec"]), \
        read_json(folder / MLFLOW_RECORD_FILE)


def strength_column(strength: float) -> str:
    return f"strength_{strength:g}"


def predict_rows(models: list[Any], frame: pd.DataFrame | SplitFile, spec: FeatureSpec) -> list[np.ndarray]:
    """Each model's probabilities for the frame's rows, encoded a chunk at a time (never the whole matrix); a split
    file's rows are read from it a batch at a time."""
    from pipelines.training.train import predict_keras

    parts: list[list[np.ndarray]] = [[] for _ in models]
    for x in encoded_parts(frame, spec):
        for part, model in zip(parts, models):
            part.append(predict_keras(model, x))
    return [np.concatenate(part) for part in parts]


def prediction_frame(fitted: dict[float, Any], deployed: Any, splits: dict[str, pd.DataFrame | SplitFile],
                     spec: FeatureSpec) -> pd.DataFrame:
    """Keras probabilities of the deployed model (`keras`) and of every sweep strength, for each split's rows in
    order: later steps read them instead of loading Keras and TensorFlow again."""
    parts = []
    strengths = sorted(fitted)
    for split, frame in splits.items():
        probas = predict_rows([deployed] + [fitted[s][0] for s in strengths], frame, spec)
        columns = {"split": split, "keras": probas[0]}
        columns |= {strength_column(s): proba for s, proba in zip(strengths, probas[1:])}
        parts.append(pd.DataFrame(columns))
    return pd.concat(parts, ignore_index=True)


def write_predictions(fitted: dict[float, Any], deployed: Any, splits: dict[str, pd.DataFrame | SplitFile],
                      spec: FeatureSpec, target: Path) -> None:
    """`prediction_frame` written to `target`; when a split is read from its file, its rows are predicted and
    written a batch at a time (a row group each), never all of them at once."""
    if not any(isinstance(rows, SplitFile) for rows in splits.values()):
        prediction_frame(fitted, deployed, splits, spec).to_parquet(target, index=False)
        return
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipelines.training.train import predict_keras

    strengths, writer = sorted(fitted), None
    try:
        for split, rows in splits.items():
            for x in encoded_parts(rows, spec):
                columns = {"split": split, "keras": predict_keras(deployed, x)}
                columns |= {strength_column(s): predict_keras(fitted[s][0], x) for s in strengths}
                table = pa.Table.from_pandas(pd.DataFrame(columns), preserve_index=False)
                writer = writer or pq.ParquetWriter(target, table.schema)
                writer.write_table(table.cast(writer.schema))
    finally:
        if writer is not None:
            writer.close()


def saved_predictions(settings: Settings, split: str, columns: list[str]) -> Aligned:
    """The saved Keras probabilities of a split's rows (`columns` of the predictions file), read a row group at a
    time and handed out in the row counts a pass over the split asks for (pipelines.training.tally)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from pipelines.training.tally import Aligned

    path = ArtifactPaths(settings.root).trained_model / PREDICTIONS_FILE

    def frames():
        with pq.ParquetFile(path, pre_buffer=False) as handle:
            for batch in handle.iter_batches(columns=["split", *columns]):
                mine = batch.filter(pc.equal(batch.column("split"), split))
                if mine.num_rows:
                    yield mine.select(columns).to_pandas()

    return Aligned(frames())


def saved_strengths(settings: Settings) -> list[float]:
    """The strengths whose probabilities trained_model saved (the predictions file's columns)."""
    import pyarrow.parquet as pq

    names = pq.read_schema(ArtifactPaths(settings.root).trained_model / PREDICTIONS_FILE).names
    return sweep_strengths(pd.DataFrame(columns=names))


def sweep_strengths(predictions: pd.DataFrame) -> list[float]:
    """The strengths whose probabilities a predictions frame holds."""
    return sorted(float(c.removeprefix("strength_")) for c in predictions.columns if c.startswith("strength_"))


def mitigation_facts(settings: Settings, strength: float, chosen_by: str,
                     validation: list[dict[str, Any]]) -> dict[str, Any]:
    """What the fairness mitigation did to the training run (models/trained/mitigation.json)."""
    from pipelines.training.mitigation import constrained_features

    fairness = settings.params.fairness
    unmitigated = strength == 0 or (fairness.method == "bound" and strength == 1.0)  # bound 1 never binds
    return {"method": "none" if unmitigated else fairness.method, "constraint": fairness.constraint,
            "features": constrained_features(fairness, settings.params.data), "strength": strength,
            "auto": fairness.strength == "auto", "chosen_by": chosen_by, "validation": validation}


def fit_mitigated(settings: Settings, train: pd.DataFrame, validation: pd.DataFrame, spec: FeatureSpec,
                  strength: float) -> tuple[Any, dict[str, list[float]]]:
    """The Keras model trained with the fairness mitigation at `strength` (0: unmitigated)."""
    from pipelines.training.mitigation import constrained_features, training_inputs
    from pipelines.training.train import train_model

    fairness, y_train = settings.params.fairness, encode_labels(train, spec)
    features = constrained_features(fairness, settings.params.data)
    extra = training_inputs(train, validation, y_train, fairness, features, strength)
    return train_model(encode_features(train, spec), loss_targets(settings, train, spec, y_train),
                       encode_features(validation, spec),
                       encode_labels(validation, spec), settings.params.train, **extra)


def loss_targets(settings: Settings, frame: pd.DataFrame | SplitFile, spec: FeatureSpec,
                 labels: np.ndarray) -> np.ndarray:
    """What the network's cross-entropy aims at per training row: the labels, or with train.distill the teacher's
    soft labels mixed with them (pipelines.training.distill). Mitigation weights keep using the hard labels."""
    return target_maker(settings, spec)(frame, labels)


def target_maker(settings: Settings, spec: FeatureSpec) -> Callable[[pd.DataFrame | SplitFile, np.ndarray], np.ndarray]:
    """`loss_targets` as a function of (rows, their labels), the teacher loaded once: a streamed training calls it
    on each batch it reads."""
    if settings.params.train.distill == "none":
        return lambda frame, labels: labels
    from pipelines.core.paths import ArtifactPaths
    from pipelines.training.distill import TEACHER_FILE, load_teacher, student_targets, teacher_proba

    teacher, distill = load_teacher(ArtifactPaths(settings.root).teacher_model / TEACHER_FILE), settings.params.distill

    def targets(frame: pd.DataFrame | SplitFile, labels: np.ndarray) -> np.ndarray:
        proba = np.concatenate([teacher_proba(teacher, x) for x in encoded_parts(frame, spec)])
        return student_targets(labels, proba, distill)

    return targets


def fit_sweep(settings: Settings, train: pd.DataFrame | SplitFile, validation: pd.DataFrame, spec: FeatureSpec,
              strengths: list[float]) -> dict[float, tuple[Any, dict[str, list[float]]]]:
    """The Keras model at every strength, trained together (pipelines.training.stacked): strength -> (model,
    history). A split file's rows are read as tf.data batches (pipelines.training.streamed)."""
    import numpy as np

    from pipelines.training.mitigation import constrained_features, training_inputs
    from pipelines.training.stacked import train_stacked
    from pipelines.training.train import class_weights

    params = settings.params
    fairness = params.fairness
    features = constrained_features(fairness, params.data)
    small = label_frame(train, [spec.label, *features])  # a split file: its labels and groups only
    y_train = encode_labels(small, spec)
    inputs = [training_inputs(small, validation, y_train, fairness, features, s) for s in strengths]
    weights = np.stack([extra.get("sample_weight", np.ones(len(y_train), np.float32)) for extra in inputs], axis=1)
    balance = class_weights(y_train, params.train)
    if balance is not None:
        weights = weights * balance[:, None]
    penalized = next((extra for extra in inputs if "groups" in extra), {})
    del small, inputs  # a split file's text columns: not needed while training
    targets = loss_targets(settings, train, spec, y_train)  # train.distill: the teacher's soft labels, mixed
    trained = train_stacked(training_rows(train, spec), targets, compact_rows(validation, spec),
                            encode_labels(validation, spec), params.train, strengths, sample_weights=weights,
                            groups=penalized.get("groups"), val_groups=penalized.get("val_groups"),
                            constraint=fairness.constraint)
    return dict(zip(strengths, trained))
