"""The registered version is a real MLflow Model: raw rows in, the Keras model's probabilities out, in-process and
over HTTP from `mlflow models serve` (the cloud offload endpoint)."""
from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cli.services import free_port
from pipelines.core.config import load_settings
from tests.conftest import write_small_project


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small project trained up to trained_model, its version released as `candidate`."""
    from pipelines.data import steps as data_steps
    from pipelines.training.steps import trained_model
    from pipelines.training.tracking import CANDIDATE_ALIAS, mark_released

    folder = tmp_path_factory.mktemp("pyfunc")
    write_small_project(folder)
    saved = os.environ.pop("MLFLOW_TRACKING_URI", None)
    settings = load_settings(folder / "params.yaml", {"fairness.strength": 0})
    for step in (data_steps.raw_dataset, data_steps.validated_dataset, data_steps.data_drift, data_steps.dataset_splits):
        step(settings)
    record = trained_model(settings).summary
    mark_released(settings, record["model_name"], record["model_version"], "releases/x/1")
    yield settings, record, CANDIDATE_ALIAS
    if saved is not None:
        os.environ["MLFLOW_TRACKING_URI"] = saved


def keras_probabilities(settings, rows: pd.DataFrame) -> np.ndarray:
    from pipelines.data.features import encode_features
    from pipelines.training.keras_model import load_trained
    from pipelines.training.train import predict_keras

    model, spec, _ = load_trained(settings)
    return predict_keras(model, encode_features(rows, spec))


def raw_rows(settings, count: int = 200) -> pd.DataFrame:
    from pipelines.data.split import load_split

    return load_split(settings, "test").head(count).drop(columns=[settings.params.data.label])


def test_the_candidate_loads_as_a_pyfunc_with_a_signature_and_matches_keras(trained, monkeypatch):
    import mlflow.pyfunc

    from pipelines.training.tracking import tracking_uri

    settings, record, alias = trained
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_uri(settings))
    uri = f"models:/{record['model_name']}@{alias}"
    model = mlflow.pyfunc.load_model(uri)
    inputs = {c.name for c in model.metadata.get_input_schema().inputs}
    assert inputs == {"age", "workclass", "education", "education-num", "marital-status", "occupation",
                      "relationship", "capital-gain", "capital-loss", "hours-per-week", "native-country"}
    assert model.metadata.saved_input_example_info is not None
    pins = Path(mlflow.pyfunc.get_model_dependencies(uri)).read_text().split()
    assert {"tensorflow-cpu", "keras", "pandas", "pyyaml"} <= {pin.split("==")[0] for pin in pins}  # what serving imports
    rows = raw_rows(settings)
    served = np.asarray(model.predict(rows), dtype=np.float64).reshape(-1)
    assert served.shape == (len(rows),)
    np.testing.assert_allclose(served, keras_probabilities(settings, rows), atol=1e-6, rtol=0)


@contextlib.contextmanager
def serving(model_uri: str, env: dict[str, str], seconds: int) -> Iterator[int]:
    """`mlflow models serve` of `model_uri` on a free loopback port, once it answers /ping; stopped after."""
    port = free_port()
    mlflow = Path(sys.executable).parent / "mlflow"
    server = subprocess.Popen(
        [str(mlflow), "models", "serve", "-m", model_uri, "--env-manager", "local",
         "-h", "127.0.0.1", "-p", str(port), "-w", "1"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + seconds
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2).read()
                break
            except OSError:
                assert server.poll() is None, server.stderr.read().decode()[-2000:]
                assert time.monotonic() < deadline, f"mlflow models serve did not answer /ping within {seconds} s"
                time.sleep(1)
        yield port
    finally:
        if server.poll() is None:
            os.killpg(server.pid, 15)
            server.wait(timeout=30)


def invocations(port: int, rows) -> np.ndarray:
    """The served model's predictions for raw rows, as a flat float array."""
    body = json.dumps({"dataframe_split": json.loads(rows.to_json(orient="split", index=False))}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=body,
                                     headers={"Content-Type": "application/json"})
    answer = json.loads(urllib.request.urlopen(request, timeout=60).read())
    return np.asarray(answer["predictions"], dtype=np.float64).reshape(-1)


