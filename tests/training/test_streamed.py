"""Training rows read from a split's Parquet file (pipelines.data.split_file, pipelines.training.streamed): the same
encoded rows, spec and sweep sample as the whole frame gives; a model trained on the tf.data batches is sensible;
a broken file is named."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.core.config import DataConfig, FairnessConfig, TrainConfig
from pipelines.core.errors import PipelineError
from pipelines.data.features import compact_rows, encode_features, encode_labels, fit_feature_spec
from pipelines.data.split_file import SplitFile

DATA = DataConfig(source="x.csv", label="income", positive_label=">50K", sensitive_features=["sex"])


def _frame(n: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Rows whose label follows `age` and `job`, with a missing age and a rare job here and there."""
    rng = np.random.default_rng(seed)
    age = rng.normal(40, 10, n).round()
    job = rng.choice(["clerk", "manager", "driver", "nurse"], n, p=[0.4, 0.3, 0.29, 0.01])
    score = (age - 40) / 10 + np.where(job == "manager", 1.5, 0.0) + rng.normal(0, 0.5, n)
    frame = pd.DataFrame({"age": age, "hours": rng.normal(40, 5, n), "job": job,
                          "sex": rng.choice(["Female", "Male"], n),
                          "income": np.where(score > 0.8, ">50K", "<=50K")})
    frame.loc[frame.index % 97 == 5, "age"] = np.nan
    return frame


