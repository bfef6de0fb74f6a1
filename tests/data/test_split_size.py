"""split.auto_test_size: the test share grows until the fairness gate can tell a fair model, stays put on large groups
and where no share helps, and its simulation agrees with the real gate on real hash splits."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipelines.core.config import Params
from pipelines.data.rowsplit import ORIGIN, ROW, TEST, split_codes
from pipelines.data.split_size import cell_counts, fair_pass_share, sized_split

BASE = {"data": {"source": "t.csv", "label": "y", "positive_label": 1, "sensitive_features": ["race"]}}


def params(**sections: dict) -> Params:
    merged = {key: dict(value) for key, value in BASE.items()}
    for key, value in sections.items():
        merged[key] = merged.get(key, {}) | value
    return Params.model_validate(merged)


def validated(tmp_path: Path, sizes: dict[str, int], positive_rate: float = 0.5, seed: int = 0) -> Path:
    """A validated Parquet file with `sizes` rows per race group and labels at `positive_rate`."""
    rng = np.random.default_rng(seed)
    race = np.repeat(list(sizes), list(sizes.values()))
    frame = pd.DataFrame({"race": race, "x": rng.random(len(race)),
                          "y": (rng.random(len(race)) < positive_rate).astype(int)})
    frame[ORIGIN], frame[ROW] = "source", np.arange(len(frame), dtype=np.int64)
    path = tmp_path / "validated.parquet"
    frame.to_parquet(path)
    return path


def test_small_groups_get_a_larger_test_split_where_a_fair_model_passes(tmp_path):
    path, config = validated(tmp_path, {"a": 250, "b": 3000}), params()
    split, summary, tables = sized_split(config, path)
    assert 0.2 < split.test_size <= config.split.max_test_size
    assert summary["test_share"] == split.test_size and summary["fair_gate_pass_share"] >= 0.9
    cells = cell_counts(path, config)
    assert fair_pass_share(cells, config, 0.2) < 0.9  # the default share could not tell
    assert f"| {split.test_size:g} (used) |" in tables["test share"]


def test_large_groups_and_fixed_settings_keep_the_share(tmp_path):
    path = validated(tmp_path, {"a": 4000, "b": 4000})
    split, summary, _ = sized_split(params(), path)
    assert split.test_size == 0.2 and summary["fair_gate_pass_share"] >= 0.9
    small = validated(tmp_path, {"a": 250, "b": 3000})
    split, summary, tables = sized_split(params(split={"auto_test_size": False}), small)
    assert split.test_size == 0.2 and summary == {"test_share": 0.2} and tables == {}
    shipped = params(data={"test_source": "t.test.csv"})
    assert sized_split(shipped, small)[1:] == ({}, {})


def test_where_no_share_lets_the_gate_tell_the_share_stays_and_says_so(tmp_path):
    path = validated(tmp_path, {"a": 90, "b": 3000})  # at most 45 test rows of a: too few at any share
    split, summary, tables = sized_split(params(), path)
    assert split.test_size == 0.2 and summary["fair_gate_pass_share"] < 0.9
    assert "none up to split.max_test_size = 0.4; split.test_size kept" in tables["test share"]


def test_an_ungated_grouping_needs_no_rows(tmp_path):
    path = validated(tmp_path, {"a": 90, "b": 3000})
    config = params(gates={"fairness": {"max_demographic_parity_difference": None,
                                        "max_equalized_odds_difference": None}})
    assert fair_pass_share(cell_counts(path, config), config, 0.2) == 1.0


@pytest.mark.parametrize("share", [0.2, 0.35])
def test_the_simulation_agrees_with_the_gate_on_hash_splits(tmp_path, share):
    """The share of real hash splits (split seeds) whose test rows let a fair random model pass the run's own fairness
    gate (pipelines.governance.fairness) is the simulated pass share, within the noise of 300 splits."""
    from pipelines.governance.fairness import evaluate_models, fairness_gates

    path = validated(tmp_path, {"a": 300, "b": 250, "c": 2000}, positive_rate=0.4)
    config = params(split={"test_size": share})
    frame, rng = pd.read_parquet(path), np.random.default_rng(1)
    rate, passed, splits = frame["y"].mean(), 0, 300
    fairness = config.fairness.model_copy(update={"bootstrap": 0})
    for seed in range(splits):
        test = frame[split_codes(frame, config.data, config.split.model_copy(update={"seed": seed})) == TEST]
        decisions = (rng.random(len(test)) < rate).astype(float)
        report = evaluate_models(test["y"].to_numpy(), {"fair": decisions}, test[["race"]], fairness, 0.5,
                                 config.gates.fairness.min_group_size)
        passed += all(r.passed for r in fairness_gates(report, config.gates.fairness))
    simulated = fair_pass_share(cell_counts(path, config), config, share)
    assert 0.3 < simulated < 0.97  # a share the gate's noise decides, not a sure pass or fail
    assert abs(passed / splits - simulated) < 0.08


def test_a_sensitive_column_unique_per_row_is_not_sized(tmp_path):
    path = validated(tmp_path, {f"id{i}": 1 for i in range(6000)})  # an identifier listed as a sensitive feature
    split, summary, tables = sized_split(params(), path)
    assert split.test_size == 0.2 and summary == {"test_share": 0.2}
    assert tables["test share"] == ("split.auto_test_size: 6,000 combinations of sensitive values (over 5,000) are "
                                    "not sized; split.test_size kept")
