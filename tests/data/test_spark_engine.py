"""The Spark engine's checks before any step starts (params, a Java runtime, a reachable master), and its
validation's failure as the CLI shows it."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from cli.services import first_free
from pipelines.core.config import load_settings
from pipelines.core.errors import PipelineError
from pipelines.core.paths import ArtifactPaths
from pipelines.data.spark_engine import check_engine, check_java, master_addresses, spark_properties
from pipelines.data.steps import build_expectations, raw_dataset

CLI = [sys.executable, "-m", "cli.main"]


def closed_port() -> int:
    """A port in 19300-19399 that nothing listens on (bound, then released: a connection is refused)."""
    port = first_free(range(19300, 19400))
    if port is None:
        raise RuntimeError("no free port in 19300-19399")
    return port


def test_engine_defaults_to_local_and_spark_needs_no_check(small_project: Path) -> None:
    settings = load_settings(small_project / "params.yaml")
    assert settings.params.engine == "local"
    assert settings.params.spark.master == "local[*]"
    check_engine(load_settings(small_project / "params.yaml", {"spark.master": "spark://127.0.0.1:1"}))  # local: nothing checked


def test_unknown_engine_and_master_are_one_line(small_project: Path) -> None:
    with pytest.raises(PipelineError) as bad_engine:
        load_settings(small_project / "params.yaml", {"engine": "dask"})
    assert str(bad_engine.value) == "params.yaml: key 'engine': Input should be 'local' or 'spark' (got 'dask')"
    with pytest.raises(PipelineError) as bad_master:
        load_settings(small_project / "params.yaml", {"spark.master": "mesos://host:5050"})
    assert str(bad_master.value) == ("params.yaml: key 'spark.master': Value error, must be local, local[N], local[*], "
                                     "spark://HOST:PORT, k8s://https://HOST:PORT or yarn (got 'mesos://host:5050')")


def test_master_addresses() -> None:
    assert master_addresses("local[2]") == []
    assert master_addresses("spark://a:7077,b:7078") == [("a", 7077), ("b", 7078)]
    assert master_addresses("spark://a") == [("a", 7077)]
    assert master_addresses("k8s://https://10.0.0.1:6443") == [("10.0.0.1", 6443)]
    assert master_addresses("k8s://https://api.example") == [("api.example", 443)]
    with pytest.raises(PipelineError, match=r"^spark.master: 'spark://a:99999' has no valid port in 'a:99999'$"):
        master_addresses("spark://a:99999")


def test_unreachable_master_is_one_line(small_project: Path) -> None:
    port = closed_port()
    settings = load_settings(small_project / "params.yaml", {"engine": "spark", "spark.master": f"spark://127.0.0.1:{port}"})
    with pytest.raises(PipelineError) as failed:
        check_engine(settings)
    assert str(failed.value) == f"spark.master: cannot reach spark://127.0.0.1:{port} (connection refused)"


def test_reachable_master_passes(small_project: Path) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        check_engine(load_settings(small_project / "params.yaml", {"engine": "spark", "spark.master": f"spark://127.0.0.1:{port}"}))


def test_missing_java_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "jdk"
    empty.mkdir()
    monkeypatch.setenv("JAVA_HOME", str(empty))
    with pytest.raises(PipelineError) as no_home:
        check_java()
    assert str(no_home.value) == (f"engine spark: no Java runtime: JAVA_HOME={empty} has no bin/java (install "
                                  "openjdk-17-jre-headless or point JAVA_HOME at a Java 17+ home)")
    monkeypatch.delenv("JAVA_HOME")
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(PipelineError) as no_path:
        check_java()
    assert str(no_path.value) == ("engine spark: no Java runtime: `java` is not on PATH and JAVA_HOME is unset "
                                  "(install openjdk-17-jre-headless)")


def test_old_java_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    java = tmp_path / "jdk8" / "bin" / "java"
    java.parent.mkdir(parents=True)
    java.write_text('#!/bin/sh\necho \'openjdk version "1.8.0_412"\' >&2\n')
    java.chmod(0o755)
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "jdk8"))
    with pytest.raises(PipelineError) as old:
        check_java()
    assert str(old.value) == (f"engine spark: {java} is Java 8; Spark 4 needs Java 17 or later (install "
                              "openjdk-17-jre-headless)")


def test_installed_java_passes() -> None:
    assert "version" in check_java()


def test_properties_quiet_and_overridable(small_project: Path) -> None:
    config = load_settings(small_project / "params.yaml", {"spark.conf": {"spark.ui.enabled": "true", "spark.executor.memory": "4g"},
                                           "spark.driver_memory": "3g"}).params.spark
    properties = spark_properties(config)
    assert properties["spark.ui.enabled"] == "true"  # params win over the quiet defaults
    assert properties["spark.executor.memory"] == "4g"
    assert properties["spark.driver.memory"] == "3g"
    assert spark_properties(load_settings(small_project / "params.yaml").params.spark)["spark.ui.showConsoleProgress"] == "false"


def _listing(folder: Path) -> dict[str, float]:
    """Every file and its time, but the CLI's own library log (.mobile-mlops/logs: every failed command keeps one)."""
    return {str(p.relative_to(folder)): p.stat().st_mtime for p in folder.rglob("*")
            if p.relative_to(folder).parts[0] != ".mobile-mlops"}


