"""Every TFLite variant built from a tiny Keras model, evaluated and timed through LiteRT; select-TF ops rejected."""
from __future__ import annotations

import numpy as np
import pytest

from pipelines.core.config import BenchmarkConfig, TrainConfig
from pipelines.core.errors import PipelineError

WIDTH = 20


@pytest.fixture(scope="module")
def tiny():
    """A tiny seeded MLP (20 x 64 weights: dynamic-range quantization skips tensors under 1,024)."""
    import keras

    from pipelines.training.train import build_model, predict_keras

    keras.utils.set_random_seed(0)
    model = build_model(WIDTH, TrainConfig(hidden_units=[64], epochs=1))
    x = np.random.default_rng(0).normal(size=(64, WIDTH)).astype(np.float32)
    model.layers[1].set_weights([w * 4 if w.ndim == 2 else w for w in model.layers[1].get_weights()])
    return model, x, predict_keras(model, x)


@pytest.fixture(scope="module")
def flatbuffers(tiny):
    from pipelines.mobile.tflite import TFLITE_VARIANTS, convert_variants

    model, x, _ = tiny
    return convert_variants(model, WIDTH, TFLITE_VARIANTS, x)


def test_variants_from_one_frozen_graph_are_the_bytes_of_separate_conversions(tiny, flatbuffers):
    """convert_variants freezes the model once for all variants: the flatbuffers are those of converting each alone."""
    from pipelines.mobile.tflite import TFLITE_VARIANTS, convert_variant

    model, x, _ = tiny
    assert list(flatbuffers) == list(TFLITE_VARIANTS)
    for name in TFLITE_VARIANTS:
        assert convert_variant(model, WIDTH, name, x) == flatbuffers[name], name


def test_unknown_variant_fails_before_any_conversion(tiny, monkeypatch):
    from pipelines.mobile import tflite

    model, x, _ = tiny
    monkeypatch.setattr(tflite, "frozen_function", lambda *_: pytest.fail("froze before checking the names"))
    with pytest.raises(PipelineError, match="unknown variant 'int4'"):
        tflite.convert_variants(model, WIDTH, ["float32", "int4"], x)


EXPECTED_IO = {"float32": "float32", "float16": "float32", "dynamic_int8": "float32", "int8": "int8",
               "int8_float_io": "float32"}
TOLERANCE = {"float32": 1e-5, "float16": 5e-3, "dynamic_int8": 0.05, "int8": 0.05, "int8_float_io": 0.05}


@pytest.mark.parametrize("name", list(EXPECTED_IO))
def test_each_variant_is_builtin_only_and_close_to_keras(tiny, flatbuffers, name):
    from pipelines.mobile.tflite import check_builtin_ops, weight_bytes
    from pipelines.release_format.litert import io_spec, op_names, predict_tflite

    _, x, expected = tiny
    content = flatbuffers[name]
    assert content[4:8] == b"TFL3"
    ops = op_names(content)
    check_builtin_ops(ops, name)
    assert "FULLY_CONNECTED" in ops
    spec = io_spec(content)
    assert spec["inputs"][0]["dtype"] == spec["outputs"][0]["dtype"] == EXPECTED_IO[name]
    assert spec["inputs"][0]["shape"] == [1, WIDTH]
    proba = predict_tflite(content, x)
    assert proba.shape == (len(x),) and proba.dtype == np.float32
    np.testing.assert_allclose(proba, expected, atol=TOLERANCE[name])
    assert 0 < weight_bytes(content) < len(content)


def test_variants_shrink_as_promised(flatbuffers):
    size = {name: len(content) for name, content in flatbuffers.items()}
    assert size["float16"] < size["float32"]
    assert size["dynamic_int8"] < size["float16"]
    assert size["int8"] < size["float16"]
    ops = {name: op_names_of(content) for name, content in flatbuffers.items()}
    assert "QUANTIZE" in ops["int8_float_io"] and "DEQUANTIZE" in ops["int8_float_io"]
    assert "QUANTIZE" not in ops["int8"]


