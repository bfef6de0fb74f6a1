"""Every Core ML variant built from a tiny Keras model: spec facts on any OS, and the numpy reference run."""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest

from pipelines.core.config import ConvertConfig, TrainConfig

WIDTH = 16
THRESHOLD = 512  # compress the 16 x 64 tensor; the 64-weight output layer stays float16
LEFT_BEHIND: list[Path] = []  # temporary .mlpackage folders the fixture's conversions left in the temp folder


def _temp_packages() -> set[Path]:
    return set(Path(tempfile.gettempdir()).glob("*.mlpackage"))


@pytest.fixture(scope="module")
def packages(tmp_path_factory) -> tuple[dict[str, Path], np.ndarray, np.ndarray]:
    import coremltools as ct
    import keras

    from pipelines.mobile.coreml import COREML_VARIANTS, compress, convert_coreml, save_package
    from pipelines.training.train import build_model, predict_keras

    keras.utils.set_random_seed(0)
    model = build_model(WIDTH, TrainConfig(hidden_units=[64], epochs=1))
    rng = np.random.default_rng(0)
    for layer in [each for each in model.layers[1:] if each.get_weights()]:  # non-zero biases, so the program
        # keeps its `linear` ops with bias (the dropout layer has no weights and vanishes at inference)
        kernel, bias = layer.get_weights()
        layer.set_weights([kernel, rng.normal(scale=0.1, size=bias.shape).astype(np.float32)])
    x = np.random.default_rng(1).normal(size=(200, WIDTH)).astype(np.float32)
    folder = tmp_path_factory.mktemp("coreml")
    float16 = folder / "model_float16.mlpackage"
    before = _temp_packages()
    save_package(convert_coreml(model, WIDTH, "iOS16"), float16)
    base = ct.models.MLModel(str(float16), skip_model_load=True)
    paths = {"float16": float16}
    for name in COREML_VARIANTS[1:]:
        paths[name] = folder / f"model_{name}.mlpackage"
        save_package(compress(base, name, THRESHOLD), paths[name])
    LEFT_BEHIND.extend(sorted(_temp_packages() - before))
    return paths, x, predict_keras(model, x)


def test_conversion_and_compression_leave_no_temporary_package_behind(packages):
    # coremltools removes its in-memory programs' packages only at interpreter exit; save_package removes them
    assert all(path.is_dir() for path in packages[0].values())
    assert LEFT_BEHIND == []


COMPRESSION_OP = {"float16": None, "linear8": "constexpr_affine_dequantize",
                  "palette6": "constexpr_lut_to_dense", "palette4": "constexpr_lut_to_dense"}
TOLERANCE = {"float16": 5e-3, "linear8": 0.02, "palette6": 0.03, "palette4": 0.08}


@pytest.mark.parametrize("name", list(COMPRESSION_OP))
def test_each_variant_declares_its_spec_and_scores_close_to_keras(packages, name):
    from pipelines.mobile.coreml import package_size, spec_summary
    from pipelines.mobile.coreml_reference import reference_predict

    paths, x, expected = packages
    summary = spec_summary(paths[name])
    assert summary["deployment_target"] == "iOS16" and summary["specification_version"] == 7
    assert summary["inputs"] == [{"name": "features", "shape": [1, WIDTH], "dtype": "FLOAT32"}]
    assert summary["outputs"][0]["name"] == "probability"
    assert summary["op_counts"].get("linear", 0) == 2 and summary["op_total"] == sum(summary["op_counts"].values())
    assert "FLOAT16" in summary["constant_precisions"]
    op = COMPRESSION_OP[name]
    assert list(summary["compressed_weight_ops"]) == ([op] if op else [])
    assert "macOS" in summary["prediction_note"]
    assert package_size(paths[name]) > 0
    proba = reference_predict(paths[name], x)
    assert proba.shape == (len(x),) and proba.dtype == np.float32
    np.testing.assert_allclose(proba, expected, atol=TOLERANCE[name])


def test_reference_run_leaves_its_input_alone_and_repeats_exactly(packages):
    """Float32 values are used without copies inside the run; the caller's rows are never written."""
    from pipelines.mobile.coreml_reference import reference_predict

    paths, x, _ = packages
    before = x.copy()
    for name in ("float16", "palette4"):
        first = reference_predict(paths[name], x)
        np.testing.assert_array_equal(x, before)
        assert not np.shares_memory(first, x)
        np.testing.assert_array_equal(reference_predict(paths[name], x), first)


def test_conversion_gc_freeze_is_scoped(monkeypatch):
    """The conversion's collections skip older objects only inside the block; an outer freeze is kept."""
    import gc

    from pipelines.mobile.coreml import _collections_skip_older_objects

    gc.unfreeze()  # a library loaded by an earlier test may have frozen its objects (only a GC hint)
    assert gc.get_freeze_count() == 0
    with _collections_skip_older_objects():
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0
    with pytest.raises(RuntimeError), _collections_skip_older_objects():
        raise RuntimeError("conversion failed")
    assert gc.get_freeze_count() == 0
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        with _collections_skip_older_objects():
            pass
        # still frozen, and nothing newly frozen (frozen objects freed meanwhile leave the count lower)
        assert 0 < gc.get_freeze_count() <= frozen
    finally:
        gc.unfreeze()


def test_compressed_variants_are_smaller(packages):
    from pipelines.mobile.coreml import package_size

    paths, _, _ = packages
    size = {name: package_size(path) for name, path in paths.items()}
    assert size["palette4"] < size["palette6"] < size["linear8"] < size["float16"]


def test_compression_needs_an_ios16_target():
    with pytest.raises(ValueError, match="need coreml_minimum_deployment_target iOS16 or later"):
        ConvertConfig(coreml_minimum_deployment_target="iOS15")
    assert ConvertConfig(coreml_minimum_deployment_target="iOS15", coreml_variants=["float16"]).coreml_variants == ["float16"]


def test_reference_run_rejects_ops_it_does_not_know(packages, monkeypatch):
    from pipelines.core.errors import PipelineError
    from pipelines.mobile import coreml_reference

    paths, x, _ = packages
    monkeypatch.delitem(coreml_reference._UNARY, "relu")
    with pytest.raises(PipelineError, match="op 'relu' is not supported"):
        coreml_reference.reference_predict(paths["float16"], x)


def test_reference_run_follows_matmul_programs(tmp_path):
    """An untrained model (zero biases) lowers to matmul without add; the reference run handles that too."""
    import keras

    from pipelines.mobile.coreml import convert_coreml, spec_summary
    from pipelines.mobile.coreml_reference import reference_predict
    from pipelines.training.train import build_model, predict_keras

    keras.utils.set_random_seed(0)
    model = build_model(4, TrainConfig(hidden_units=[8], epochs=1))
    convert_coreml(model, 4, "iOS17").save(str(tmp_path / "m.mlpackage"))
    summary = spec_summary(tmp_path / "m.mlpackage")
    assert summary["op_counts"].get("matmul") == 2 and summary["deployment_target"] == "iOS17"
    x = np.random.default_rng(2).normal(size=(50, 4)).astype(np.float32)
    np.testing.assert_allclose(reference_predict(tmp_path / "m.mlpackage", x), predict_keras(model, x), atol=5e-3)
