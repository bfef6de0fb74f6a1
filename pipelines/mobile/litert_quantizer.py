"""LiteRT's own quantizer (ai-edge-quantizer): recipes the classic TFLite converter lacks, applied to the float32
flatbuffer; the variants are named aeq_<recipe> and gated like every other TFLite variant."""
from __future__ import annotations

import contextlib
import io
import re

from pipelines.core.errors import PipelineError

RECIPES = ("dynamic_wi4", "weight_only_wi4", "mixed_wi4_wi8", "mixed_sensitivity")
SENSITIVITY = "mixed_sensitivity"  # made by pipelines.mobile.sensitivity: it needs validation rows
PRECISION = {
    "dynamic_wi4": "int4 weights (per channel), activations quantized per call (ai-edge-quantizer)",
    "weight_only_wi4": "int4 weights (per channel) dequantized to float32 at load (ai-edge-quantizer)",
    "mixed_wi4_wi8": "int4 hidden-layer weights, int8 output-layer weights, dynamic activations (ai-edge-quantizer)",
    "mixed_sensitivity": "int4 weights on the layers int4 alone barely moves on validation rows, int8 on the others, "
                         "dynamic activations (ai-edge-quantizer, convert.int4_max_loss)",
}
OUTPUT_LAYER = ".*probability.*"  # the sigmoid layer's tensors (pipelines.training.train.build_model names it)


def _recipe(name: str):
    from ai_edge_quantizer import recipe, recipe_manager

    if name == "dynamic_wi4":
        return recipe.dynamic_wi4_afp32()
    if name == "weight_only_wi4":
        return recipe.weight_only_wi4_afp32()
    manager = recipe_manager.RecipeManager()  # mixed: the later, narrower regex wins for the output layer
    manager.add_dynamic_config(regex=".*", operation_name=recipe.TFLOperationName.ALL_SUPPORTED, num_bits=4)
    manager.add_dynamic_config(regex=OUTPUT_LAYER, operation_name=recipe.TFLOperationName.ALL_SUPPORTED, num_bits=8)
    return manager.get_quantization_recipe()


def layer_recipe(bits: dict[str, int | None]):
    """A recipe quantizing each op scope (ai-edge-quantizer's name of an op: its output tensor names) to its bits,
    dynamic activations; None or a scope left out stays float32."""
    from ai_edge_quantizer import recipe, recipe_manager

    manager = recipe_manager.RecipeManager()
    for scope, num_bits in bits.items():
        if num_bits is not None:
            manager.add_dynamic_config(regex=f"^{re.escape(scope)}$", num_bits=num_bits,
                                       operation_name=recipe.TFLOperationName.ALL_SUPPORTED)
    return manager.get_quantization_recipe()


def quantize(float32: bytes, recipe) -> bytes:
    """The float32 flatbuffer quantized by ai-edge-quantizer with `recipe`."""
    from ai_edge_quantizer import quantizer

    runner = quantizer.Quantizer(bytearray(float32))
    runner.load_quantization_recipe(recipe)
    with contextlib.redirect_stdout(io.StringIO()):  # it prints sizes and timings
        return bytes(runner.quantize().quantized_model)


def variant_name(recipe: str) -> str:
    return f"aeq_{recipe}"


def quantizer_variants(float32: bytes, recipes) -> dict[str, bytes]:
    """aeq_<recipe> -> flatbuffer, each fixed recipe applied by ai-edge-quantizer to the float32 model (the
    sensitivity-chosen one is pipelines.mobile.sensitivity's)."""
    unknown = [r for r in recipes if r not in RECIPES]
    if unknown:
        raise PipelineError(f"convert.litert_quantizer_recipes: unknown recipe '{unknown[0]}' (known: "
                            f"{', '.join(RECIPES)})")
    return {variant_name(name): quantize(float32, _recipe(name)) for name in recipes if name != SENSITIVITY}
