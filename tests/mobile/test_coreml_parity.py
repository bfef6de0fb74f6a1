"""Core ML predictions against the TFLite float model, and against the numpy reference run (macOS only).

Core ML predicts only on macOS, so this file is skipped elsewhere; .github/workflows/macos-coreml.yml runs it
on a macOS runner. It is the check that the Linux-side reference scores (pipelines/coreml_reference.py)
describe what Core ML really computes.
"""
from __future__ import annotations

import platform

import numpy as np
import pytest

from pipelines.core.config import TrainConfig

pytestmark = pytest.mark.skipif(
    platform.system() != "Darwin", reason="Core ML prediction needs macOS; on this OS the pipeline checks the spec only"
)

WIDTH = 16
# Largest |Core ML - TFLite float32| per variant: float16 compute, then weight compression on top.
TOLERANCE = {"float16": 0.01, "linear8": 0.03, "palette6": 0.04, "palette4": 0.1}


@pytest.fixture(scope="module")
def tiny():
    import keras

    from pipelines.training.train import build_model

    keras.utils.set_random_seed(0)
    model = build_model(WIDTH, TrainConfig(hidden_units=[64, 16], epochs=1))
    rng = np.random.default_rng(0)
    for layer in model.layers[1:]:
        kernel, bias = layer.get_weights()
        layer.set_weights([kernel, rng.normal(scale=0.1, size=bias.shape).astype(np.float32)])
    return model, rng.normal(size=(300, WIDTH)).astype(np.float32)


@pytest.mark.parametrize("variant", list(TOLERANCE))
def test_coreml_matches_tflite_float_and_the_reference_run(tiny, tmp_path, variant):
    import coremltools as ct

    from pipelines.mobile.coreml import compress, convert_coreml
    from pipelines.mobile.coreml_reference import reference_predict
    from pipelines.mobile.tflite import convert_float32
    from pipelines.release_format.litert import predict_tflite

    model, x = tiny
    tflite = predict_tflite(convert_float32(model, WIDTH), x)
    package = tmp_path / f"model_{variant}.mlpackage"
    float16 = convert_coreml(model, WIDTH, "iOS16")
    float16.save(str(tmp_path / "base.mlpackage"))
    base = ct.models.MLModel(str(tmp_path / "base.mlpackage"), skip_model_load=True)
    compress(base, variant, 512).save(str(package))
    mlmodel = ct.models.MLModel(str(package), compute_units=ct.ComputeUnit.CPU_ONLY)
    coreml = np.array([float(np.ravel(mlmodel.predict({"features": row[None, :]})["probability"])[0]) for row in x],
                      dtype=np.float32)
    assert np.abs(coreml - tflite).max() <= TOLERANCE[variant]
    np.testing.assert_allclose(reference_predict(package, x), coreml, atol=5e-3)
