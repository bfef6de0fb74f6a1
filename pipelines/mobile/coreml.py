"""Core ML conversion (float16 ML Program), weight compression variants, and a spec check on any OS.

Core ML *prediction* needs macOS; on Linux we check the spec (inputs, outputs, precision, target) and
score each variant with a numpy run of its program (pipelines/coreml_reference.py). Parity of real
Core ML predictions with the TFLite float model is tested on macOS only (tests/pipelines/test_coreml_parity.py).
"""
from __future__ import annotations

import gc
import platform
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pipelines.core.errors import PipelineError

INPUT_NAME = "features"
OUTPUT_NAME = "probability"
COREML_VARIANTS = ("float16", "linear8", "palette6", "palette4")
WEIGHT_PRECISION = {  # what each variant stores; every variant computes in float16
    "float16": "float16 weights",
    "linear8": "int8 weights, linear symmetric per output channel",
    "palette6": "6-bit palette (64-entry k-means LUT per tensor)",
    "palette4": "4-bit palette (16-entry k-means LUT per tensor)",
}
SPEC_VERSION_TARGET = {5: "iOS14", 6: "iOS15", 7: "iOS16", 8: "iOS17", 9: "iOS18"}


@contextmanager
def _collections_skip_older_objects() -> Iterator[None]:
    """Full garbage collections inside the block walk only the objects created in it.

    ct.convert runs gc.collect() three times. With TensorFlow, Keras, Dagster and MLflow loaded a full
    collection walks millions of objects (~1 s each after training); the conversion's garbage is among
    the objects it creates. gc.freeze moves every object that exists now to the permanent generation for
    the block (they stay alive and are collectable again after it); the conversion and its output are
    unchanged. A caller that already froze objects (a pre-fork server) is left as it is.
    """
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def save_package(mlmodel, target: Path) -> None:
    """Save an ML Program to `target` and remove the temporary .mlpackage coremltools made for it.

    coremltools keeps every ML Program built in memory (conversion, compression) in a folder of the system temp
    folder and removes it only at interpreter exit (atexit): a long-lived process (the Dagster code server, a
    scheduled run) kept five per run, and a process that ends without atexit left them for good.
    """
    mlmodel.save(str(target))
    discard(mlmodel)


def discard(mlmodel) -> None:
    """Remove the temporary package of an in-memory ML Program (nothing for one loaded from a saved package)."""
    if getattr(mlmodel, "is_temp_package", False) and mlmodel.package_path:
        shutil.rmtree(mlmodel.package_path, ignore_errors=True)


def convert_coreml(model, width: int, deployment_target: str):
    """Float16 ML Program with a float32 [1, width] input named `features`."""
    import coremltools as ct
    import numpy as np
    import tensorflow as tf

    concrete = tf.function(model).get_concrete_function(tf.TensorSpec([1, width], tf.float32))
    with _collections_skip_older_objects():
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
    renamed = ct.models.MLModel(spec, weights_dir=mlmodel.weights_dir, skip_model_load=True)  # copies the weights
    discard(mlmodel)
    return renamed


def compress(mlmodel, variant: str, weight_threshold: int):
    """A compressed copy of the float16 ML Program (coremltools.optimize.coreml, post-training, data-free).

    Weight tensors with fewer than `weight_threshold` elements stay float16 (their bytes are negligible).
    """
    import coremltools.optimize.coreml as cto

    if variant == "float16":
        return mlmodel
    if variant == "linear8":
        op = cto.OpLinearQuantizerConfig(mode="linear_symmetric", dtype="int8", granularity="per_channel",
                                         weight_threshold=weight_threshold)
        return cto.linear_quantize_weights(mlmodel, cto.OptimizationConfig(global_config=op))
    if variant in ("palette6", "palette4"):
        op = cto.OpPalettizerConfig(mode="kmeans", nbits=int(variant[-1]), granularity="per_tensor",
                                    weight_threshold=weight_threshold)
        return cto.palettize_weights(mlmodel, cto.OptimizationConfig(global_config=op))
    raise PipelineError(f"convert.coreml_variants: unknown variant '{variant}' (known: {', '.join(COREML_VARIANTS)})")


def package_size(package: Path) -> int:
    """Bytes of every file in an .mlpackage (what the app bundle grows by, before compression)."""
    return sum(p.stat().st_size for p in Path(package).rglob("*") if p.is_file())


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
    compression = sorted(op for op in ops if op.startswith("constexpr_"))
    return {
        "specification_version": int(spec.specificationVersion),
        "deployment_target": SPEC_VERSION_TARGET.get(int(spec.specificationVersion), "unknown"),
        "compressed_weight_ops": {op: ops[op] for op in compression},
        "inputs": [_feature(d) for d in spec.description.input],
        "outputs": [_feature(d) for d in spec.description.output],
        "op_counts": dict(sorted(ops.items())),
        "op_total": sum(ops.values()),
        "constant_precisions": sorted(p for p in precisions if p.startswith(("FLOAT", "INT", "UINT"))),
        "prediction_checked": False,
        "prediction_note": (
            "Core ML prediction runs on macOS only; this host "
            f"({platform.system()}) checked the spec and scored the program with a numpy reference run "
            "(float16 activations). Parity of real Core ML predictions is tested on macOS."
        ),
    }
