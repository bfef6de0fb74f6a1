"""A split's figures from counts gathered chunk by chunk (pipelines.training.tally, pipelines.training.auc): the exact
numbers of the same functions on all the rows at once, whatever the chunks, with the scores spilled to disk."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.core.config import FairnessConfig
from pipelines.core.errors import PipelineError
from pipelines.finops.offload import grid_rows, offload_counts, offload_grid
from pipelines.governance import tradeoff
from pipelines.governance.fairness import evaluate_models, evaluate_tallies
from pipelines.training.auc import AucTally
from pipelines.training.baselines import BaselineTally, baselines
from pipelines.training.metrics import group_codes, intersection_name, roc_auc
from pipelines.training.tally import Aligned, Chunk, Tallies

CONFIG = FairnessConfig(bootstrap=40, confidence=0.9, seed=3)


def _rows(n: int = 2500, seed: int = 0) -> tuple[np.ndarray, pd.DataFrame, dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    groups = pd.DataFrame({"sex": rng.choice(["F", "M"], n), "race": rng.choice(["a", "b", "c", "d"], n,
                                                                                   p=[0.6, 0.3, 0.09, 0.01])})
    groups.loc[groups.index % 97 == 5, "race"] = None
    y = (rng.random(n) < 0.3 + 0.3 * (groups["sex"] == "M")).to_numpy(float)
    keras = np.clip(0.6 * y + rng.normal(0.2, 0.25, n), 0, 1).astype(np.float32)
    probas = {"keras": keras, "int8": np.round(keras * 16) / 16, "float16": keras.astype(np.float16).astype(np.float32)}
    return y, groups, probas


def _chunked(y, groups, probas, size: int, reference: str | None = "keras", intersection: bool = True,
             auc: bool = True) -> Tallies:
    tallies = Tallies(0.5, reference=reference, auc=auc)
    for start in range(0, len(y), size):
        part = slice(start, start + size)
        tallies.add(Chunk(y[part], group_codes(groups.iloc[part], intersection),
                          {name: p[part] for name, p in probas.items()}, None))
    return tallies


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 400), st.integers(0, 3), st.integers(1, 60), st.integers(2, 50), st.integers(1, 97),
       st.integers(0, 10_000))
def test_the_auc_of_chunks_spilled_to_disk_is_roc_auc_of_all_rows(n, kind, held, collect, chunk, seed):
    rng = np.random.default_rng(seed)
    scores = {0: rng.random(n).astype(np.float32), 1: rng.integers(0, 4, n) / 3.0,  # ties everywhere
              2: np.r_[np.full(n // 2, 0.5), rng.random(n - n // 2)],  # one heavy key
              3: np.r_[np.full(n // 3, -0.0), np.zeros(n // 3), rng.random(n - 2 * (n // 3)) ** 9]}[kind]
    y = (rng.random(n) < 0.4).astype(float)
    with AucTally(held=held, collect=collect) as tally:
        for start in range(0, n, chunk):
            tally.add(y[start:start + chunk], scores[start:start + chunk])
        found = tally.value()
    expected = roc_auc(y, scores)
    assert (np.isnan(found) and np.isnan(expected)) or found == expected


def test_a_spilled_auc_leaves_no_file_and_refuses_nan():
    tally = AucTally(held=10)
    tally.add(np.r_[np.zeros(20), np.ones(20)], np.linspace(0, 1, 40))
    folder = Path(tally._folder.name)
    assert folder.is_dir() and tally.value() == 1.0
    tally.close()
    assert not folder.exists()
    with AucTally() as tally, pytest.raises(ValueError, match="NaN"):
        tally.add(np.ones(2), np.array([0.5, np.nan]))


def test_a_large_split_takes_few_passes_over_its_file(monkeypatch):
    rng = np.random.default_rng(0)
    n = 300_000
    y, scores = (rng.random(n) < 0.3).astype(float), rng.random(n).astype(np.float32)
    reads = []
    with AucTally(held=1000, collect=50_000) as tally:
        for start in range(0, n, 65_536):
            tally.add(y[start:start + 65_536], scores[start:start + 65_536])
        original = tally._read
        monkeypatch.setattr(tally, "_read", lambda: (reads.append(1), original())[1])
        assert tally.value() == roc_auc(y, scores)
    assert len(reads) <= 2 + n // 50_000 + 2  # one count, a narrowing, one read per collected range


@pytest.mark.parametrize("size", [1, 333, 2500])
def test_every_models_figures_from_chunks_are_those_of_the_whole_split(size):
    y, groups, probas = _rows()
    with _chunked(y, groups, probas, size) as tallies:
        chunked = evaluate_tallies(tallies, CONFIG, 30, ["sex", "race"])
    assert chunked == evaluate_models(y, probas, groups, CONFIG, 0.5, 30)
    assert chunked["models"]["int8"]["quantization"]["race"]["groups"]["(missing)"]["count"] > 0


def test_agreement_errors_and_non_finite_outputs_add_up_over_chunks():
    y, groups, probas = _rows(600)
    probas["int8"][[3, 400]] = np.nan
    with _chunked(y, groups, probas, 128) as tallies:
        int8 = tallies.models["int8"]
        decided = np.where(np.isfinite(probas["int8"]), probas["int8"] >= 0.5, probas["keras"] < 0.5)
        assert int8.non_finite == 2
        assert int8.agreement() == np.mean(decided == (probas["keras"] >= 0.5))
        finite = np.isfinite(probas["int8"])
        assert int8.max_error == float(np.abs(np.where(finite, probas["int8"], 1.0) - probas["keras"]).max())
        assert tallies.models["keras"].overall()["rows"] == 600


def test_the_trade_off_point_and_the_offload_grid_from_chunks_are_the_whole_splits():
    y, groups, probas = _rows()
    features = ["sex", "race"]
    with _chunked(y, groups, probas, 400, reference=None, auc=False) as tallies:
        names, counts = tallies.models["int8"].cells()[intersection_name(features)]
        assert tradeoff.point_figures(names, counts, CONFIG, 30, 40) == \
            tradeoff.point(y, probas["int8"], groups, features, CONFIG, 0.5, 30, 40)
    counts = {}
    for start in range(0, len(y), 700):
        part = slice(start, start + 700)
        for delta, found in offload_counts(probas["int8"][part], probas["keras"][part], y[part], 0.5,
                                           [0.1, 0.05, 0.2]).items():
            counts[delta] = counts.get(delta, 0) + found
    assert grid_rows(counts, len(y), 1000) == offload_grid(probas["int8"], probas["keras"], y, 0.5, [0.2, 0.1, 0.05],
                                                           1000)


def test_the_baselines_from_chunks_are_those_of_the_whole_test_split():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(3000, 4))
    y = (x[:, 0] + rng.normal(0, 1, 3000) > 0.3).astype(float)
    right = rng.random(1000) < 0.8
    whole = baselines(x[:2000], y[:2000], x[2000:], y[2000:], 0.5, 0, right, 50, 0.9)
    with BaselineTally(x[:2000], y[:2000], 0.5, 0) as tally:
        for start in range(2000, 3000, 300):
            tally.add(x[start:start + 300], y[start:start + 300], right[start - 2000:start - 1700])
        assert tally.figures(50, 0.9) == whole
    assert "gain_ci" in whole["logistic_regression"]


def test_saved_predictions_are_recut_to_the_chunks_asked_for_and_must_match_the_split():
    frames = [pd.DataFrame({"keras": np.arange(a, b, dtype=float)}) for a, b in ((0, 3), (3, 8), (8, 10))]
    aligned = Aligned(iter(frames))
    taken = [aligned.take(n)["keras"].tolist() for n in (4, 4, 2)]
    assert taken == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]] and aligned.done()
    short = Aligned(iter(frames[:1]))
    with pytest.raises(PipelineError, match="re-run trained_model"):
        short.take(5)
    assert not Aligned(iter(frames)).done()

