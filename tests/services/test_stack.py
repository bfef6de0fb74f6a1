"""The whole graph on PostgreSQL + Celery + an MLflow server: a release that verifies, the served model, a worker
killed mid-step, two runs queued at once, a backfill of daily partitions. The tests share one stack and run in this
order (each builds on the releases before it); ~6 minutes on 2 cores, plus ~1 for the three-day backfill."""
from __future__ import annotations

import itertools
import json
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from cli import services

pytestmark = [pytest.mark.services, pytest.mark.slow]
MODEL = "adult-income"


def releases(project: Path) -> list[Path]:
    return sorted((project / "releases" / MODEL).glob("[0-9]*"), key=lambda p: int(p.name))


def verifies(folder: Path) -> bool:
    """`mobile-mlops verify` against the keys its project trusts."""
    from cli.main import main

    return main(["verify", str(folder), "--params", str(folder.parents[2] / "params.yaml")]) == 0


def lineage(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_text())["lineage"]


def test_the_whole_graph_on_the_stack_publishes_a_release_that_verifies(stack, instance):
    project, started = stack
    run_id, status, seconds = services.run(started.folder, timeout=900)
    assert status == "SUCCESS", f"run {run_id}: {status} (logs in {started.folder / 'logs'})"
    published = releases(project)
    # the profile's running data-version sensor queues a run of its own when the stack starts; when its run goes
    # first it publishes too (this run then re-runs everything): one or two releases, each verifying
    assert 1 <= len(published) <= 2 and all(verifies(folder) for folder in published), published
    record = json.loads((project / "models" / "trained" / "mlflow.json").read_text())
    assert record["tracking_uri"] == started.url("mlflow")  # tracked on the server, not a local SQLite file
    assert not (project / "mlflow.db").exists() and not (project / "mlartifacts").exists()
    assert any((started.folder / "mlartifacts").rglob("MLmodel"))  # artifacts went through the server's proxy
    steps = {e.step_key for e in instance.all_logs(run_id) if e.is_dagster_event and e.dagster_event.is_step_success}
    assert {"raw_dataset", "trained_model", "release_candidate"} <= steps  # the run and its events are in Postgres
    done_by = {name: (started.folder / "logs" / f"{name}.log").read_text().count("succeeded in")
               for name in ("worker1", "worker2")}
    assert sum(done_by.values()) >= len(steps) and all(done_by.values()), done_by  # both workers took steps
    logged = [json.loads(line) for name in ("worker1", "worker2")  # JSON lines, the run's steps named in them
              for line in (started.folder / "logs" / f"{name}.log").read_text().splitlines()]
    assert steps <= {r.get("step") for r in logged if r.get("run_id") == run_id}, "steps missing from the JSON logs"
    print(f"\nstack run: {seconds:.1f} s ({done_by})")


def test_mlflow_models_serve_answers_with_the_released_float_model(stack):
    from pipelines.core.config import load_settings
    from tests.training.test_pyfunc import invocations, keras_probabilities, raw_rows, serving

    project, started = stack
    version = lineage(releases(project)[-1])["model_version"]
    settings = load_settings(project / "params.yaml")
    with serving(f"models:/{MODEL}@candidate", started.env(), 180) as port:
        rows = raw_rows(settings, 300)
        np.testing.assert_allclose(invocations(port, rows), keras_probabilities(settings, rows), atol=1e-6, rtol=0)
        endpoint = (releases(project)[-1] / "offload_endpoint.yaml").read_text()
        assert f"models:/{MODEL}/{version}" in endpoint  # the release's endpoint manifest names this model version


