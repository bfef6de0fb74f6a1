"""ONNX Runtime Mobile: one tf2onnx export of a tiny Keras model, every variant quantized with onnxruntime's tools,
written in ORT format and scored with onnxruntime."""
from __future__ import annotations

import numpy as np
import pytest

from pipelines.core.config import BenchmarkConfig, TrainConfig
from pipelines.core.errors import PipelineError

WIDTH = 12


@pytest.fixture(scope="module")
def tiny():
    import keras

    from pipelines.training.train import build_model, predict_keras

    keras.utils.set_random_seed(0)
    model = build_model(WIDTH, TrainConfig(hidden_units=[64, 32], epochs=1))
    x = np.random.default_rng(0).normal(size=(200, WIDTH)).astype(np.float32)
    return model, x, predict_keras(model, x)


@pytest.fixture(scope="module")
def converted(tiny):
    from pipelines.mobile.ort import ONNX_VARIANTS, export_onnx, onnx_variants, to_ort_format

    model, x, _ = tiny
    models = onnx_variants(export_onnx(model, WIDTH), ONNX_VARIANTS, x[:50])
    return models, *to_ort_format(models)


TOLERANCE = {"float32": 1e-5, "float16": 5e-3, "dynamic_int8": 0.05, "int8": 0.08}


@pytest.mark.parametrize("name", list(TOLERANCE))
def test_each_ort_variant_runs_in_onnxruntime_close_to_keras(tiny, converted, name):
    from pipelines.mobile.ort import predict_ort

    _, x, keras_proba = tiny
    models, ort, _ = converted
    assert ort[name][4:8] == b"ORTM"  # the ORT-format flatbuffer identifier the mobile packages check
    proba = predict_ort(ort[name], x)
    assert proba.shape == (len(x),) and proba.dtype == np.float32
    assert np.abs(proba - keras_proba).max() < TOLERANCE[name]
    assert np.abs(predict_ort(models[name], x) - proba).max() < 1e-5  # the .onnx and its .ort give the same answers


def test_quantized_variants_use_quantized_operators_and_are_smaller(converted):
    from pipelines.mobile.ort import op_types

    models, ort, operators = converted
    assert "MatMulInteger" in op_types(models["dynamic_int8"])
    assert {"QuantizeLinear", "DequantizeLinear"} <= set(op_types(models["int8"]))
    assert "Cast" in op_types(models["float16"])  # float32 input and output around float16 math
    assert len(ort["dynamic_int8"]) < len(ort["float32"]) and len(models["float16"]) < len(models["float32"])
    assert "ai.onnx;" in operators and "MatMul" in operators  # the reduced-build operator list


def test_unknown_variant_and_missing_calibration_rows_are_one_line_errors(tiny):
    from pipelines.mobile.ort import export_onnx, onnx_variants

    model, _, _ = tiny
    exported = export_onnx(model, WIDTH)
    with pytest.raises(PipelineError, match=r"^convert.onnx_variants: unknown variant 'int4' \(known: float32, "
                                            r"float16, dynamic_int8, int8\)$"):
        onnx_variants(exported, ["float32", "int4"])
    with pytest.raises(PipelineError, match="^onnx int8: static quantization needs representative rows$"):
        onnx_variants(exported, ["int8"], np.zeros((0, WIDTH), np.float32))


def test_latency_is_measured_per_row_and_per_batch(tiny, converted):
    from pipelines.mobile.ort import ort_latency

    _, x, _ = tiny
    latency = ort_latency(converted[1]["float32"], x, BenchmarkConfig(runs=50, warmup=5, batch_size=64, batch_repeats=3))
    assert latency["runs"] == 50 and latency["threads"] == 1 and latency["batch_size"] == 64
    assert 0 < latency["p50_ms"] <= latency["p95_ms"] and latency["batch_rows_per_s"] > 0
