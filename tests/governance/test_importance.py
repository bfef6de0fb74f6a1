"""Permutation importance: the columns a model uses lose accuracy when shuffled, the others lose none."""
from __future__ import annotations

import numpy as np
import pandas as pd

from pipelines.core.config import DataConfig
from pipelines.data.features import fit_feature_spec
from pipelines.governance.importance import importance_table, permutation_importance

DATA = DataConfig(source="x.csv", label="y", positive_label="yes", sensitive_features=["sex"])


def test_only_the_column_the_model_reads_matters():
    rng = np.random.default_rng(0)
    n = 400
    frame = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "c": rng.choice(["u", "v"], size=n),
                          "sex": rng.choice(["F", "M"], size=n)})
    frame["y"] = np.where(frame["a"] > 0, "yes", "no")
    spec = fit_feature_spec(frame, DATA)
    column_a = [f.name for f in spec.numeric].index("a")

    def predict(x: np.ndarray) -> np.ndarray:  # a model that reads only column a
        return (x[:, column_a] > (0 - spec.numeric[column_a].mean) / spec.numeric[column_a].std).astype(np.float32)

    result = permutation_importance(predict, frame, spec, 0.5, repeats=3, seed=0)
    assert result["baseline_accuracy"] == 1.0
    ranked = [c["column"] for c in result["columns"]]
    assert ranked[0] == "a" and set(ranked) == {"a", "b", "c"}  # sex is not an input
    drops = {c["column"]: c["mean_accuracy_drop"] for c in result["columns"]}
    assert 0.3 < drops["a"] < 0.7  # shuffled, about half the rows flip
    assert drops["b"] == 0.0 and drops["c"] == 0.0
    assert importance_table(result).splitlines()[2].startswith("| a |")


def _reencoded_importance(predict, frame, spec, threshold, repeats, seed):
    """The plain recipe: shuffle the raw column, encode the whole frame again (what permutation_importance skips)."""
    from pipelines.data.features import encode_features, encode_labels

    y = encode_labels(frame, spec).astype(int)
    baseline = float((((predict(encode_features(frame, spec)) >= threshold).astype(int)) == y).mean())
    rng = np.random.default_rng(seed)
    drops = {}
    for column in [f.name for f in [*spec.numeric, *spec.categorical]]:
        drops[column] = []
        for _ in range(repeats):
            shuffled = frame.copy()
            shuffled[column] = rng.permutation(frame[column].to_numpy())
            accuracy = float((((predict(encode_features(shuffled, spec)) >= threshold).astype(int)) == y).mean())
            drops[column].append(baseline - accuracy)
    return baseline, drops


def test_shuffling_encoded_blocks_equals_re_encoding_shuffled_columns():
    """Adult rows with missing numbers, missing and unseen categories: the same drops as re-encoding every shuffle."""
    import gzip

    from tests.conftest import ADULT

    names = ["age", "workclass", "fnlwgt", "education", "education_num", "marital_status", "occupation",
             "relationship", "race", "sex", "capital_gain", "capital_loss", "hours_per_week", "native_country",
             "income"]
    with gzip.open(ADULT / "adult.data.gz", "rt") as handle:
        frame = pd.read_csv(handle, names=names, skipinitialspace=True, na_values="?", nrows=1200)
    frame["income"] = np.where(frame["income"] == ">50K", "yes", "no")
    config = DataConfig(source="x.csv", label="income", positive_label="yes", sensitive_features=["sex", "race"])
    spec = fit_feature_spec(frame.iloc[:800], config)
    frame = frame.iloc[800:].reset_index(drop=True)
    frame["workclass"] = frame["workclass"].astype("string")  # pandas string dtype, as the pipeline's splits
    frame.loc[::7, "age"] = np.nan
    frame.loc[::11, "occupation"] = "Astronaut"  # not in the vocabulary: all zeros
    assert frame["native_country"].isna().any()
    weights = np.random.default_rng(1).normal(size=spec.width)

    def predict(x: np.ndarray) -> np.ndarray:  # a fixed linear model over every encoded input
        return (1 / (1 + np.exp(-(x @ weights)))).astype(np.float32)

    result = permutation_importance(predict, frame, spec, 0.5, repeats=3, seed=7)
    baseline, drops = _reencoded_importance(predict, frame, spec, 0.5, repeats=3, seed=7)
    assert result["baseline_accuracy"] == baseline
    for column in result["columns"]:
        assert column["drops"] == [round(d, 6) for d in drops[column["column"]]]
        assert column["mean_accuracy_drop"] == float(np.mean(drops[column["column"]]))
    assert any(d != 0 for values in drops.values() for d in values)