def op_names_of(content: bytes) -> list[str]:
    from pipelines.release_format.litert import op_names

    return op_names(content)


def test_full_integer_needs_representative_rows_and_names_are_checked(tiny):
    from pipelines.mobile.tflite import convert_variant

    model, _, _ = tiny
    with pytest.raises(PipelineError, match="int8: full-integer quantization needs representative rows"):
        convert_variant(model, WIDTH, "int8", None)
    with pytest.raises(PipelineError, match="unknown variant 'int4'"):
        convert_variant(model, WIDTH, "int4")


def test_builtin_check_fails_on_a_model_that_needs_select_tf_ops():
    """A Keras model with a cumulative product (no TFLite builtin) converts only with SELECT_TF_OPS."""
    import keras
    import tensorflow as tf

    from pipelines.mobile.tflite import check_builtin_ops
    from pipelines.release_format.litert import op_names

    inputs = keras.Input(shape=(3,), batch_size=1)
    outputs = keras.layers.Lambda(lambda t: tf.math.cumprod(t, axis=1))(keras.layers.Dense(3)(inputs))
    model = keras.Model(inputs, outputs)
    concrete = tf.function(model).get_concrete_function(tf.TensorSpec([1, 3], tf.float32))
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], model)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]
    ops = op_names(converter.convert())
    assert "FlexCumprod" in ops
    with pytest.raises(PipelineError, match="tflite flex: non-builtin ops FlexCumprod; the app would need the Flex"):
        check_builtin_ops(ops, "flex")


def test_latency_is_measured_not_asserted(tiny, flatbuffers):
    """Shape of the measurement only: counts, percentile order, throughput present. No time is asserted."""
    from pipelines.mobile.latency import host_info, keras_latency, litert_latency

    model, x, _ = tiny
    config = BenchmarkConfig(warmup=5, runs=50, keras_runs=10, batch_size=16, batch_repeats=3)
    for name in ("float32", "int8"):
        latency = litert_latency(flatbuffers[name], x, config)
        assert latency["runs"] == 50 and latency["threads"] == 1 and latency["batch_size"] == 16
        assert 0 < latency["min_ms"] <= latency["p50_ms"] <= latency["p95_ms"] <= latency["p99_ms"]
        assert latency["batch_rows_per_s"] > 0
    keras = keras_latency(model, x, config)
    assert keras["runs"] == 10 and keras["p50_ms"] > 0 and "tf.function" in keras["method"]
    assert host_info()["cpu"]


@pytest.mark.parametrize("name", ["float32", "int8"])
def test_latency_rows_are_what_the_app_would_pass(tiny, flatbuffers, name, monkeypatch):
    """The timed single-row inputs are converted in one batch: each equals converting that row alone."""
    from pipelines.mobile.latency import litert_latency
    from pipelines.release_format import litert

    _, x, _ = tiny
    seen: list[np.ndarray] = []
    make = litert.runner

    def recording(content, batch_size=1, num_threads=1):
        detail, call = make(content, batch_size=batch_size, num_threads=num_threads)
        return detail, (lambda rows: (seen.append(rows.copy()), call(rows))[1]) if batch_size == 1 else call

    monkeypatch.setattr(litert, "runner", recording)
    config = BenchmarkConfig(warmup=0, runs=len(x) + 6, keras_runs=10, batch_size=4, batch_repeats=1)
    litert_latency(flatbuffers[name], x, config)
    detail = litert.interpreter(flatbuffers[name]).get_input_details()[0]
    assert len(seen) == config.runs
    for i, rows in enumerate(seen):
        expected = litert.to_input(detail, x[i % len(x):i % len(x) + 1])
        assert rows.dtype == expected.dtype and rows.shape == (1, WIDTH)
        np.testing.assert_array_equal(rows, expected)


def test_float32_stays_in_the_variant_list():
    from pipelines.core.config import ConvertConfig

    with pytest.raises(ValueError, match="tflite_variants must include float32"):
        ConvertConfig(tflite_variants=["int8"])
