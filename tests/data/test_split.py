"""Train / validation / test splits: stratified, seeded, disjoint; the shipped test file wins."""
from __future__ import annotations

import pandas as pd
import pytest

from pipelines.core.config import DataConfig, SplitConfig
from pipelines.data.load import ORIGIN
from pipelines.data.split import SPLITS, split_dataset

DATA = DataConfig(source="t.csv", label="income", positive_label="yes", sensitive_features=["sex"])


def frame(rows: int = 100, positives: int = 40) -> pd.DataFrame:
    return pd.DataFrame({
        "id": range(rows),
        "sex": ["M", "F"] * (rows // 2),
        "income": ["yes"] * positives + ["no"] * (rows - positives),
    })


def ids(part: pd.DataFrame) -> set[int]:
    return set(part["id"])


def test_sizes_stratification_and_no_overlap():
    parts = split_dataset(frame(), DATA, SplitConfig(test_size=0.2, validation_size=0.25, seed=1))
    assert tuple(parts) == SPLITS
    assert [len(parts[s]) for s in SPLITS] == [60, 20, 20]
    for name in SPLITS:
        assert (parts[name]["income"] == "yes").mean() == pytest.approx(0.4), name
        assert list(parts[name].index) == list(range(len(parts[name])))
    train, validation, test = (ids(parts[s]) for s in SPLITS)
    assert not train & validation and not train & test and not validation & test
    assert train | validation | test == set(range(100))


def test_same_seed_same_split_other_seed_other_split():
    first = split_dataset(frame(), DATA, SplitConfig(seed=7))
    again = split_dataset(frame(), DATA, SplitConfig(seed=7))
    other = split_dataset(frame(), DATA, SplitConfig(seed=8))
    for name in SPLITS:
        pd.testing.assert_frame_equal(first[name], again[name])
    assert ids(first["test"]) != ids(other["test"])


def test_shipped_test_rows_become_the_test_split_and_origin_is_dropped():
    data = frame(100).assign(**{ORIGIN: ["source"] * 80 + ["test_source"] * 20})
    data.loc[80:, "income"] = ["yes"] * 5 + ["no"] * 15
    parts = split_dataset(data, DATA, SplitConfig(validation_size=0.25, seed=3))
    assert ids(parts["test"]) == set(range(80, 100))
    assert ids(parts["train"]) | ids(parts["validation"]) == set(range(80))
    assert not ids(parts["train"]) & ids(parts["validation"])
    assert len(parts["validation"]) == 20
    for name in SPLITS:
        assert ORIGIN not in parts[name].columns, name


def test_origin_without_test_rows_falls_back_to_a_carved_test_split():
    data = frame(100).assign(**{ORIGIN: "source"})
    parts = split_dataset(data, DATA, SplitConfig(test_size=0.2, seed=3))
    assert len(parts["test"]) == 20
    assert all(ORIGIN not in parts[s].columns for s in SPLITS)


@pytest.mark.parametrize("shipped", [False, True])
def test_splitting_positions_gives_the_rows_splitting_the_frame_gives(shipped):
    """The step copies one split at a time from row positions: the same rows, in the same order, as scikit-learn
    splitting the whole frame (what the step did before, at twice the memory)."""
    from sklearn.model_selection import train_test_split

    data = frame(200, 70).assign(**{ORIGIN: ["source"] * 150 + ["test_source" if shipped else "source"] * 50})
    data["income"] = pd.array(data["income"], dtype="string")
    config = SplitConfig(test_size=0.2, validation_size=0.25, seed=5)
    if shipped:
        rest, test = data[data[ORIGIN] == "source"], data[data[ORIGIN] == "test_source"]
    else:
        rest, test = train_test_split(data, test_size=0.2, random_state=5, stratify=data["income"])
    train, validation = train_test_split(rest, test_size=0.25, random_state=5, stratify=rest["income"])
    parts = split_dataset(data, DATA, config)
    for name, expected in (("train", train), ("validation", validation), ("test", test)):
        assert list(parts[name]["id"]) == list(expected["id"]), name