def test_a_worker_killed_mid_step_ends_in_a_complete_run_or_a_clean_failure(stack, instance):
    from celery import Celery
    from dagster import DagsterEventType

    project, started = stack
    before = releases(project)
    path = project / "params.yaml"
    saved = path.read_text()
    params = yaml.safe_load(saved)  # a training long enough to be caught: the small project's takes a few seconds
    params["train"] = {**params.get("train", {}), "epochs": 60, "early_stopping_patience": None}
    path.write_text(yaml.safe_dump(params))
    try:
        run_id = services.submit(started.folder)
        deadline = time.monotonic() + 600
        while not any(e.step_key == "trained_model"
                      for e in instance.all_logs(run_id, of_type=DagsterEventType.STEP_START)):
            assert time.monotonic() < deadline, "trained_model never started"
            time.sleep(0.5)
        app = Celery(broker=started.url("broker"), backend=started.url("backend"))
        victims: list[int] = []
        while not victims:  # the pool process running trained_model: what dies when a worker machine does
            active = app.control.inspect(timeout=3).active() or {}
            victims = [task["worker_pid"] for tasks in active.values() for task in tasks
                       if "trained_model" in json.dumps(task.get("kwargs", {}))]
            assert time.monotonic() < deadline, "no Celery task was running trained_model"
        os.kill(victims[0], signal.SIGKILL)
        status = services.wait(started.folder, run_id, timeout=900)
    finally:
        path.write_text(saved)
    after = releases(project)
    assert status in ("SUCCESS", "FAILURE"), status
    if status == "SUCCESS":  # the broker gave the step to a worker again and the run completed
        assert len(after) == len(before) + 1 and verifies(after[-1])
    else:  # a clean failure: no new release, every published one intact
        assert after == before
    assert all(verifies(folder) for folder in after)
    from pipelines.core.config import load_settings
    from pipelines.training.tracking import _client  # the registry names every version it holds, none half-made

    os.environ["MLFLOW_TRACKING_URI"] = started.url("mlflow")
    try:
        client = _client(load_settings(project / "params.yaml"))
        for release in after:
            version = lineage(release)["model_version"]
            assert client.get_model_version(MODEL, version).tags["mobile-mlops.release"].endswith(release.name)
    finally:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    print(f"\nkilled pid {victims[0]} during trained_model: run {status}")


def test_two_runs_queued_at_once_never_overlap_and_neither_publishes_twice(stack, instance):
    project, started = stack
    ids = [services.submit(started.folder), services.submit(started.folder)]
    statuses = [services.wait(started.folder, run_id, timeout=900) for run_id in ids]
    assert statuses == ["SUCCESS", "SUCCESS"], statuses
    first, second = sorted((instance.get_run_record_by_id(i) for i in ids), key=lambda r: r.start_time)
    assert first.end_time <= second.start_time  # the queue's per-model limit: one run of a model at a time
    # a candidate whose content a release already ships is not published again (idempotent publishing), and the
    # profile's running sensor may queue runs of its own: what was published, by any run, verifies
    assert all(verifies(folder) for folder in releases(project))
    versions = [lineage(folder)["model_version"] for folder in releases(project)]
    assert len(set(versions)) == len(versions)  # each release names its own registered version


def test_a_backfill_of_daily_partitions_runs_one_run_per_day_side_by_side(stack, instance):
    from dagster import AssetKey, RunsFilter

    from assets.partitions import INGEST_TAG
    from cli.backfill import backfill
    from pipelines.core.config import load_settings
    from pipelines.data.landing import split_source
    from pipelines.data.partitions import record_path

    project, started = stack
    written = split_source(load_settings(project / "params.yaml"), 3)  # the 1,500 training rows as three days
    done = backfill(started.folder, 3, timeout=600)
    assert (done.status, done.succeeded, done.failed) == ("COMPLETED_SUCCESS", 3, 0), done.line()
    assert instance.get_materialized_partitions(AssetKey("daily_batch")) == {f.stem for f in written}
    assert all(record_path(f).is_file() for f in written)  # each accepted day carries its DVC record
    runs = instance.get_run_records(RunsFilter(tags={INGEST_TAG: "daily_batch"}))
    assert len(runs) == 3 and all(r.dagster_run.tags.get("dagster/partition") for r in runs)
    spans = sorted((r.start_time, r.end_time) for r in runs)
    assert any(later[0] < earlier[1] for earlier, later in itertools.pairwise(spans)), spans  # days ran side by side
    print(f"\n{done.line()}")
