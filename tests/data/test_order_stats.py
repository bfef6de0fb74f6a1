"""Exact quantiles of a column read in batches (pipelines.data.order_stats) and the streamed drift profile: the same
floats np.quantile, np.histogram and drift.profile_frame give on the whole column."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.data import order_stats
from pipelines.data.drift import profile_frame
from pipelines.data.stream import profile_stream

PROBABILITIES = [np.linspace(0, 1, 11), np.linspace(0, 1, 1000)]
RNG = np.random.default_rng(0)
COLUMNS = {
    "normal": RNG.normal(size=5_000),
    "few values": RNG.integers(0, 5, 20_000).astype(float),
    "one value": np.full(5_000, 7.0),
    "one row": np.array([3.5]),
    "tiny and huge": np.r_[RNG.normal(size=500) * 1e-300, RNG.normal(size=500) * 1e300, np.zeros(700)],
    "infinities": np.r_[RNG.normal(size=300), [np.inf, -np.inf]],
    "mostly zero": np.r_[np.zeros(9_000), RNG.exponential(size=50)],
}


def _batches(values: np.ndarray, size: int) -> order_stats.Batches:
    return lambda: (values[start:start + size] for start in range(0, len(values), size))


@pytest.mark.parametrize("collect", [order_stats.COLLECT, 64, 1])  # 1: every rank narrowed to the whole key
@pytest.mark.parametrize("name", list(COLUMNS))
def test_quantiles_are_numpys_on_the_whole_column(monkeypatch, name: str, collect: int):
    monkeypatch.setattr(order_stats, "COLLECT", collect)
    values = COLUMNS[name]
    with np.errstate(invalid="ignore"):  # inf - inf in the interpolation, as in numpy's
        count, found = order_stats.quantiles(_batches(values, 97), PROBABILITIES)
        assert count == len(values)
        for got, q in zip(found, PROBABILITIES):
            assert np.array_equal(got, np.quantile(values, q), equal_nan=True)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(allow_nan=False, allow_infinity=False, width=64), min_size=1, max_size=300),
       st.integers(1, 50))
def test_quantiles_match_numpy_on_any_values(values: list[float], size: int):
    column = np.asarray(values, np.float64) + 0.0  # numpy may return -0.0 where the keys say 0.0: equal values
    count, (found,) = order_stats.quantiles(_batches(column, size), [np.linspace(0, 1, 37)])
    # equal_nan: np.quantile itself gives NaN where an interpolation overflows (max float and a large negative)
    assert count == len(column) and np.array_equal(found, np.quantile(column, np.linspace(0, 1, 37)), equal_nan=True)


def test_keys_keep_the_order_of_the_values():
    values = np.sort(np.r_[COLUMNS["tiny and huge"], COLUMNS["infinities"], [-0.0, 0.0]])
    keyed = order_stats.keys(values)
    assert np.all(keyed[1:] >= keyed[:-1]) and np.array_equal(order_stats.values_of(keyed), values)


def test_no_values_is_an_error_not_a_guess():
    with pytest.raises(ValueError, match="no values"):
        order_stats.quantiles(_batches(np.zeros(0), 10), PROBABILITIES)


def test_streamed_profile_is_the_whole_frames(tmp_path: Path):
    """Integers with gaps (read as floats), floats, text and dictionary-encoded text, in batches of 7 rows."""
    n = 500
    frame = pd.DataFrame({
        "age": pd.array(RNG.integers(18, 90, n), dtype="Int64"),
        "income": RNG.lognormal(10, 1, n),
        "sex": RNG.choice(["a", "b", None], n),
        "city": pd.Categorical(RNG.choice(["x", "y", "z"], n)),
    })
    frame.loc[::9, "age"] = pd.NA
    frame.loc[::13, "income"] = np.nan
    path = tmp_path / "validated.parquet"
    frame.to_parquet(path, index=False)
    whole = profile_frame(pd.read_parquet(path), list(frame.columns))
    assert profile_stream(path, 7) == whole
    income = frame["income"].dropna().to_numpy()
    assert whole["features"]["income"]["quantiles"] == np.quantile(income, np.linspace(0, 1, 1000)).tolist()
    assert whole["features"]["age"]["count"] == frame["age"].notna().sum()
