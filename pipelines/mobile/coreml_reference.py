"""A numpy reference run of a Core ML ML Program, so every compressed variant is scored on any OS.

Core ML itself predicts only on macOS. To gate the compressed variants on Linux too, this walks the
program's operations in order: compressed weights are materialized exactly as coremltools defines them
(LUT, affine, blockwise), and every op's result is rounded to the dtype the program declares, so a
float16 program carries float16 activations (accumulation is float32; Apple hardware may differ in the
last bits). Only the ops an MLP lowers to are supported; others raise. The macOS parity test compares
this reference with real Core ML predictions.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from pipelines.core.errors import PipelineError

_UNARY: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "relu": lambda x: np.maximum(x, 0),
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "tanh": np.tanh,
    "identity": lambda x: x,
}
_BINARY: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "real_div": np.divide,
    "maximum": np.maximum, "minimum": np.minimum,
}
_CAST = {"fp16": np.float16, "fp32": np.float32}


def load_program(package: Path):
    """The main function of a saved .mlpackage as a coremltools MIL function."""
    import coremltools as ct
    from coremltools.converters.mil.frontend.milproto.load import load as milproto_load

    mlmodel = ct.models.MLModel(str(package), skip_model_load=True)
    spec = mlmodel.get_spec()
    program = milproto_load(spec, specification_version=spec.specificationVersion, file_weights_dir=mlmodel.weights_dir)
    return program.functions["main"]


def _run_op(op, value: Callable[[str], np.ndarray]) -> np.ndarray:
    kind = op.op_type
    if kind == "const":
        return np.asarray(op.outputs[0].val)
    if kind.startswith("constexpr_"):
        return np.asarray(op.materialized_val_inference())
    if kind == "cast":
        return value(op.x.name).astype(np.float32)
    if kind == "linear":
        result = value(op.x.name).astype(np.float32) @ value(op.weight.name).astype(np.float32).T
        return result + value(op.bias.name).astype(np.float32) if op.bias is not None else result
    if kind == "matmul":
        x, y = value(op.x.name).astype(np.float32), value(op.y.name).astype(np.float32)
        x = np.swapaxes(x, -1, -2) if op.transpose_x.val else x
        y = np.swapaxes(y, -1, -2) if op.transpose_y.val else y
        return x @ y
    if kind in _UNARY:
        return _UNARY[kind](value(op.x.name).astype(np.float32))
    if kind in _BINARY:
        return _BINARY[kind](value(op.x.name).astype(np.float32), value(op.y.name).astype(np.float32))
    raise PipelineError(f"Core ML reference run: op '{kind}' is not supported (Core ML prediction needs macOS)")


CHUNK = 65_536  # rows run as one batch: every op's result for the batch is held until the end


def reference_predict(package: Path, x: np.ndarray) -> np.ndarray:
    """The program's single output for every row of `x` (up to CHUNK rows as one batch), as float32."""
    return reference_predictor(package)(x)


def reference_predictor(package: Path):
    """`reference_predict` as a function of the rows, the program loaded once (a split scored chunk by chunk)."""
    function = load_program(package)
    return lambda x: np.concatenate([_run_program(function, x[start:start + CHUNK])
                                     for start in range(0, max(len(x), 1), CHUNK)])


def _run_program(function, x: np.ndarray) -> np.ndarray:
    from coremltools.converters.mil.mil import types

    (input_name, input_var), = function.inputs.items()
    values: dict[str, np.ndarray] = {input_name: x.astype(types.nptype_from_builtin(input_var.dtype))}
    for op in function.operations:
        if op.op_type == "const" and not isinstance(op.outputs[0].val, np.ndarray | np.generic):
            continue  # names, dtypes and flags, read by the op that uses them
        result = _run_op(op, values.__getitem__)
        if op.op_type == "cast":
            result = result.astype(_CAST[op.dtype.val])
        elif not op.op_type.startswith(("const", "constexpr_")):
            result = result.astype(types.nptype_from_builtin(op.outputs[0].dtype))
        values[op.outputs[0].name] = result
    (output,) = function.outputs
    return values[output.name].astype(np.float32).reshape(len(x), -1)[:, 0]
