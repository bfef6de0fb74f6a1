"""A split scored chunk by chunk (pipelines.training.scoring): the labels, probabilities and group codes, and so every
figure (accuracy, AUC, demographic parity and equalized odds differences with their bootstrap intervals, each
variant's per-group change), are exactly those of the whole frame at once."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.core.config import DataConfig
from pipelines.data.features import encode_features, encode_labels, fit_feature_spec
from pipelines.data.split_file import SplitFile
from pipelines.training import scoring
from pipelines.training.metrics import (
    classification_metrics,
    group_codes,
    group_metrics,
    merge_group_codes,
    quantization_effects,
)

DATA = DataConfig(source="x.csv", label="income", positive_label=">50K", sensitive_features=["sex", "race"])
OPTIONS = {"intersection": True, "min_group_size": 20, "n_boot": 50, "confidence": 0.9, "seed": 3}


def _frame(n: int = 3000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    age = rng.normal(40, 10, n).round()
    race = rng.choice(["White", "Black", "Asian", "Other"], n, p=[0.7, 0.2, 0.08, 0.02])
    frame = pd.DataFrame({"age": age, "hours": rng.normal(40, 5, n), "sex": rng.choice(["Female", "Male"], n),
                          "race": race, "income": np.where(age + rng.normal(0, 8, n) > 45, ">50K", "<=50K")})
    frame.loc[frame.index % 211 == 7, "race"] = None  # a missing value is its own group
    return frame


def _model(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-(x @ np.linspace(-1.0, 1.0, x.shape[1]))))


def test_chunked_group_codes_give_the_figures_of_the_whole_frame():
    frame = _frame()
    rng = np.random.default_rng(1)
    y, proba, other = (frame["income"] == ">50K").to_numpy(float), rng.random(len(frame)), rng.random(len(frame))
    groups = frame[["sex", "race"]]
    parts = [group_codes(groups.iloc[i:i + 170], intersection=True) for i in range(0, len(frame), 170)]
    codes = merge_group_codes(parts)
    assert group_metrics(y, proba, codes, 0.5, **OPTIONS) == group_metrics(y, proba, groups, 0.5, **OPTIONS)
    assert quantization_effects(y, proba, other, codes, 0.5, **OPTIONS) == \
        quantization_effects(y, proba, other, groups, 0.5, **OPTIONS)


def test_a_split_file_scores_as_the_whole_frame(tmp_path, monkeypatch):
    frame = _frame()
    path = tmp_path / "test.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=700)
    split = SplitFile.open(path, batch_rows=256)  # batches of 256 rows, cut at every row group
    spec = fit_feature_spec(frame, DATA)
    monkeypatch.setattr(scoring, "CHUNK", 300)  # a frame in slices of 300 rows
    for rows in (split, frame):
        scored = scoring.score(rows, spec, ["sex", "race"], {"m": _model}, head_rows=10)
        x, y = encode_features(frame, spec), encode_labels(frame, spec)
        np.testing.assert_array_equal(scored.y, y)
        np.testing.assert_array_equal(scored.probas["m"], _model(x))
        np.testing.assert_array_equal(scored.head, x[:10])
        assert classification_metrics(scored.y, scored.probas["m"], 0.5) == classification_metrics(y, _model(x), 0.5)
        assert group_metrics(scored.y, scored.probas["m"], scored.groups, 0.5, **OPTIONS) == \
            group_metrics(y, _model(x), frame[["sex", "race"]], 0.5, **OPTIONS)
        assert group_metrics(y, _model(x), scored.codes(["sex"]), 0.5) == group_metrics(y, _model(x), frame[["sex"]], 0.5)
        labels_only = scoring.score(rows, spec, ["race"], {})
        np.testing.assert_array_equal(labels_only.y, y)
        assert list(labels_only.frame(["race"])["race"].astype("string").fillna("(missing)")) == \
            list(frame["race"].astype("string").fillna("(missing)"))


def test_a_bounded_sample_is_every_row_of_a_frame_and_at_most_the_limit_of_a_file(tmp_path):
    frame = _frame(1000)
    path = tmp_path / "train.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=300)
    split = SplitFile.open(path, batch_rows=100)
    assert scoring.bounded_sample(frame, 10, 0) is frame
    sample = scoring.bounded_sample(split, 250, 0)
    assert len(sample) == 250 and sample.index.is_monotonic_increasing
    pd.testing.assert_frame_equal(sample, frame.iloc[sample.index])
    assert len(scoring.bounded_sample(split, 5000, 0)) == 1000


def test_a_file_sample_is_the_frames_pandas_sample(tmp_path):
    frame = _frame(1000)
    path = tmp_path / "test.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=300)
    split = SplitFile.open(path, batch_rows=100)
    for n in (50, 5000):
        pd.testing.assert_frame_equal(scoring.sample_rows(split, n, 7), frame.sample(min(n, 1000), random_state=7))
        assert scoring.sample_rows(frame, n, 7).equals(frame.sample(min(n, 1000), random_state=7))


def test_each_columns_groups_are_read_chunk_by_chunk(tmp_path):
    frame = _frame(1000)
    path = tmp_path / "train.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=300)
    expected = {"race": ["(missing)", "Asian", "Black", "Other", "White"], "sex": ["Female", "Male"]}
    assert scoring.group_values(SplitFile.open(path, batch_rows=100), ["race", "sex"]) == expected
    assert scoring.group_values(frame, ["race", "sex"]) == expected
