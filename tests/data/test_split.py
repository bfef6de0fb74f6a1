"""Train / validation / test splits: by a seeded hash of each row's key, disjoint, batch-independent; the shipped
test file wins."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipelines.core.config import DataConfig, SplitConfig
from pipelines.data.rowsplit import INTERNAL, ORIGIN, ROW, TEST, TRAIN, VALIDATION, split_codes, unit_hash
from pipelines.data.split import SPLITS, split_dataset

DATA = DataConfig(source="t.csv", label="income", positive_label="yes", sensitive_features=["sex"])
SHIPPED = DATA.model_copy(update={"test_source": "t.test.csv"})


def frame(rows: int = 100, positives: int = 40, origin: str = "source") -> pd.DataFrame:
    return pd.DataFrame({
        "id": range(rows),
        "sex": ["M", "F"] * (rows // 2),
        "income": ["yes"] * positives + ["no"] * (rows - positives),
        ORIGIN: origin,
        ROW: np.arange(rows, dtype=np.int64),
    })


def ids(part: pd.DataFrame) -> set[int]:
    return set(part["id"])


def test_the_hash_is_md5_of_seed_and_key_as_documented():
    """Fixed figures: another engine (Spark) computes the same u from the same text."""
    u = unit_hash(["source:0", "source:1", "source:2", "test_source:0", "alice", "bob"], 42)
    expected = [0x354299c236fd7, 0xccdc36d04350d, 0x1bfcc9b35468b, 0x69e84a49db617, 0x912ffa6dd9c3b,
                0x28b7f1b453bc9]
    assert u.tolist() == [e / 16**13 for e in expected]


def test_fixed_assignment_without_and_with_a_shipped_test_file():
    rows = pd.DataFrame({"income": ["yes"] * 4, ORIGIN: ["source"] * 3 + ["test_source"],
                         ROW: np.array([0, 1, 2, 0], dtype=np.int64)})
    config = SplitConfig(test_size=0.2, validation_size=0.1, seed=42)  # test u < .2, validation u < .28
    assert split_codes(rows, DATA, config).tolist() == [VALIDATION, TRAIN, TEST, TRAIN]
    # with a shipped test file its rows are test; the others validation when u < validation_size
    assert split_codes(rows, SHIPPED, config).tolist() == [TRAIN, TRAIN, TRAIN, TEST]
    wider = SplitConfig(validation_size=0.25, seed=42)
    assert split_codes(rows, SHIPPED, wider).tolist() == [VALIDATION, TRAIN, VALIDATION, TEST]


def test_a_key_column_is_hashed_instead_of_the_row_number():
    keyed = DATA.model_copy(update={"key": "name"})
    rows = pd.DataFrame({"name": ["alice", "bob"], ORIGIN: "source", ROW: np.array([7, 8], dtype=np.int64)})
    assert split_codes(rows, keyed, SplitConfig(seed=42)).tolist() == [TRAIN, TEST]  # u .567 and .159


def test_sizes_near_the_shares_disjoint_and_complete():
    parts = split_dataset(frame(20_000, 8_000), DATA, SplitConfig(test_size=0.2, validation_size=0.25, seed=1))
    assert tuple(parts) == SPLITS
    sizes = [len(parts[s]) for s in SPLITS]
    assert sizes == pytest.approx([12_000, 4_000, 4_000], rel=0.05)
    for name in SPLITS:
        assert (parts[name]["income"] == "yes").mean() == pytest.approx(0.4, abs=0.03), name
        assert list(parts[name].index) == list(range(len(parts[name])))
        assert not set(INTERNAL) & set(parts[name].columns), name
        assert parts[name]["id"].is_monotonic_increasing, name  # row order kept
    train, validation, test = (ids(parts[s]) for s in SPLITS)
    assert not train & validation and not train & test and not validation & test
    assert train | validation | test == set(range(20_000))


def test_same_seed_same_split_other_seed_other_split():
    first = split_dataset(frame(), DATA, SplitConfig(seed=7))
    again = split_dataset(frame(), DATA, SplitConfig(seed=7))
    other = split_dataset(frame(), DATA, SplitConfig(seed=8))
    for name in SPLITS:
        pd.testing.assert_frame_equal(first[name], again[name])
    assert ids(first["test"]) != ids(other["test"])


def test_a_row_gets_the_same_split_in_any_batch():
    whole = frame(1_000)
    config = SplitConfig(seed=3)
    pieces = np.concatenate([split_codes(whole.iloc[a:b], DATA, config) for a, b in ((0, 1), (1, 333), (333, 1000))])
    assert pieces.tolist() == split_codes(whole, DATA, config).tolist()


def test_shipped_test_rows_become_the_test_split():
    data = pd.concat([frame(80), frame(20, 5, "test_source").assign(id=range(80, 100))], ignore_index=True)
    parts = split_dataset(data, SHIPPED, SplitConfig(validation_size=0.25, seed=3))
    assert ids(parts["test"]) == set(range(80, 100))
    assert ids(parts["train"]) | ids(parts["validation"]) == set(range(80))
    assert not ids(parts["train"]) & ids(parts["validation"])
    assert 10 <= len(parts["validation"]) <= 30


def test_without_a_shipped_test_file_a_test_share_is_carved_out():
    parts = split_dataset(frame(1_000), DATA, SplitConfig(test_size=0.2, seed=3))
    assert 150 <= len(parts["test"]) <= 250
