"""ai-edge-quantizer recipes on a tiny model's float32 flatbuffer: int4 and mixed int4/int8 variants run in LiteRT."""
from __future__ import annotations

import numpy as np
import pytest

from pipelines.core.config import TrainConfig
from pipelines.core.errors import PipelineError

WIDTH = 16


@pytest.fixture(scope="module")
def float32():
    import keras

    from pipelines.mobile.tflite import convert_float32
    from pipelines.training.train import build_model, predict_keras

    keras.utils.set_random_seed(0)
    model = build_model(WIDTH, TrainConfig(hidden_units=[64, 32]))
    x = np.random.default_rng(0).normal(size=(300, WIDTH)).astype(np.float32)
    return convert_float32(model, WIDTH), x, predict_keras(model, x)


def test_recipes_make_smaller_builtin_variants_close_to_the_float_model(float32):
    from pipelines.mobile.litert_quantizer import RECIPES, quantizer_variants
    from pipelines.mobile.pruned import precision
    from pipelines.mobile.tflite import check_builtin_ops
    from pipelines.release_format.litert import op_names, predict_tflite

    content, x, keras_proba = float32
    variants = quantizer_variants(content, RECIPES)
    assert list(variants) == ["aeq_dynamic_wi4", "aeq_weight_only_wi4", "aeq_mixed_wi4_wi8"]
    for name, flatbuffer in variants.items():
        check_builtin_ops(op_names(flatbuffer), name)
        assert len(flatbuffer) < 0.4 * len(content), name
        assert np.abs(predict_tflite(flatbuffer, x) - keras_proba).max() < 0.1, name
        assert "ai-edge-quantizer" in precision(name, {})
    assert "DEQUANTIZE" in op_names(variants["aeq_weight_only_wi4"])
    # the mixed recipe keeps the output layer at 8 bits: a few bytes more than all-int4
    assert len(variants["aeq_mixed_wi4_wi8"]) > len(variants["aeq_dynamic_wi4"])
    assert quantizer_variants(content, []) == {}


def test_unknown_recipe_is_a_one_line_error(float32):
    from pipelines.mobile.litert_quantizer import quantizer_variants

    with pytest.raises(PipelineError, match=r"^convert.litert_quantizer_recipes: unknown recipe 'int2' \(known: "
                                            r"dynamic_wi4, weight_only_wi4, mixed_wi4_wi8\)$"):
        quantizer_variants(float32[0], ["int2"])
