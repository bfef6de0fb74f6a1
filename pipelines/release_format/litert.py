"""LiteRT (the TFLite runtime): run a flatbuffer on rows, as every domain that scores a TFLite model does."""
from __future__ import annotations

import numpy as np


def interpreter(content: bytes, num_threads: int = 1):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    return Interpreter(
        model_content=content, num_threads=num_threads,
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    )


def op_names(content: bytes) -> list[str]:
    """Distinct operator names in the flatbuffer, in graph order."""
    seen: list[str] = []
    for op in interpreter(content)._get_ops_details():
        if op["op_name"] not in seen:
            seen.append(op["op_name"])
    return seen


def to_input(detail: dict, x: np.ndarray) -> np.ndarray:
    """Rows in the model's input dtype (int8 inputs are quantized as the app would)."""
    batch = x.astype(np.float32)
    if detail["dtype"] == np.int8:
        scale, zero = detail["quantization"]
        return np.clip(np.round(batch / scale + zero), -128, 127).astype(np.int8)
    return batch


def from_output(detail: dict, y: np.ndarray) -> np.ndarray:
    """Probabilities as float32 (int8 outputs are dequantized)."""
    if detail["dtype"] == np.int8:
        scale, zero = detail["quantization"]
        return ((y.astype(np.float32) - zero) * scale).astype(np.float32)
    return y.astype(np.float32)


PREDICT_CHUNK = 65_536  # rows per invocation: LiteRT holds the batch's input and every activation at once


def predict_tflite(content: bytes, x: np.ndarray, num_threads: int = 2) -> np.ndarray:
    """Probabilities for every row through LiteRT (quantizing int8 inputs), up to PREDICT_CHUNK rows an invocation."""
    runtime = interpreter(content, num_threads=num_threads)
    parts, size = [], None
    for start in range(0, max(len(x), 1), PREDICT_CHUNK):
        rows = x[start:start + PREDICT_CHUNK]
        if len(rows) != size:  # the first chunk, and a shorter last one
            detail = runtime.get_input_details()[0]
            runtime.resize_tensor_input(detail["index"], [len(rows), x.shape[1]])
            runtime.allocate_tensors()
            detail, out, size = runtime.get_input_details()[0], runtime.get_output_details()[0], len(rows)
        runtime.set_tensor(detail["index"], to_input(detail, rows))
        runtime.invoke()
        parts.append(from_output(out, runtime.get_tensor(out["index"]).reshape(-1)))
    return np.concatenate(parts)


def runner(content: bytes, batch_size: int = 1, num_threads: int = 1):
    """A LiteRT interpreter allocated once for `batch_size` rows, and a call(rows) -> raw output closure."""
    runtime = interpreter(content, num_threads=num_threads)
    detail = runtime.get_input_details()[0]
    if batch_size != detail["shape"][0]:
        runtime.resize_tensor_input(detail["index"], [batch_size, *detail["shape"][1:]])
    runtime.allocate_tensors()
    detail, out = runtime.get_input_details()[0], runtime.get_output_details()[0]
    set_tensor, invoke, get_tensor = runtime.set_tensor, runtime.invoke, runtime.get_tensor
    index_in, index_out = detail["index"], out["index"]

    def call(rows: np.ndarray) -> np.ndarray:
        set_tensor(index_in, rows)
        invoke()
        return get_tensor(index_out)

    return detail, call


def io_spec(content: bytes) -> dict:
    """Input/output dtypes, shapes and quantization an app needs to call the model."""
    runtime = interpreter(content)
    describe = lambda d: {  # noqa: E731
        "name": d["name"], "dtype": np.dtype(d["dtype"]).name, "shape": [int(s) for s in d["shape"]],
        "quantization": {"scale": float(d["quantization"][0]), "zero_point": int(d["quantization"][1])},
    }
    return {
        "inputs": [describe(d) for d in runtime.get_input_details()],
        "outputs": [describe(d) for d in runtime.get_output_details()],
    }
