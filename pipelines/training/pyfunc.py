"""The trained model as an MLflow Model (pyfunc): raw input rows in, positive-class probabilities out.

The feature spec travels with the Keras file, so `mlflow models serve -m models:/NAME@candidate` (the cloud offload
endpoint) encodes rows exactly as training did. The `pipelines` package ships inside the model (code_paths), so the
served model needs only the pinned requirements, not this project installed.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

KERAS_ARTIFACT = "keras_model"
SPEC_ARTIFACT = "feature_spec"
EXAMPLE_ROWS = 5
# What loading and predicting imports; pinned to this environment's versions so the server matches training.
REQUIREMENTS = ("keras", "tensorflow-cpu", "numpy", "pandas", "pydantic", "pyyaml", "cloudpickle")


class ProbabilityModel(mlflow.pyfunc.PythonModel):  # type: ignore[name-defined]
    """Raw rows (a DataFrame with the spec's input columns) -> the Keras model's positive-class probabilities."""

    def load_context(self, context) -> None:
        import keras

        from pipelines.core.io import read_json
        from pipelines.data.features import FeatureSpec

        self.spec = FeatureSpec.model_validate(read_json(Path(context.artifacts[SPEC_ARTIFACT]))["spec"])
        self.model = keras.models.load_model(context.artifacts[KERAS_ARTIFACT])

    def predict(self, context, model_input: pd.DataFrame, params: dict[str, Any] | None = None):
        from pipelines.data.features import encode_features

        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        frame = numeric_columns(frame, [f.name for f in self.spec.numeric])
        return self.model.predict(encode_features(frame, self.spec), batch_size=4096, verbose=0).reshape(-1)


def numeric_columns(frame: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """The numeric inputs as float64, whatever numbers they arrive as (int64 from a raw CSV, float64 from the
    typed splits, JSON ints or floats); a value that is not a number is refused naming its column (HTTP 400)."""
    out = frame.copy()
    for name in names:
        if name not in out.columns:
            continue
        values = pd.to_numeric(out[name], errors="coerce")
        bad = values.isna() & out[name].notna()
        if bad.any():
            raise MlflowException(f"column {name!r}: {int(bad.sum())} value(s) are not numbers, e.g. "
                                  f"{out[name][bad].iloc[0]!r}", error_code=INVALID_PARAMETER_VALUE)
        out[name] = values.astype("float64")
    return out


def input_columns(spec) -> list[str]:
    """The raw columns the pyfunc reads, in spec order."""
    return [f.name for f in [*spec.numeric, *spec.categorical]]


def requirements() -> list[str]:
    """The serving environment's pins (explicit: MLflow's inference would load the model in a subprocess)."""
    pins = []
    for name in REQUIREMENTS:
        try:
            pins.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:  # e.g. `tensorflow` instead of `tensorflow-cpu`
            continue
    return pins


def save_pyfunc(target: Path, keras_file: Path, spec_file: Path, spec, model, rows: pd.DataFrame) -> Path:
    """Write the MLflow Model folder to `target`: artifacts, code, signature and an input example of raw rows."""
    import numpy as np

    from pipelines.data.features import encode_features

    example = rows[input_columns(spec)].head(EXAMPLE_ROWS).reset_index(drop=True)
    numeric = [f.name for f in spec.numeric]
    example[numeric] = example[numeric].astype("float64")
    proba = model.predict(encode_features(example, spec), verbose=0).reshape(-1).astype(np.float64)
    # MLflow's pickling notice and "validating the example" line are not the run's business: the run stays quiet
    pyfunc_log = logging.getLogger("mlflow.pyfunc")
    level = pyfunc_log.level
    pyfunc_log.setLevel(logging.ERROR)
    try:
        _save(target, keras_file, spec_file, example, proba, numeric)
    finally:
        pyfunc_log.setLevel(level)
    return target


def signature_of(example: pd.DataFrame, proba, numeric: list[str]):
    """The example's signature with the numeric inputs typed `Any`: MLflow refuses int64 where double is declared
    (and float64 where long is), while a raw CSV read with pandas has int64 columns and the typed splits float64.
    Every input stays required; the model converts the numbers itself (`numeric_columns`)."""
    from mlflow.models import ModelSignature, infer_signature
    from mlflow.types.schema import AnyType, ColSpec, Schema

    inferred = infer_signature(example, proba)
    inputs = [ColSpec(AnyType(), c.name) if c.name in numeric else c for c in inferred.inputs.inputs]
    return ModelSignature(inputs=Schema(inputs), outputs=inferred.outputs)


@contextmanager
def _pins_from_this_environment() -> Iterator[None]:
    """MLflow's check that the pins match the installed packages, skipped: `requirements()` reads every pin from
    this environment's own metadata, so it cannot find a mismatch, and it maps every installed distribution to its
    modules first (1.7 s of a 30 s Adult run). Should MLflow move the check, it simply runs again."""
    from mlflow.utils import environment

    check = getattr(environment, "warn_dependency_requirement_mismatches", None)
    if check is None:
        yield
        return
    environment.warn_dependency_requirement_mismatches = lambda requirements: None  # type: ignore[assignment]
    try:
        yield
    finally:
        environment.warn_dependency_requirement_mismatches = check


def _save(target: Path, keras_file: Path, spec_file: Path, example: pd.DataFrame, proba, numeric: list[str]) -> None:
    with _pins_from_this_environment():
        _save_model(target, keras_file, spec_file, example, proba, numeric)


def _save_model(target: Path, keras_file: Path, spec_file: Path, example: pd.DataFrame, proba,
                numeric: list[str]) -> None:
    mlflow.pyfunc.save_model(
        path=str(target), python_model=ProbabilityModel(),
        artifacts={KERAS_ARTIFACT: str(keras_file), SPEC_ARTIFACT: str(spec_file)},
        code_paths=[str(Path(__file__).resolve().parents[1])],  # the `pipelines` package
        signature=signature_of(example, proba, numeric), input_example=example, pip_requirements=requirements(),
    )