def _write(frame: pd.DataFrame, path, group_rows: int) -> SplitFile:
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=group_rows)
    return SplitFile.open(path, batch_rows=group_rows // 3 + 1)


def test_the_batches_give_the_rows_spec_and_sample_of_the_whole_frame(tmp_path):
    from pipelines.training.mitigation import sweep_sample
    from pipelines.training.streamed import feature_spec
    from pipelines.training.streamed import sweep_sample as file_sample

    frame = _frame()
    split = _write(frame, tmp_path / "train.parquet", group_rows=128)  # 8 row groups, 3 batches each
    whole = pd.read_parquet(split.path)
    spec = fit_feature_spec(whole, DATA)
    streamed = feature_spec(split, DATA)
    assert [c.vocabulary for c in streamed.categorical] == [c.vocabulary for c in spec.categorical]
    for mine, theirs in zip(streamed.numeric, spec.numeric, strict=True):
        assert mine.name == theirs.name
        assert mine.mean == pytest.approx(theirs.mean, rel=1e-12) and mine.std == pytest.approx(theirs.std, rel=1e-12)
    np.testing.assert_array_equal(np.concatenate(list(split.encoded(spec))), encode_features(whole, spec))
    positions, numeric, codes, labels = (np.concatenate(p) for p in zip(*split.compact(spec)))
    np.testing.assert_array_equal(positions, np.arange(len(frame)))
    rows = compact_rows(whole, spec)
    np.testing.assert_array_equal(numeric, rows.numeric)
    np.testing.assert_array_equal(codes, rows.codes)
    np.testing.assert_array_equal(labels, encode_labels(whole, spec))
    config = FairnessConfig(sample_rows=1000, seed=3)
    small = _frame(5000, seed=1)
    big = _write(small, tmp_path / "big.parquet", group_rows=700)
    pd.testing.assert_frame_equal(file_sample(big, "income", ["sex"], config),
                                  sweep_sample(pd.read_parquet(big.path), "income", ["sex"], config))


def test_one_pass_of_the_dataset_is_every_row_once_in_a_new_order(tmp_path):
    from pipelines.training.streamed import StreamedRows

    frame = _frame(700)
    split = _write(frame, tmp_path / "train.parquet", group_rows=100)
    rows = StreamedRows(split, fit_feature_spec(frame, DATA))
    dataset = rows.dataset(batch_size=32, seed=1)
    first, second = ([p.numpy() for _, _, p in dataset] for _ in range(2))
    for seen in (first, second):
        assert np.array_equal(np.sort(np.concatenate(seen)), np.arange(700))
    assert not np.array_equal(np.concatenate(first), np.concatenate(second))
    x, y = next(iter(rows.keras_dataset(encode_labels(frame, rows.spec), batch_size=32, seed=1)))
    assert x.shape[1] == rows.width and y.shape == (x.shape[0],)


def test_keras_fit_and_the_stacked_training_learn_from_the_parquet_batches(tmp_path):
    import keras

    from pipelines.training.stacked import train_stacked
    from pipelines.training.streamed import StreamedRows
    from pipelines.training.train import build_model, predict_keras, seed_everything

    train, test = _frame(3000, seed=2), _frame(1000, seed=3)
    spec = fit_feature_spec(train, DATA)
    rows = StreamedRows(_write(train, tmp_path / "train.parquet", group_rows=500), spec)
    y, y_test, x_test = encode_labels(train, spec), encode_labels(test, spec), encode_features(test, spec)
    majority = max(y_test.mean(), 1 - y_test.mean())
    config = TrainConfig(hidden_units=[16], epochs=5, batch_size=64)
    seed_everything(config.seed)
    model = build_model(rows.width, config)
    model.fit(rows.keras_dataset(y, config.batch_size, config.seed), epochs=5, verbose=0)
    assert isinstance(model, keras.Model)
    fitted = np.mean((predict_keras(model, x_test) >= 0.5) == (y_test > 0.5))
    (network, history), = train_stacked(rows, y, compact_rows(test, spec), y_test, config, [0.0])
    stacked = np.mean((predict_keras(network, x_test) >= 0.5) == (y_test > 0.5))
    in_memory, = train_stacked(compact_rows(train, spec), y, compact_rows(test, spec), y_test, config, [0.0])
    held = np.mean((predict_keras(in_memory[0], x_test) >= 0.5) == (y_test > 0.5))
    assert min(fitted, stacked) > majority + 0.05, (fitted, stacked, majority)
    assert abs(stacked - held) < 0.03, (stacked, held)
    assert len(history["loss"]) == 5 and history["loss"][-1] < history["loss"][0]


def test_a_malformed_split_file_is_named(tmp_path):
    from pipelines.training.streamed import StreamedRows

    bad = tmp_path / "splits" / "train.parquet"
    bad.parent.mkdir()
    bad.write_bytes(b"PAR1 not really parquet")
    with pytest.raises(PipelineError, match=r"splits/train\.parquet is not a readable Parquet file"):
        SplitFile.open(bad, 100)
    frame = _frame(300)
    split = _write(frame, bad, group_rows=100)
    data = bad.read_bytes()
    bad.write_bytes(data[:200] + b"\0" * (len(data) - 400) + data[-200:])  # footer intact, pages broken
    with pytest.raises(PipelineError, match=r"splits/train\.parquet is not a readable Parquet file"):
        list(StreamedRows(split, fit_feature_spec(frame, DATA)).dataset(32, 0).as_numpy_iterator())


def test_trained_model_reads_a_train_split_above_batch_rows_from_its_file(tmp_path):
    """data.batch_rows below the train split's rows: the sweep fits its stratified sample, the deployed model all
    rows through tf.data, the test split is scored batch by batch; the model is as good as the in-memory one, and
    model_evaluation reads both splits from their files."""
    import json
    import os

    from sklearn.metrics import roc_auc_score

    from pipelines.core.config import load_settings
    from pipelines.data import steps as data_steps
    from pipelines.data.split import load_split
    from pipelines.data.split_file import open_split
    from pipelines.training.steps import model_evaluation, teacher_model, trained_model
    from tests.conftest import write_small_project

    write_small_project(tmp_path)
    saved = os.environ.pop("MLFLOW_TRACKING_URI", None)
    try:
        accuracy, auc = {}, {}
        for batch_rows in (500_000, 400):
            settings = load_settings(tmp_path / "params.yaml", {"data.batch_rows": batch_rows, "fairness.strength": 0,
                                                                "fairness.sample_rows": 1000, "train.epochs": 30})
            for step in (data_steps.raw_dataset, data_steps.validated_dataset, data_steps.data_drift,
                         data_steps.dataset_splits):
                step(settings)
            train, test = open_split(settings, "train"), open_split(settings, "test")
            assert isinstance(train, pd.DataFrame) == (batch_rows == 500_000)
            trained_model(settings)
            folder = tmp_path / "models" / "trained"
            facts = json.loads((folder / "mitigation.json").read_text())
            assert facts["training_rows"] == len(train) > facts["sweep_rows"]
            predictions = pd.read_parquet(folder / "predictions.parquet")
            test = load_split(settings, "test")
            y = (test[settings.params.data.label] == ">50K").to_numpy()
            proba = predictions.loc[predictions["split"] == "test", "keras"].to_numpy()
            assert len(proba) == len(test)
            accuracy[batch_rows] = float(np.mean((proba >= 0.5) == y))
            auc[batch_rows] = roc_auc_score(y, proba)
        teacher_model(settings)
        model_evaluation(settings)  # the sample and the test batches read from the split files
        report = json.loads((tmp_path / "reports" / "evaluation.json").read_text())
        assert report["overall"]["accuracy"] == pytest.approx(accuracy[400])
        assert report["baselines"]["logistic_regression"]["accuracy"] > 0.75
        assert auc[400] > 0.8 and abs(auc[400] - auc[500_000]) < 0.03, auc
        assert accuracy[400] > 0.78 and abs(accuracy[400] - accuracy[500_000]) < 0.03, accuracy
    finally:
        if saved is not None:
            os.environ["MLFLOW_TRACKING_URI"] = saved


def test_each_batch_carries_the_figures_the_frame_path_holds_for_every_row(tmp_path):
    """BatchFigures: the labels, class weights, group indicators (constrained grouping, then a side limit's block)
    and targets of a batch's rows are those fit_heads makes for the whole frame, at those rows."""
    from pipelines.training.limits import SideLimit, side_indicators
    from pipelines.training.mitigation import constraint_labels, group_indicators
    from pipelines.training.streamed import BatchFigures, StreamedRows
    from pipelines.training.train import class_weights

    frame = _frame(900)
    frame["race"] = np.random.default_rng(4).choice(["A", "B", "C"], len(frame))
    split = _write(frame, tmp_path / "train.parquet", group_rows=200)
    spec = fit_feature_spec(frame, DATA)
    config = TrainConfig(class_weight="balanced")
    side = [SideLimit("race", ["race"], "demographic_parity", 2.0, ["A", "B"])]
    positives = float(encode_labels(frame, spec).mean())
    figures = BatchFigures(spec, ["sex"], ["Female", "Male"], side, 3,
                           lambda y: class_weights(y, config, positives), lambda rows, labels: labels)
    y_all = encode_labels(frame, spec)
    weights = class_weights(y_all, config)
    members = np.concatenate([group_indicators(constraint_labels(frame, ["sex"]), ["Female", "Male"]),
                              side_indicators(frame, side)], axis=1)
    for start, batch in split.batches():
        at = np.arange(start, start + len(batch))
        y, w, g, t = figures(batch)
        np.testing.assert_array_equal(y, y_all[at])
        np.testing.assert_allclose(w, np.repeat(weights[at, None], 3, axis=1), rtol=1e-6)
        np.testing.assert_array_equal(g, members[at])
        np.testing.assert_array_equal(t, np.repeat(y_all[at, None], 3, axis=1))
    assert figures.columns == members.shape[1] == 4
    seen = [(p.numpy(), y.numpy(), g.numpy()) for _, _, p, y, _, g, _ in
            StreamedRows(split, spec, figures).dataset(batch_size=64, seed=2)]
    positions = np.concatenate([p for p, _, _ in seen])
    assert np.array_equal(np.sort(positions), np.arange(len(frame)))
    np.testing.assert_array_equal(np.concatenate([y for _, y, _ in seen]), y_all[positions])
    np.testing.assert_array_equal(np.concatenate([g for _, _, g in seen]), members[positions])
    from pipelines.training.stacked import train_stacked

    bounds = [1.0, 0.05, 0.02]
    trained = train_stacked(StreamedRows(split, spec, figures), None, compact_rows(frame, spec), y_all,
                            TrainConfig(hidden_units=[8], epochs=2, batch_size=64, early_stopping_patience=None),
                            bounds, val_groups=members, bounds=bounds, side=((2, "demographic_parity", 2.0, 0.0),))
    for _, history in trained:
        assert len(history["auc"]) == 2 and 0.0 <= history["auc"][-1] <= 1.0 and 0.0 <= history["accuracy"][-1] <= 1.0


def test_predictions_of_split_files_are_written_batch_by_batch_as_the_frame_gives_them(tmp_path):
    from pipelines.training.keras_model import prediction_frame, write_predictions
    from pipelines.training.train import build_model

    validation, test = _frame(300, seed=5), _frame(500, seed=6)
    spec = fit_feature_spec(validation, DATA)
    models = [build_model(spec.width, TrainConfig(hidden_units=[4], seed=s)) for s in (1, 2, 3)]
    fitted = {0.05: (models[1], {}), 1.0: (models[2], {})}
    files = {"validation": _write(validation, tmp_path / "validation.parquet", 120),
             "test": _write(test, tmp_path / "test.parquet", 120)}
    write_predictions(fitted, models[0], files, spec, tmp_path / "streamed.parquet")
    write_predictions(fitted, models[0], {"validation": validation, "test": test}, spec, tmp_path / "whole.parquet")
    whole = pd.read_parquet(tmp_path / "whole.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "streamed.parquet"), whole)
    pd.testing.assert_frame_equal(whole, prediction_frame(fitted, models[0], {"validation": validation, "test": test},
                                                          spec))
