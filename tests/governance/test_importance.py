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