@pytest.mark.parametrize("command", [["run"], ["stage", "raw_dataset"]])
def test_cli_stops_before_any_step(small_project: Path, command: list[str]) -> None:
    """`mobile-mlops run` (and a data stage) with an unreachable master or no JVM: one line, exit 1, nothing
    written."""
    port = closed_port()
    before = _listing(small_project)
    done = subprocess.run([*CLI, *command, "--params", str(small_project / "params.yaml"), "--set", "engine=spark", "--set",
                           f"spark.master=spark://127.0.0.1:{port}"], cwd=small_project, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [f"error: spark.master: cannot reach spark://127.0.0.1:{port} "
                                                "(connection refused)"]
    env = {**os.environ, "JAVA_HOME": str(small_project / "no-jdk")}
    done = subprocess.run([*CLI, *command, "--params", str(small_project / "params.yaml"), "--set", "engine=spark"],
                          cwd=small_project, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [f"error: engine spark: no Java runtime: JAVA_HOME="
                                                f"{small_project / 'no-jdk'} has no bin/java (install "
                                                "openjdk-17-jre-headless or point JAVA_HOME at a Java 17+ home)"]
    assert _listing(small_project) == before


@pytest.mark.slow  # two CLI processes, one of them starting a JVM
def test_cli_validation_failure_is_the_local_line(small_project: Path) -> None:
    """A suite failure judged by Great Expectations on Spark is the local engine's one line, exit code and validation
    report, byte for byte (three batches of the damaged data)."""
    settings = load_settings(small_project / "params.yaml")
    raw_dataset(settings)
    build_expectations(settings)
    raw = ArtifactPaths(small_project).raw_dataset
    damaged = pd.read_parquet(raw)
    damaged.loc[damaged.index % 97 == 5, "age"] = 500.0
    damaged.loc[damaged.index % 29 == 3, "workclass"] = "Guild"
    damaged.to_parquet(raw, index=False)
    found = {}
    for engine in ("local", "spark"):
        done = subprocess.run([*CLI, "stage", "validated_dataset", "--params", str(small_project / "params.yaml"),
                               "--set", f"engine={engine}", "--set", "spark.master=local[2]", "--set",
                               "spark.driver_memory=1g", "--set", "data.batch_rows=700"], cwd=small_project,
                              capture_output=True, text=True, timeout=600)
        lines = [line.split(" (library log: ")[0] for line in done.stderr.strip().splitlines()]  # the JVM's notes
        found[engine] = (done.returncode, lines, ArtifactPaths(small_project).validation_report.read_bytes())
    assert found["spark"] == found["local"]
    assert found["spark"][:2] == (1, ["error: gate expectations failed on validated_dataset: validation failed: column "
                                      "'age': expect_column_values_to_be_between (22 of 2099 rows; e.g. '500.0'; "
                                      "allowed 9.7 to 97.3); 1 more failed"])
