"""Core ML conversion (ML Program, float16) and a spec check that runs on any OS.

Core ML *prediction* needs macOS; on Linux we check the spec (inputs, outputs, precision, target),
and numeric parity with TFLite is tested on macOS only.
"""
from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

INPUT_NAME = "features"
OUTPUT_NAME = "probability"


def convert_coreml(model, width: int, deployment_target: str):
    """Float16 ML Program with a float32 [1, width] input named `features`."""
    import coremltools as ct
    import numpy as np
    import tensorflow as tf

    concrete = tf.function(model).get_concrete_function(tf.TensorSpec([1, width], tf.float32))
    mlmodel = ct.convert(
        [concrete],
        source="tensorflow",
        convert_to="mlprogram",
        inputs=[ct.TensorType(shape=(1, width), dtype=np.float32)],
        outputs=[ct.TensorType(dtype=np.float32)],
        compute_precision=ct.precision.FLOAT16,
        minimum_deployment_target=getattr(ct.target, deployment_target),
    )
    spec = mlmodel.get_spec()
    ct.utils.rename_feature(spec, spec.description.input[0].name, INPUT_NAME)
    ct.utils.rename_feature(spec, spec.description.output[0].name, OUTPUT_NAME)
    return ct.models.MLModel(spec, weights_dir=mlmodel.weights_dir, skip_model_load=True)


_ARRAY_TYPES = {65568: "FLOAT32", 65552: "FLOAT16", 65600: "DOUBLE", 131104: "INT32"}


def _feature(description) -> dict[str, Any]:
    array = description.type.multiArrayType
    return {"name": description.name, "shape": [int(s) for s in array.shape],
            "dtype": _ARRAY_TYPES.get(array.dataType, str(array.dataType))}


def spec_summary(package: Path) -> dict[str, Any]:
    """What the .mlpackage declares: I/O, op counts, weight precision, deployment target."""
    import coremltools as ct

    mlmodel = ct.models.MLModel(str(package), skip_model_load=True)
    spec = mlmodel.get_spec()
    ops: dict[str, int] = {}
    precisions: set[str] = set()
    for function in spec.mlProgram.functions.values():
        for block in function.block_specializations.values():
            for op in block.operations:
                ops[op.type] = ops.get(op.type, 0) + 1
                for value in op.attributes.values():
                    if value.type.HasField("tensorType"):
                        precisions.add(ct.proto.MIL_pb2.DataType.Name(value.type.tensorType.dataType))
    return {
        "specification_version": int(spec.specificationVersion),
        "inputs": [_feature(d) for d in spec.description.input],
        "outputs": [_feature(d) for d in spec.description.output],
        "op_counts": dict(sorted(ops.items())),
        "op_total": sum(ops.values()),
        "constant_precisions": sorted(p for p in precisions if p.startswith(("FLOAT", "INT", "UINT"))),
        "prediction_checked": False,
        "prediction_note": (
            "Core ML prediction runs on macOS only; this host "
            f"({platform.system()}) checked the spec, not numbers. Parity is tested on macOS."
        ),
    }
