"""Magnitude pruning on Keras 3 weights and masks: the schedule, the masks, a pruned fine-tune of a tiny model and
its TFLite variants."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from pydantic import ValidationError

from pipelines.core.config import PruneConfig, TrainConfig
from pipelines.core.errors import PipelineError
from pipelines.mobile.prune import magnitude_mask, pruned_name, schedule

WIDTH = 16


def test_schedule_rises_as_tf_mot_polynomial_decay():
    values = [schedule(step, 100, 0.5, 0.0, 0.5) for step in range(100)]
    assert values[0] == 0.0 and values[50] == 0.5 and values[99] == 0.5
    assert all(a <= b for a, b in itertools.pairwise(values))
    assert values[25] == pytest.approx(0.5 - 0.5 * 0.5 ** 3)  # half way: target + (0 - target) x (1 - 0.5)^3
    assert schedule(10, 100, 0.8, 0.2, 0.6) == 0.0  # before begin


def test_magnitude_mask_drops_the_smallest_share():
    kernel = np.array([[0.1, -3.0, 0.2], [2.0, -0.05, 1.0]], np.float32)
    mask = magnitude_mask(kernel, 0.5)
    assert mask.tolist() == [[0, 1, 0], [1, 0, 1]]
    assert magnitude_mask(kernel, 0.0).sum() == kernel.size
    with pytest.raises(PipelineError, match=r"^convert.prune.sparsity: 1.0 must be in \[0, 1\)$"):
        magnitude_mask(kernel, 1.0)


def test_config_rejects_a_sparsity_outside_zero_one():
    with pytest.raises(ValidationError, match="sparsity 1.5 must be between 0 and 1"):
        PruneConfig(sparsity=[0.5, 1.5])
    assert PruneConfig(sparsity=[]).sparsity == []


@pytest.fixture(scope="module")
def trained():
    import keras

    from pipelines.training.train import build_model, predict_keras

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, WIDTH)).astype(np.float32)
    y = (x[:, 0] - x[:, 1] > 0).astype(np.float32)
    model = build_model(WIDTH, TrainConfig(hidden_units=[64, 32], dropout=0.0))
    model.fit(x, y, epochs=15, batch_size=64, verbose=0)
    return model, x, y, predict_keras(model, x)


def test_pruned_network_reaches_the_target_and_keeps_the_parents_answers(trained):
    from pipelines.mobile.prune import prune_model, sparsity
    from pipelines.training.train import predict_keras

    model, x, _y, parent = trained
    config = PruneConfig(epochs=4, batch_size=64, learning_rate=0.002)
    pruned, facts = prune_model(model, x, parent, 0.6, config, seed=1)
    assert facts["sparsity"] == pytest.approx(0.6, abs=0.01) and sparsity(pruned) == facts["sparsity"]
    assert sparsity(model) == 0.0  # the parent is untouched
    for layer in pruned.layers[1:]:
        zero = np.mean(np.asarray(layer.kernel) == 0)
        assert zero == pytest.approx(0.6, abs=0.01), layer.name  # every kernel pruned, not only the large one
    agreement = np.mean((predict_keras(pruned, x) >= 0.5) == (parent >= 0.5))
    assert agreement > 0.95, agreement


def test_pruned_tflite_variants_are_named_and_compress_smaller(trained):
    from pipelines.mobile.download import gzip_bytes
    from pipelines.mobile.pruned import precision, pruned_variants
    from pipelines.mobile.tflite import convert_variants

    model, x, _, _ = trained
    flatbuffers, facts = pruned_variants(model, x, WIDTH, PruneConfig(sparsity=[0.5], variants=["float32", "int8"],
                                                                      epochs=1, batch_size=128), x[:50], seed=0)
    assert list(flatbuffers) == ["pruned50_float32", "pruned50_int8"] == list(facts)
    dense = convert_variants(model, WIDTH, ["float32"], x[:50])["float32"]
    assert len(flatbuffers["pruned50_float32"]) == len(dense)  # same tensors, more zeros
    assert gzip_bytes(flatbuffers["pruned50_float32"]) < 0.8 * gzip_bytes(dense)
    assert precision("pruned50_int8", facts).endswith("50% of Dense weights zero (magnitude-pruned)")
    assert pruned_variants(model, x, WIDTH, PruneConfig(sparsity=[]), x[:50], seed=0) == ({}, {})
    assert pruned_name(0.75, "dynamic_int8") == "pruned75_dynamic_int8"
