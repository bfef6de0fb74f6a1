"""bin/stage's warm server: stages run in forks of it with the caller's folder, streams and exit code; a second
stage reuses it; a signal to the caller reaches the stage; `--stop` and MOBILE_MLOPS_STAGE_SERVER=0 work."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cli.stage_server import socket_path

STAGE = Path(sys.executable).parent / "mobile-mlops-stage"


def stage(project: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(STAGE), *args], cwd=project, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "MOBILE_MLOPS_STAGE_SERVER": "1",
                               "MOBILE_MLOPS_STAGE_SERVER_IDLE": "120"} | env)


def server_pid(project: Path) -> int:
    log = socket_path(project).with_suffix(".log").read_text()
    return int(log.rsplit(" pid ", 1)[1].split()[0])


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    from tests.conftest import write_small_project

    folder = tmp_path_factory.mktemp("staged")
    write_small_project(folder)
    yield folder
    stage(folder, "--stop")


@pytest.mark.skipif(not STAGE.exists(), reason="the mobile-mlops-stage script is not installed (make venv)")
def test_stages_run_in_forks_of_one_server(project):
    first = stage(project, "raw_dataset")
    assert first.returncode == 0, first.stderr
    assert "starting the stage server" in first.stderr
    assert "raw_dataset: rows = 2099" in first.stdout  # the test file opens with a note line; stdout reaches the caller
    assert (project / "data" / "raw" / "dataset.parquet").is_file()  # written in the caller's folder
    pid = server_pid(project)
    second = stage(project, "validated_dataset")
    assert second.returncode == 0, second.stderr
    assert "starting the stage server" not in second.stderr and "validated_dataset: rows" in second.stdout
    assert server_pid(project) == pid and socket_path(project).exists()

    failed = stage(project, "no_such_stage")  # the stage's exit code and its one-line error come back
    assert failed.returncode == 1
    assert failed.stderr.strip().startswith("error: unknown stage 'no_such_stage'")

    env = stage(project, "raw_dataset", MOBILE_MLOPS_TEST_MARK="x")  # the caller's environment, not the server's
    assert env.returncode == 0 and server_pid(project) == pid


@pytest.mark.skipif(not STAGE.exists(), reason="the mobile-mlops-stage script is not installed (make venv)")
def test_a_signal_to_the_caller_stops_the_stage(project):
    import yaml

    assert stage(project, "dataset_splits").returncode == 0
    path = project / "params.yaml"
    saved = path.read_text()
    params = yaml.safe_load(saved)  # a training far longer than the wait below, however fast the machine
    params["train"] = {**params.get("train", {}), "epochs": 100_000, "early_stopping_patience": None}
    path.write_text(yaml.safe_dump(params))
    try:
        caller = subprocess.Popen([str(STAGE), "trained_model"], cwd=project, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, env={**os.environ, "MOBILE_MLOPS_STAGE_SERVER": "1"})
        time.sleep(3)  # the fork is training
        caller.send_signal(signal.SIGTERM)
        assert caller.wait(timeout=60) == 128 + signal.SIGTERM
    finally:
        path.write_text(saved)
    assert not (project / "models" / "trained" / "model.keras").exists()  # nothing half-written


@pytest.mark.skipif(not STAGE.exists(), reason="the mobile-mlops-stage script is not installed (make venv)")
def test_stop_and_opt_out(project):
    assert stage(project, "raw_dataset").returncode == 0
    stage(project, "--stop")
    for _ in range(100):
        if not socket_path(project).exists():
            break
        time.sleep(0.1)
    assert not socket_path(project).exists()
    direct = stage(project, "raw_dataset", MOBILE_MLOPS_STAGE_SERVER="0")
    assert direct.returncode == 0 and "starting the stage server" not in direct.stderr
    assert not socket_path(project).exists()
