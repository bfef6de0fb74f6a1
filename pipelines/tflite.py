"""TFLite conversion (float32, full-integer int8) and evaluation through LiteRT."""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from pipelines.errors import PipelineError

NON_BUILTIN = ("CUSTOM", "FLEX", "DELEGATE")


def _frozen_function(model, width: int):
    """The model as a graph with constant weights (calibration cannot read variables)."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    concrete = tf.function(model).get_concrete_function(tf.TensorSpec([1, width], tf.float32, name="features"))
    return convert_variables_to_constants_v2(concrete)


def convert_float32(model, width: int) -> bytes:
    """Float32 TFLite flatbuffer restricted to builtin ops."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_concrete_functions([_frozen_function(model, width)])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    return converter.convert()


def convert_int8(model, width: int, representative: np.ndarray) -> bytes:
    """Full-integer int8 flatbuffer (int8 in/out), calibrated on training rows."""
    import tensorflow as tf

    def samples() -> Iterator[list[np.ndarray]]:
        for row in representative:
            yield [row.reshape(1, -1).astype(np.float32)]

    converter = tf.lite.TFLiteConverter.from_concrete_functions([_frozen_function(model, width)])
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = samples
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    return converter.convert()


def _interpreter(content: bytes, num_threads: int = 1):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    return Interpreter(
        model_content=content, num_threads=num_threads,
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    )


def op_names(content: bytes) -> list[str]:
    """Distinct operator names in the flatbuffer, in graph order."""
    seen: list[str] = []
    for op in _interpreter(content)._get_ops_details():
        if op["op_name"] not in seen:
            seen.append(op["op_name"])
    return seen


def check_builtin_ops(ops: list[str], name: str) -> None:
    """Fail when a model needs custom or select-TF (Flex) ops, which bloat mobile apps."""
    bad = [op for op in ops if op.upper().startswith(NON_BUILTIN)]
    if bad:
        raise PipelineError(f"tflite {name}: non-builtin ops {', '.join(bad)}; the app would need the Flex delegate")


def predict_tflite(content: bytes, x: np.ndarray) -> np.ndarray:
    """Probabilities for every row, run as one batch through LiteRT (quantizing int8 inputs)."""
    interpreter = _interpreter(content, num_threads=2)
    detail = interpreter.get_input_details()[0]
    interpreter.resize_tensor_input(detail["index"], [len(x), x.shape[1]])
    interpreter.allocate_tensors()
    detail, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    batch = x.astype(np.float32)
    if detail["dtype"] == np.int8:
        scale, zero = detail["quantization"]
        batch = np.clip(np.round(batch / scale + zero), -128, 127).astype(np.int8)
    interpreter.set_tensor(detail["index"], batch)
    interpreter.invoke()
    result = interpreter.get_tensor(out["index"]).reshape(-1)
    if out["dtype"] == np.int8:
        scale, zero = out["quantization"]
        result = (result.astype(np.float32) - zero) * scale
    return result.astype(np.float32)


def io_spec(content: bytes) -> dict:
    """Input/output dtypes, shapes and quantization an app needs to call the model."""
    interpreter = _interpreter(content)
    describe = lambda d: {  # noqa: E731
        "name": d["name"], "dtype": np.dtype(d["dtype"]).name, "shape": [int(s) for s in d["shape"]],
        "quantization": {"scale": float(d["quantization"][0]), "zero_point": int(d["quantization"][1])},
    }
    return {
        "inputs": [describe(d) for d in interpreter.get_input_details()],
        "outputs": [describe(d) for d in interpreter.get_output_details()],
    }

