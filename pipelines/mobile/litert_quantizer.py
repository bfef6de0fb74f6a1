"""LiteRT's own quantizer (ai-edge-quantizer): recipes the classic TFLite converter lacks, applied to the float32
flatbuffer; the variants are named aeq_<recipe> and gated like every other TFLite variant."""
from __future__ import annotations

import contextlib
import io

from pipelines.core.errors import PipelineError

RECIPES = ("dynamic_wi4", "weight_only_wi4", "mixed_wi4_wi8")
PRECISION = {
    "dynamic_wi4": "int4 weights (per channel), activations quantized per call (ai-edge-quantizer)",
    "weight_only_wi4": "int4 weights (per channel) dequantized to float32 at load (ai-edge-quantizer)",
    "mixed_wi4_wi8": "int4 hidden-layer weights, int8 output-layer weights, dynamic activations (ai-edge-quantizer)",
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


def variant_name(recipe: str) -> str:
    return f"aeq_{recipe}"


def quantizer_variants(float32: bytes, recipes) -> dict[str, bytes]:
    """aeq_<recipe> -> flatbuffer, each recipe applied by ai-edge-quantizer to the float32 model."""
    from ai_edge_quantizer import quantizer

    unknown = [r for r in recipes if r not in RECIPES]
    if unknown:
        raise PipelineError(f"convert.litert_quantizer_recipes: unknown recipe '{unknown[0]}' (known: "
                            f"{', '.join(RECIPES)})")
    result = {}
    for name in recipes:
        runner = quantizer.Quantizer(bytearray(float32))
        runner.load_quantization_recipe(_recipe(name))
        with contextlib.redirect_stdout(io.StringIO()):  # it prints sizes and timings
            result[variant_name(name)] = bytes(runner.quantize().quantized_model)
    return result
