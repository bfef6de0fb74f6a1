"""TFLite conversion and LiteRT inference on a tiny Keras model (the only test that imports TensorFlow)."""
from __future__ import annotations

import numpy as np
import pytest

from pipelines.core.errors import PipelineError
from pipelines.mobile.tflite import check_builtin_ops


def test_check_builtin_ops_rejects_flex_and_custom_ops():
    check_builtin_ops(["FULLY_CONNECTED", "LOGISTIC"], "float32")
    with pytest.raises(PipelineError, match="tflite int8: non-builtin ops FlexErf; the app would need the Flex"):
        check_builtin_ops(["FULLY_CONNECTED", "FlexErf"], "int8")
    with pytest.raises(PipelineError, match="CUSTOM"):
        check_builtin_ops(["CUSTOM"], "x")


def test_float32_and_int8_conversions_run_and_match_keras():
    import keras

    from pipelines.core.config import TrainConfig
    from pipelines.mobile.tflite import convert_float32, convert_int8
    from pipelines.release_format.litert import io_spec, op_names, predict_tflite
    from pipelines.training.train import build_model, predict_keras

    keras.utils.set_random_seed(0)
    width = 3
    model = build_model(width, TrainConfig(hidden_units=[4], epochs=1))
    x = np.random.default_rng(0).normal(size=(24, width)).astype(np.float32)
    expected = predict_keras(model, x)

    float32 = convert_float32(model, width)
    assert isinstance(float32, bytes) and float32[4:8] == b"TFL3"
    ops = op_names(float32)
    assert "FULLY_CONNECTED" in ops and "LOGISTIC" in ops
    check_builtin_ops(ops, "float32")
    got = predict_tflite(float32, x)
    assert got.shape == (24,) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=1e-5)

    int8 = convert_int8(model, width, x)
    spec = io_spec(int8)
    assert spec["inputs"][0]["dtype"] == "int8" and spec["outputs"][0]["dtype"] == "int8"
    assert spec["inputs"][0]["shape"] == [1, width]
    check_builtin_ops(op_names(int8), "int8")
    quantized = predict_tflite(int8, x)
    assert quantized.shape == (24,)
    assert np.all((quantized >= 0) & (quantized <= 1))
    np.testing.assert_allclose(quantized, expected, atol=0.05)
