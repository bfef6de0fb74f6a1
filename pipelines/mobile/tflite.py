"""TFLite conversion (float32, float16, dynamic-range and full-integer int8) and evaluation through LiteRT."""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from pipelines.core.errors import PipelineError

NON_BUILTIN = ("CUSTOM", "FLEX", "DELEGATE")
TFLITE_VARIANTS = ("float32", "float16", "dynamic_int8", "int8", "int8_float_io")
WEIGHT_PRECISION = {  # what each variant stores and computes, for reports
    "float32": "float32 weights and math",
    "float16": "float16 weights (dequantized to float32 on CPU; GPU delegates compute in float16)",
    "dynamic_int8": "int8 weights, float32 activations (dynamic-range)",
    "int8": "int8 weights and activations, int8 input/output",
    "int8_float_io": "int8 weights and activations, float32 input/output",
}


def frozen_function(model, width: int):
    """The model as a graph with constant weights (calibration cannot read variables).

    Tracing and freezing cost more than a small model's conversion; convert_variants freezes once and hands the
    same graph to every variant's converter (a converter reads the graph, it does not change it)."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    concrete = tf.function(model).get_concrete_function(tf.TensorSpec([1, width], tf.float32, name="features"))
    return convert_variables_to_constants_v2(concrete)


def convert_float32(model, width: int) -> bytes:
    """Float32 TFLite flatbuffer restricted to builtin ops."""
    return convert_variant(model, width, "float32")


def convert_int8(model, width: int, representative: np.ndarray) -> bytes:
    """Full-integer int8 flatbuffer (int8 in/out), calibrated on training rows."""
    return convert_variant(model, width, "int8", representative)


def _check_variant(variant: str) -> None:
    if variant not in TFLITE_VARIANTS:
        raise PipelineError(f"convert.tflite_variants: unknown variant '{variant}' (known: "
                            f"{', '.join(TFLITE_VARIANTS)})")


def convert_variants(model, width: int, variants, representative: np.ndarray | None = None) -> dict[str, bytes]:
    """Every named variant from one frozen graph of the model (the same bytes as converting each on its own)."""
    for variant in variants:
        _check_variant(variant)
    frozen = frozen_function(model, width)
    return {variant: convert_variant(model, width, variant, representative, frozen=frozen) for variant in variants}


def convert_variant(model, width: int, variant: str, representative: np.ndarray | None = None, *, frozen=None) -> bytes:
    """One TFLite variant, builtin ops only; full-integer variants calibrate on `representative` rows.

    `frozen`: the model's frozen_function, when the caller converts several variants of it."""
    import tensorflow as tf

    _check_variant(variant)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([frozen or frozen_function(model, width)])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if variant != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if variant == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if variant in ("int8", "int8_float_io"):
        if representative is None or not len(representative):
            raise PipelineError(f"tflite {variant}: full-integer quantization needs representative rows")

        def samples() -> Iterator[list[np.ndarray]]:
            for row in representative:
                yield [row.reshape(1, -1).astype(np.float32)]

        converter.representative_dataset = samples
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if variant == "int8":
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
    return converter.convert()


def check_builtin_ops(ops: list[str], name: str) -> None:
    """Fail when a model needs custom or select-TF (Flex) ops, which bloat mobile apps."""
    bad = [op for op in ops if op.upper().startswith(NON_BUILTIN)]
    if bad:
        raise PipelineError(f"tflite {name}: non-builtin ops {', '.join(bad)}; the app would need the Flex delegate")


def weight_bytes(content: bytes) -> int:
    """Bytes of constant buffers (weights, biases, quantization-free data) in the flatbuffer."""
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(content))
    return int(sum(len(b.data) for b in model.buffers if b.data is not None))
