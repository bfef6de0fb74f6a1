"""Feature spec fitting and the encoding an app must reproduce on device."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from pipelines.core.config import DataConfig
from pipelines.core.errors import PipelineError
from pipelines.data.features import encode_features, encode_labels, fit_feature_spec


def config(**overrides) -> DataConfig:
    values = {"source": "t.csv", "label": "income", "positive_label": ">50K", "sensitive_features": ["sex"]}
    return DataConfig(**{**values, **overrides})


TRAIN = pd.DataFrame({
    "age": [10.0, 20.0, 30.0],
    "city": pd.array(["b", "a", "b"], dtype="string"),
    "sex": pd.array(["M", "F", "F"], dtype="string"),
    "income": pd.array([">50K", "<=50K", ">50K"], dtype="string"),
})


def test_spec_excludes_label_and_sensitive_features():
    spec = fit_feature_spec(TRAIN, config())
    assert [f.name for f in spec.numeric] == ["age"]
    assert [f.name for f in spec.categorical] == ["city"]
    assert spec.excluded == ["sex"]
    assert spec.input_names() == ["age", "city=a", "city=b"]
    assert spec.width == 3
    assert spec.label == "income" and spec.positive_label == ">50K"


def test_sensitive_features_become_inputs_when_allowed():
    spec = fit_feature_spec(TRAIN, config(sensitive_as_inputs=True))
    assert spec.input_names() == ["age", "city=a", "city=b", "sex=F", "sex=M"]
    assert spec.excluded == []
    assert spec.width == 5


def test_numeric_standardization_uses_training_mean_and_population_std():
    spec = fit_feature_spec(TRAIN, config())
    age = spec.numeric[0]
    assert age.mean == pytest.approx(20.0)
    assert age.std == pytest.approx(math.sqrt(200 / 3))
    encoded = encode_features(pd.DataFrame({"age": [20.0, 30.0, 10.0], "city": ["a", "a", "a"]}), spec)
    assert encoded.dtype == np.float32
    assert encoded[:, 0] == pytest.approx([0.0, 1.2247449, -1.2247449], abs=1e-6)


def test_a_value_outside_the_training_range_is_clamped_to_it():
    """A test row thousands of deviations out (a data-entry code) would overflow a float16 program."""
    from pipelines.data.features import fit_feature_spec_batches

    spec = fit_feature_spec(TRAIN, config())
    assert (spec.numeric[0].low, spec.numeric[0].high) == (10.0, 30.0)
    assert fit_feature_spec_batches([TRAIN.iloc[:1], TRAIN.iloc[1:]], config()).numeric[0] == spec.numeric[0]
    encoded = encode_features(pd.DataFrame({"age": [1e9, -5.0, 25.0], "city": ["a"] * 3}), spec)
    inside = encode_features(pd.DataFrame({"age": [30.0, 10.0, 25.0], "city": ["a"] * 3}), spec)
    assert encoded[:, 0].tolist() == inside[:, 0].tolist()
    assert "min(max(x, low), high)" in spec.app_contract()["recipe"]


def test_constant_numeric_column_does_not_divide_by_zero():
    train = TRAIN.assign(age=[5.0, 5.0, 5.0])
    spec = fit_feature_spec(train, config())
    assert spec.numeric[0].std == 1.0
    assert encode_features(train, spec)[:, 0].tolist() == [0.0, 0.0, 0.0]


def test_one_hot_follows_sorted_vocabulary_and_unseen_is_all_zeros():
    spec = fit_feature_spec(TRAIN, config())
    assert spec.categorical[0].vocabulary == ["a", "b"]
    rows = pd.DataFrame({"age": [20.0, 20.0, 20.0, 20.0], "city": pd.array(["b", "a", "zurich", None], dtype="string")})
    encoded = encode_features(rows, spec)
    assert encoded.shape == (4, 3)
    assert encoded[:, 1:].tolist() == [[0, 1], [1, 0], [0, 0], [0, 0]]


def test_missing_numeric_value_encodes_as_the_mean():
    spec = fit_feature_spec(TRAIN, config())
    encoded = encode_features(pd.DataFrame({"age": [np.nan], "city": ["a"]}), spec)
    assert encoded[0, 0] == 0.0


def test_extra_columns_are_ignored_and_order_is_the_specs():
    spec = fit_feature_spec(TRAIN, config())
    shuffled = TRAIN[["sex", "income", "city", "age"]].assign(extra=1)
    assert np.array_equal(encode_features(shuffled, spec), encode_features(TRAIN, spec))


def test_missing_column_is_named():
    spec = fit_feature_spec(TRAIN, config())
    with pytest.raises(PipelineError, match="features: column 'city' expected by the feature spec is missing"):
        encode_features(TRAIN.drop(columns=["city"]), spec)


def test_no_input_columns_left_is_an_error():
    with pytest.raises(PipelineError, match="no input columns left"):
        fit_feature_spec(TRAIN[["sex", "income"]], config())


def test_encode_labels_marks_the_positive_label():
    spec = fit_feature_spec(TRAIN, config())
    labels = encode_labels(TRAIN, spec)
    assert labels.dtype == np.float32
    assert labels.tolist() == [1.0, 0.0, 1.0]


def test_app_contract_carries_the_recipe_and_vocabulary():
    contract = fit_feature_spec(TRAIN, config()).app_contract()
    assert contract["input_width"] == 3
    assert contract["input_names"] == ["age", "city=a", "city=b"]
    assert contract["categorical"] == [{"name": "city", "vocabulary": ["a", "b"]}]
    assert "unseen -> zeros" in contract["recipe"]


def _mixed_rows(n: int = 50, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    age = rng.normal(40, 10, n)
    age[::7] = np.nan  # missing numbers encode as the training mean
    city = rng.choice(["a", "b", "c", "unseen"], n).astype(object)
    city[::5] = None  # missing and unseen categories encode as all zeros
    return pd.DataFrame({"age": age, "city": pd.array(city, dtype="string"),
                         "job": pd.array(rng.choice(["x", "y"], n), dtype="string")})


def test_compact_rows_expand_to_the_matrix_in_numpy_in_the_graph_and_in_chunks():
    import tensorflow as tf

    from pipelines.data.features import compact_rows, encoded_chunks, expand, expand_tensor

    train = _mixed_rows().assign(income=">50K", sex="F")
    spec = fit_feature_spec(train[train["city"] != "unseen"], config())
    rows = _mixed_rows(seed=4)
    whole = encode_features(rows, spec)
    compact = compact_rows(rows, spec)
    assert compact.width == spec.width and compact.codes.min() == -1  # an unseen value is in there
    np.testing.assert_array_equal(expand(compact.numeric, compact.codes, spec), whole)
    in_graph = expand_tensor(tf.constant(compact.numeric), tf.constant(compact.codes), list(compact.sizes))
    np.testing.assert_array_equal(in_graph.numpy(), whole)
    np.testing.assert_array_equal(np.concatenate(list(encoded_chunks(rows, spec, rows=7))), whole)
    assert [chunk.shape for chunk in encoded_chunks(rows.iloc[:0], spec)] == [(0, spec.width)]
