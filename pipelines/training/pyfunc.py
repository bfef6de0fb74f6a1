"""The trained model as an MLflow Model (pyfunc): raw input rows in, positive-class probabilities out.

The feature spec travels with the Keras file, so `mlflow models serve -m models:/NAME@candidate` (the cloud offload
endpoint) encodes rows exactly as training did. The `pipelines` package ships inside the model (code_paths), so the
served model needs only the pinned requirements, not this project installed.
"""
from __future__ import annotations

import logging
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

import mlflow.pyfunc

KERAS_ARTIFACT = "keras_model"
SPEC_ARTIFACT = "feature_spec"
EXAMPLE_ROWS = 5
# What loading and predicting imports; pinned to this environment's versions so the server matches training.
REQUIREMENTS = ("keras", "tensorflow-cpu", "numpy", "pandas", "pydantic", "pyyaml", "cloudpickle")


class ProbabilityModel(mlflow.pyfunc.PythonModel):
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
        return self.model.predict(encode_features(frame, self.spec), batch_size=4096, verbose=0).reshape(-1)


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
    example[numeric] = example[numeric].astype("float64")  # integers are accepted where doubles are declared
    proba = model.predict(encode_features(example, spec), verbose=0).reshape(-1).astype(np.float64)
    # MLflow's pickling notice and "validating the example" line are not the run's business: the run stays quiet
    pyfunc_log = logging.getLogger("mlflow.pyfunc")
    level = pyfunc_log.level
    pyfunc_log.setLevel(logging.ERROR)
    try:
        _save(target, keras_file, spec_file, example, proba)
    finally:
        pyfunc_log.setLevel(level)
    return target


def _save(target: Path, keras_file: Path, spec_file: Path, example: pd.DataFrame, proba) -> None:
    from mlflow.models import infer_signature

    mlflow.pyfunc.save_model(
        path=str(target), python_model=ProbabilityModel(),
        artifacts={KERAS_ARTIFACT: str(keras_file), SPEC_ARTIFACT: str(spec_file)},
        code_paths=[str(Path(__file__).resolve().parents[1])],  # the `pipelines` package
        signature=infer_signature(example, proba), input_example=example, pip_requirements=requirements(),
    )
