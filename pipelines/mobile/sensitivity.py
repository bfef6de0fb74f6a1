"""Per-layer mixed precision chosen by sensitivity (ai-edge-quantizer): each weight layer is quantized alone to int4
(the others float32) and scored on the validation rows; a layer keeps int4 when that costs at most
`convert.int4_max_loss` of agreement with the float32 model, else it gets int8."""
from __future__ import annotations

from typing import Any

import numpy as np

from pipelines.core.errors import PipelineError
from pipelines.mobile.litert_quantizer import layer_recipe, quantize

LAYER_OPS = ("FULLY_CONNECTED",)  # the network's weight layers (Keras Dense -> TFLite FULLY_CONNECTED)


def layer_scopes(float32: bytes) -> list[dict[str, Any]]:
    """Each weight layer of the flatbuffer in graph order: its op scope (as ai-edge-quantizer matches it) and its
    number of weights."""
    from ai_edge_quantizer.utils import tfl_flatbuffer_utils as tfl

    model = tfl.read_model(bytearray(float32))
    names = [getattr(tfl.TFL_OP_CODE_TO_NAME.get(code.builtinCode), "value", None) for code in model.operatorCodes]
    layers = []
    for op in model.subgraphs[0].operators:
        if names[op.opcodeIndex] not in LAYER_OPS:
            continue
        weights = model.subgraphs[0].tensors[op.inputs[1]]
        layers.append({"scope": tfl.get_op_scope(op, model.subgraphs[0].tensors),
                       "weights": int(np.prod(weights.shape))})
    return layers


def choose_precision(float32: bytes, x_val: np.ndarray, y_val: np.ndarray, threshold: float,
                     max_loss: float) -> tuple[bytes, dict[str, Any]]:
    """The mixed int4/int8 flatbuffer and what was measured: per layer, the validation agreement with the float32
    model and the accuracy change when that layer alone is int4, and the bits it got."""
    from pipelines.release_format.litert import predict_tflite
    from pipelines.training.metrics import agreement

    if len(x_val) == 0:
        raise PipelineError("convert.litert_quantizer_recipes: mixed_sensitivity needs validation rows (the "
                            "validation split is empty)")
    layers = layer_scopes(float32)
    reference = predict_tflite(float32, x_val)
    accuracy = float(np.mean((reference >= threshold) == (y_val > 0.5)))
    bits: dict[str, int | None] = {}
    for layer in layers:
        proba = predict_tflite(quantize(float32, layer_recipe({layer["scope"]: 4})), x_val)
        layer["agreement_int4_alone"] = agreement(proba, reference, threshold)
        layer["accuracy_change_int4_alone"] = float(np.mean((proba >= threshold) == (y_val > 0.5))) - accuracy
        layer["loss"] = 1.0 - layer["agreement_int4_alone"]
        layer["bits"] = 4 if layer["loss"] <= max_loss else 8
        bits[layer["scope"]] = layer["bits"]
    facts = {"max_loss": max_loss, "validation_rows": len(x_val), "float32_validation_accuracy": accuracy,
             "loss": "1 - agreement with the float32 model on the validation rows, that layer alone int4",
             "layers": layers}
    return quantize(float32, layer_recipe(bits)), facts