def test_mlflow_models_serve_answers_invocations_with_the_keras_probabilities(trained):
    from pipelines.training.tracking import tracking_uri

    settings, record, alias = trained
    venv = Path(sys.executable).parent  # the server execs `uvicorn` from PATH
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri(settings), "PATH": f"{venv}:{os.environ['PATH']}"}
    with serving(f"models:/{record['model_name']}@{alias}", env, 120) as port:
        rows = raw_rows(settings)
        np.testing.assert_allclose(invocations(port, rows), keras_probabilities(settings, rows), atol=1e-6, rtol=0)
        bad = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", headers={"Content-Type": "application/json"},
                                     data=json.dumps({"dataframe_split": {"columns": ["age"], "data": [[30]]}}).encode())
        with pytest.raises(urllib.error.HTTPError) as refused:  # a row without the spec's columns is refused
            urllib.request.urlopen(bad, timeout=60)
        assert refused.value.code == 400


def csv_rows(settings, count: int = 100) -> pd.DataFrame:
    """Rows of the raw CSV as pandas reads it (ints as int64, no project typing), label column dropped."""
    data = settings.params.data
    frame = pd.read_csv(settings.resolve(data.source), names=data.columns, skipinitialspace=True, nrows=count)
    return frame.drop(columns=[data.label])


def test_the_pyfunc_accepts_raw_csv_rows_and_still_refuses_a_missing_column(trained, monkeypatch):
    import mlflow.pyfunc
    from mlflow.exceptions import MlflowException

    from pipelines.training.tracking import tracking_uri

    settings, record, alias = trained
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_uri(settings))
    model = mlflow.pyfunc.load_model(f"models:/{record['model_name']}@{alias}")
    rows = csv_rows(settings)
    assert rows["age"].dtype == np.int64 and rows["hours-per-week"].dtype == np.int64
    served = np.asarray(model.predict(rows), dtype=np.float64).reshape(-1)
    typed = rows.astype({c: "float64" for c in rows.columns if rows[c].dtype == np.int64})
    np.testing.assert_allclose(served, keras_probabilities(settings, typed), atol=1e-6, rtol=0)
    with pytest.raises(MlflowException, match=r"Model is missing inputs \['age'\]"):
        model.predict(rows.drop(columns=["age"]))
    words = rows.astype({"age": object})
    words.loc[3, "age"] = "thirty"
    with pytest.raises(MlflowException, match=r"^column 'age': 1 value\(s\) are not numbers, e.g. 'thirty'$"):
        model.predict(words)


def test_mobile_mlops_serve_answers_raw_csv_rows_without_the_venv_on_path(trained):

    settings, _record, _alias = trained
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["PATH"] = "/usr/bin:/bin"  # as in a fresh shell: .venv/bin is not on it
    cli = Path(sys.executable).parent / "mobile-mlops"
    server = subprocess.Popen([str(cli), "serve", "--params", str(settings.path), "--port", str(port)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2).read()
                break
            except OSError:
                assert server.poll() is None, server.stderr.read().decode()[-2000:]
                assert time.monotonic() < deadline, "mobile-mlops serve did not answer /ping within 120 s"
                time.sleep(1)
        rows = csv_rows(settings, 20)
        typed = rows.astype({c: "float64" for c in rows.columns if rows[c].dtype == np.int64})
        np.testing.assert_allclose(invocations(port, rows), keras_probabilities(settings, typed), atol=1e-6, rtol=0)
    finally:
        if server.poll() is None:
            os.killpg(server.pid, 15)
            server.wait(timeout=30)


def test_mlflows_pin_check_is_skipped_only_while_saving_and_restored_after_an_error():
    from mlflow.utils import environment

    from pipelines.training.pyfunc import _pins_from_this_environment

    original = environment.warn_dependency_requirement_mismatches
    with pytest.raises(RuntimeError), _pins_from_this_environment():
        assert environment.warn_dependency_requirement_mismatches is not original
        raise RuntimeError("saving failed")
    assert environment.warn_dependency_requirement_mismatches is original
