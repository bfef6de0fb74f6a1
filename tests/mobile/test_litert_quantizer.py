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
    variants = quantizer_variants(content, RECIPES)  # mixed_sensitivity is pipelines.mobile.sensitivity's
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
                                            r"dynamic_wi4, weight_only_wi4, mixed_wi4_wi8, "
                                            r"mixed_sensitivity\)$"):
        quantizer_variants(float32[0], ["int2"])


def test_layer_recipe_quantizes_only_the_named_layer(float32):
    from pipelines.mobile.litert_quantizer import layer_recipe, quantize
    from pipelines.mobile.sensitivity import layer_scopes

    content = float32[0]
    layers = layer_scopes(content)
    assert [layer["weights"] for layer in layers] == [WIDTH * 64, 64 * 32, 32]
    first = len(quantize(content, layer_recipe({layers[0]["scope"]: 4})))
    assert len(content) - first > 0.8 * WIDTH * 64 * 3  # ~3.5 of 4 bytes saved per weight of that layer only
    assert len(content) - first < WIDTH * 64 * 4
    last = len(quantize(content, layer_recipe({layers[0]["scope"]: None, layers[2]["scope"]: 4})))
    assert 0 < len(content) - last < 32 * 4  # None leaves the first layer float32; the last has 32 weights


def test_sensitivity_keeps_int4_where_the_loss_is_within_the_limit(float32):
    from pipelines.mobile.litert_quantizer import layer_recipe, quantize
    from pipelines.mobile.sensitivity import choose_precision
    from pipelines.release_format.litert import predict_tflite

    content, x, keras_proba = float32
    y = (keras_proba >= 0.5).astype(np.int64)
    loose, facts = choose_precision(content, x, y, 0.5, max_loss=1.0)
    assert [layer["bits"] for layer in facts["layers"]] == [4, 4, 4]
    strict, facts = choose_precision(content, x, y, 0.5, max_loss=0.0)
    lossless = [layer["loss"] == 0 for layer in facts["layers"]]
    assert [layer["bits"] for layer in facts["layers"]] == [4 if ok else 8 for ok in lossless]
    assert not all(lossless)  # random weights: int4 moves some decisions of at least one layer
    assert len(loose) < len(strict) < len(content)
    for layer in facts["layers"]:  # what was measured is the layer alone at int4 against the float32 model
        alone = predict_tflite(quantize(content, layer_recipe({layer["scope"]: 4})), x)
        assert layer["agreement_int4_alone"] == np.mean((alone >= 0.5) == (predict_tflite(content, x) >= 0.5))
        assert layer["loss"] == 1 - layer["agreement_int4_alone"]
    assert facts["validation_rows"] == len(x) and facts["float32_validation_accuracy"] == 1.0


def test_sensitivity_without_validation_rows_is_a_one_line_error(float32):
    from pipelines.mobile.sensitivity import choose_precision

    with pytest.raises(PipelineError, match=r"^convert.litert_quantizer_recipes: mixed_sensitivity needs validation "
                                            r"rows \(the validation split is empty\)$"):
        choose_precision(float32[0], np.zeros((0, WIDTH), np.float32), np.zeros(0), 0.5, 0.005)


@pytest.mark.parametrize(("value", "message"), [
    (1.5, "Input should be less than 1 (got 1.5)"),
    (-0.1, "Input should be greater than or equal to 0 (got -0.1)")])
def test_int4_max_loss_out_of_range_is_a_one_line_error(value, message):
    from pathlib import Path

    from pipelines.core.config import load_settings

    params = Path(__file__).resolve().parents[2] / "params.yaml"
    with pytest.raises(PipelineError) as error:
        load_settings(params, overrides={"convert.int4_max_loss": value})
    assert str(error.value) == f"params.yaml: key 'convert.int4_max_loss': {message}"
