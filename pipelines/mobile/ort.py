"""ONNX Runtime Mobile: the Keras network exported once to ONNX, optimized and quantized with onnxruntime's tools,
written in the ORT format the mobile packages (onnxruntime-android, onnxruntime-objc / -c on iOS) load, and run
with onnxruntime on the host.
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.core.errors import PipelineError

ONNX_VARIANTS = ("float32", "float16", "dynamic_int8", "int8")
ONNX_OPSET = 17
WEIGHT_PRECISION = {
    "float32": "float32 weights and math (graph optimized by onnxruntime)",
    "float16": "float16 weights and math, float32 input/output (Cast at the edges)",
    "dynamic_int8": "int8 weights, activations quantized per call (onnxruntime quantize_dynamic)",
    "int8": "int8 weights and activations, QDQ calibrated on training rows, float32 input/output",
}


def export_onnx(model, width: int) -> bytes:
    """The Keras network as an ONNX graph (tf2onnx from a traced tf.function; batch dimension left free)."""
    import tensorflow as tf
    import tf2onnx

    signature = [tf.TensorSpec([None, width], tf.float32, name="features")]
    proto, _ = tf2onnx.convert.from_function(tf.function(lambda x: model(x, training=False)),
                                             input_signature=signature, opset=ONNX_OPSET)
    return proto.SerializeToString()


class _Rows:
    """onnxruntime's CalibrationDataReader over representative rows, one row a call."""

    def __init__(self, name: str, rows: np.ndarray):
        self._items = iter([{name: row.reshape(1, -1).astype(np.float32)} for row in rows])

    def get_next(self):
        return next(self._items, None)


def _check(variants) -> None:
    unknown = [v for v in variants if v not in ONNX_VARIANTS]
    if unknown:
        raise PipelineError(f"convert.onnx_variants: unknown variant '{unknown[0]}' (known: "
                            f"{', '.join(ONNX_VARIANTS)})")


def onnx_variants(exported: bytes, variants, representative: np.ndarray | None = None) -> dict[str, bytes]:
    """Each named variant as ONNX bytes, from the one exported graph (shape-inferred and pre-processed once)."""
    import onnx
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    _check(variants)
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        (folder / "exported.onnx").write_bytes(exported)
        quant_pre_process(str(folder / "exported.onnx"), str(folder / "pre.onnx"), skip_symbolic_shape=True)
        result: dict[str, bytes] = {}
        for name in variants:
            target = folder / f"{name}.onnx"
            if name == "float32":
                target.write_bytes((folder / "pre.onnx").read_bytes())
            elif name == "float16":
                from onnxruntime.transformers.float16 import convert_float_to_float16

                half = convert_float_to_float16(onnx.load(str(folder / "pre.onnx")), keep_io_types=True)
                onnx.save(half, str(target))
            elif name == "dynamic_int8":
                quantize_dynamic(str(folder / "pre.onnx"), str(target), weight_type=QuantType.QInt8)
            else:
                if representative is None or not len(representative):
                    raise PipelineError("onnx int8: static quantization needs representative rows")
                input_name = onnx.load(str(folder / "pre.onnx")).graph.input[0].name
                quantize_static(str(folder / "pre.onnx"), str(target), _Rows(input_name, representative),
                                quant_format=QuantFormat.QDQ, activation_type=QuantType.QInt8,
                                weight_type=QuantType.QInt8)
            result[name] = target.read_bytes()
    return result


OPERATORS_CONFIG = "required_operators.config"  # the operators a reduced-size onnxruntime mobile build needs


def to_ort_format(onnx_models: dict[str, bytes]) -> tuple[dict[str, bytes], str]:
    """ORT-format bytes per variant, and the required-operators config, written by onnxruntime's own converter
    (what `python -m onnxruntime.tools.convert_onnx_models_to_ort` does: fixed optimizations, ORT flatbuffer)."""
    import contextlib
    import io
    import logging

    from onnxruntime.tools.convert_onnx_models_to_ort import OptimizationStyle, convert_onnx_models_to_ort

    with tempfile.TemporaryDirectory() as scratch:
        source, target = Path(scratch) / "onnx", Path(scratch) / "ort"
        source.mkdir()
        for name, content in onnx_models.items():
            (source / f"{name}.onnx").write_bytes(content)
        logging.getLogger("ort_format_model.utils").setLevel(logging.WARNING)
        with contextlib.redirect_stdout(io.StringIO()):  # the tool prints a line per model
            convert_onnx_models_to_ort(source, output_dir=target, optimization_styles=[OptimizationStyle.Fixed])
        found = {name: target / f"{name}.ort" for name in onnx_models}
        missing = [name for name, path in found.items() if not path.is_file()]
        if missing:
            raise PipelineError(f"onnxruntime convert_onnx_models_to_ort wrote no .ort file for {', '.join(missing)}")
        return {name: path.read_bytes() for name, path in found.items()}, (target / OPERATORS_CONFIG).read_text()


def session(content: bytes, threads: int = 1):
    """An onnxruntime CPU session over ONNX or ORT-format bytes (ORT format is detected from the content)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(content, options, providers=["CPUExecutionProvider"])


PREDICT_CHUNK = 65_536


def fairness_name(variant: str) -> str:
    """An ORT variant's name in the fairness report and model card, apart from the TFLite variant of that name."""
    return f"ort_{variant}"


def predict_ort(content: bytes, x: np.ndarray, threads: int = 2) -> np.ndarray:
    """Probabilities for every row through onnxruntime, PREDICT_CHUNK rows a call."""
    return ort_predictor(content, threads)(x)


def ort_predictor(content: bytes, threads: int = 2):
    """`predict_ort` as a function of the rows, over one session kept for every call (a split scored chunk by
    chunk)."""
    runtime = session(content, threads)
    name = runtime.get_inputs()[0].name

    def predict(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float32)
        parts = [np.asarray(runtime.run(None, {name: x[i:i + PREDICT_CHUNK]})[0]).reshape(-1)
                 for i in range(0, max(len(x), 1), PREDICT_CHUNK)]
        return np.concatenate(parts).astype(np.float32) if len(x) else np.zeros(0, np.float32)

    return predict


def ort_latency(content: bytes, x: np.ndarray, config) -> dict[str, Any]:
    """Single-thread onnxruntime: per-sample latency (run on one row) and batch throughput, as litert_latency."""
    from pipelines.mobile.latency import summarize, time_calls

    runtime = session(content, 1)
    name = runtime.get_inputs()[0].name
    rows = [np.asarray(x[i:i + 1], np.float32) for i in range(min(len(x), config.runs))]
    single = summarize(time_calls(lambda row: runtime.run(None, {name: row}), rows, config.runs, config.warmup))
    batch = np.asarray(x[np.arange(config.batch_size) % len(x)], np.float32)
    batch_ns = time_calls(lambda rows: runtime.run(None, {name: rows}), [batch], config.batch_repeats, warmup=2)
    return {**single, "warmup": config.warmup, "threads": 1, "batch_size": config.batch_size,
            "batch_rows_per_s": float(config.batch_size / (np.median(batch_ns) / 1e9))}


def op_types(content: bytes) -> list[str]:
    """Distinct operator types of an ONNX model, in graph order."""
    import onnx

    seen: list[str] = []
    for node in onnx.load_from_string(content).graph.node:
        if node.op_type not in seen:
            seen.append(node.op_type)
    return seen
