"""Mitigation: reweighing weights, the batch group gap, penalized training, and the reductions baseline."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipelines.core.config import DataConfig, FairnessConfig, TrainConfig, load_settings
from pipelines.core.errors import PipelineError
from pipelines.training.mitigation import (
    constrained_features,
    constraint_labels,
    group_indicators,
    reductions_baseline,
    reweighing_weights,
    training_inputs,
)

DATA = DataConfig(source="x.csv", label="y", positive_label="1", sensitive_features=["sex", "race"])


def test_reweighing_weights_known_answer():
    # P(a)=3/4, P(b)=1/4, P(y=1)=P(y=0)=1/2; P(a,1)=1/2, P(a,0)=1/4, P(b,0)=1/4
    # -> P(g)P(y)/P(g,y): (a,1) 3/4, (a,0) 3/2, (b,0) 1/2, then scaled to mean 1
    weights = reweighing_weights(np.array(["a", "a", "a", "b"]), np.array([1, 1, 0, 0]))
    raw = np.array([0.75, 0.75, 1.5, 0.5])
    np.testing.assert_allclose(weights, raw / raw.mean(), rtol=1e-6)
    assert weights.dtype == np.float32


def test_reweighing_makes_label_and_group_independent_and_strength_scales_it():
    rng = np.random.default_rng(0)
    labels = rng.choice(["F", "M"], size=2000, p=[0.3, 0.7])
    y = (rng.random(2000) < np.where(labels == "M", 0.3, 0.1)).astype(int)
    weights = reweighing_weights(labels, y)
    rates = {g: np.average(y[labels == g], weights=weights[labels == g]) for g in ("F", "M")}
    assert rates["F"] == pytest.approx(rates["M"])  # weighted positive rate is the same in every group
    assert (reweighing_weights(labels, y, 0.0) == 1.0).all()
    half = reweighing_weights(labels, y, 0.5)
    np.testing.assert_allclose(half / half[0], np.sqrt(weights / weights[0]), rtol=1e-5)


def test_group_indicators_leave_unseen_groups_out():
    onehot = group_indicators(np.array(["F", "M", "X"], dtype=object), ["F", "M"])
    np.testing.assert_array_equal(onehot, [[1, 0], [0, 1], [0, 0]])


def test_constraint_labels_are_the_intersection_of_the_constrained_features():
    frame = pd.DataFrame({"sex": ["F", "M"], "race": ["a", None]})
    assert list(constraint_labels(frame, ["sex"])) == ["F", "M"]
    assert list(constraint_labels(frame, ["sex", "race"])) == ["F:a", "M:(missing)"]


def test_training_inputs_per_method_and_strength():
    train = pd.DataFrame({"sex": list("FFMM"), "race": list("abab")})
    y = np.array([1, 0, 1, 1])
    assert training_inputs(train, train, y, FairnessConfig(), ["sex"], 0.0) == {}
    penalty = training_inputs(train, train, y, FairnessConfig(constraint="equalized_odds"), ["sex"], 2.0)
    assert penalty["penalty"] == 2.0 and penalty["constraint"] == "equalized_odds"
    assert penalty["groups"].shape == (4, 2) and penalty["val_groups"].shape == (4, 2)
    weights = training_inputs(train, train, y, FairnessConfig(method="reweighing"), ["sex"], 1.0)
    assert set(weights) == {"sample_weight"} and weights["sample_weight"].shape == (4,)


def test_constrained_features_must_be_sensitive_features():
    assert constrained_features(FairnessConfig(), DATA) == ["sex", "race"]
    assert constrained_features(FairnessConfig(features=["sex"]), DATA) == ["sex"]
    with pytest.raises(PipelineError, match="fairness.features: 'age' is not one of data.sensitive_features"):
        constrained_features(FairnessConfig(features=["age"]), DATA)


def test_reweighing_needs_demographic_parity(tmp_path):
    (tmp_path / "params.yaml").write_text(
        "data: {source: x.csv, label: y, positive_label: '1', sensitive_features: [sex]}\n"
        "fairness: {method: reweighing, constraint: equalized_odds}\n")
    with pytest.raises(PipelineError, match="key 'fairness': Value error, method reweighing"):
        load_settings(tmp_path / "params.yaml")


def test_fairness_gap_known_answer():
    from pipelines.training.train import fairness_gap

    proba = np.array([0.8, 0.4, 0.2, 0.2], dtype=np.float32)
    labels = np.array([1, 0, 1, 0], dtype=np.float32)
    groups = np.array([[1, 0], [1, 0], [0, 1], [0, 1]], dtype=np.float32)
    # parity: group means 0.6 and 0.2 around 0.4, each half the rows -> 0.2
    assert float(fairness_gap(proba, labels, groups)) == pytest.approx(0.2)
    # equalized odds: positives 0.8 vs 0.2 around 0.5 -> 0.3; negatives 0.4 vs 0.2 around 0.3 -> 0.1
    assert float(fairness_gap(proba, labels, groups, "equalized_odds")) == pytest.approx(0.4)


def _synthetic(n: int = 600):
    rng = np.random.default_rng(1)
    member = rng.integers(0, 2, n)
    x = np.column_stack([rng.normal(size=n) + member, rng.normal(size=n)]).astype(np.float32)
    y = (x[:, 0] + 0.3 * rng.normal(size=n) > 0.5).astype(np.float32)
    return x, y, member


def test_penalized_training_narrows_the_gap_and_returns_the_plain_network():
    from pipelines.training.train import predict_keras, train_model

    x, y, member = _synthetic()
    groups = np.eye(2, dtype=np.float32)[member]
    config = TrainConfig(hidden_units=[8], epochs=15, batch_size=64)
    gaps = {}
    for strength in (0.0, 5.0):
        model, history = train_model(x, y, x, y, config, groups=groups, val_groups=groups, penalty=strength)
        chosen = predict_keras(model, x) >= 0.5
        gaps[strength] = abs(chosen[member == 1].mean() - chosen[member == 0].mean())
        assert model.name == "network" and model.input_shape == (None, 2)  # the functional network, not the wrapper
        assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(history)
    assert gaps[5.0] < gaps[0.0] / 2


def test_reductions_baseline_decides_and_narrows_the_gap():
    from sklearn.linear_model import LogisticRegression

    x, y, member = _synthetic(1000)
    decide, facts = reductions_baseline(x, y, member.astype(str), FairnessConfig(baseline_max_iter=20))
    decisions = decide(x)
    assert set(np.unique(decisions)) <= {0.0, 1.0}
    np.testing.assert_array_equal(decisions, decide(x))  # one seeded draw
    # in chunks (large splits): the same draws, so the same decisions row for row
    np.testing.assert_array_equal(decisions, decide(x[i:i + 300] for i in range(0, len(x), 300)))
    stream = decide.stream()  # a chunk per call, as a pass over a split file gives them
    np.testing.assert_array_equal(decisions, np.concatenate([stream(x[i:i + 300]) for i in range(0, len(x), 300)]))
    fresh = facts["fitted"].predict(x.astype(np.float64), random_state=FairnessConfig().seed)
    np.testing.assert_array_equal(decisions, fresh)  # what fairlearn draws itself for that seed
    assert 0.0 < decisions.mean() < 1.0
    plain = LogisticRegression().fit(x, y).predict(x)
    gap = lambda d: abs(d[member == 1].mean() - d[member == 0].mean())  # noqa: E731
    assert gap(decisions) < gap(plain) / 2
    assert facts["randomized"] and facts["constraint"] == "demographic_parity" and facts["predictors"] >= 1


def test_a_stratified_sample_keeps_each_label_and_group_share():
    from pipelines.training.mitigation import stratified_sample

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"y": rng.integers(0, 2, 50_000), "g": rng.choice(["a", "b", "c"], 50_000, p=[0.7, 0.29, 0.01])})
    frame.loc[7, "g"] = None  # a one-row cell keeps its row
    sample = stratified_sample(frame, ["y", "g"], 5_000, seed=1)
    assert abs(len(sample) - 5_000) <= 5 and sample.index.is_monotonic_increasing
    shares = lambda f: f.groupby(["y", "g"]).size() / len(f)  # noqa: E731
    assert (shares(sample) - shares(frame)).abs().max() < 0.002
    assert sample["g"].isna().sum() == 1
    assert stratified_sample(frame, ["y"], None, 1) is frame and stratified_sample(frame, ["y"], 60_000, 1) is frame


def test_any_numbering_of_the_cells_gives_the_same_stratified_sample():
    """A split file numbers its cells batch by batch (CellNumbers), a frame by groupby: the same rows."""
    from pipelines.training.mitigation import CellNumbers, stratified_positions, stratified_sample

    rng = np.random.default_rng(4)
    frame = pd.DataFrame({"y": rng.choice(["no", "yes"], 9000, p=[0.8, 0.2]),
                          "g": rng.choice(["a", "b", "c", None], 9000, p=[0.6, 0.3, 0.09, 0.01]),
                          "h": rng.choice([1.0, 2.0, np.nan], 9000)})
    for columns in (["y"], ["y", "g"], ["y", "g", "h"]):
        expected = stratified_sample(frame, columns, 700, seed=2).index.to_numpy()
        numbering = CellNumbers(columns)  # batch by batch, as a split file is read
        cells = np.concatenate([numbering(frame.iloc[i:i + 1000]) for i in range(0, len(frame), 1000)])
        np.testing.assert_array_equal(stratified_positions(cells, 700, 2), expected)


def test_the_stratified_sampler_keeps_each_cells_quota_whatever_the_batches():
    """Batch by batch (a split file) or all at once (a frame): the same rows, each cell its rounded share."""
    from pipelines.training.mitigation import StratifiedSampler, stratified_positions

    rng = np.random.default_rng(7)
    cells = rng.choice(4, 20_000, p=[0.7, 0.2, 0.0999, 0.0001])
    whole = stratified_positions(cells, 1000, seed=5)
    sampler = StratifiedSampler(np.bincount(cells), 1000, seed=5)
    for start in range(0, len(cells), 1500):
        sampler.add(start, cells[start:start + 1500])
    np.testing.assert_array_equal(sampler.positions(), whole)
    kept = np.bincount(cells[whole], minlength=4)
    np.testing.assert_array_equal(kept, np.maximum(1, np.round(np.bincount(cells) * 1000 / len(cells))))
    assert len(np.unique(whole)) == len(whole)
    assert not np.array_equal(stratified_positions(cells, 1000, seed=6), whole)  # the seed draws other rows
