"""A run whose process died stays STARTED in the Dagster home and would hold the queue (max_concurrent_runs: 1)
forever: fail_dead_runs marks it failed with a reason; a live run is left alone; the home's monitoring is on."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import yaml
from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

from assets.stale_runs import IN_PROGRESS, REASON, fail_dead_runs, gone
from cli.quiet import dagster_home

STARTED = """
import os, sys
from dagster import DagsterEvent, DagsterEventType, DagsterInstance, job, op

@op
def step():
    pass

@job
def release_job():
    step()

with DagsterInstance.get() as instance:
    run = instance.create_run_for_job(release_job, tags={"mobile-mlops/host": sys.argv[2]} if sys.argv[2] else None)
    event = DagsterEvent(DagsterEventType.RUN_START.value, job_name=run.job_name, pid=os.getpid())
    instance.report_dagster_event(event, run_id=run.run_id)
    print(run.run_id, flush=True)
    if sys.argv[1] == "stay":
        sys.stdin.readline()  # alive until the test closes stdin
"""


def _started_run(home: Path, stay: bool, host: str = "") -> tuple[str, subprocess.Popen]:
    process = subprocess.Popen([sys.executable, "-c", STARTED, "stay" if stay else "exit", host], text=True,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, env={**os.environ, "DAGSTER_HOME": str(home)})
    run_id = process.stdout.readline().strip()
    if not stay:
        process.wait(timeout=60)
    return run_id, process


def test_a_started_run_of_a_dead_process_is_failed_with_a_reason_and_a_live_one_is_kept(tmp_path: Path, monkeypatch):
    home = dagster_home(tmp_path / "home")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    dead, _ = _started_run(home, stay=False, host=socket.gethostname())
    elsewhere, _ = _started_run(home, stay=False, host="another-machine")  # a shared home: not ours to judge
    live, holder = _started_run(home, stay=True)
    try:
        with DagsterInstance.get() as instance:
            assert instance.get_run_by_id(dead).status == DagsterRunStatus.STARTED  # what blocked the queue
            assert fail_dead_runs(instance) == [dead]
            assert instance.get_run_by_id(dead).status == DagsterRunStatus.FAILURE
            assert instance.get_run_by_id(live).status == DagsterRunStatus.STARTED
            messages = [e.message for e in instance.all_logs(dead) if e.message]
            pid = next(e.dagster_event.pid for e in instance.all_logs(dead) if e.dagster_event and e.dagster_event.pid)
            assert REASON.format(pid=pid) in messages
            in_progress = instance.get_run_records(filters=RunsFilter(statuses=IN_PROGRESS))
            assert sorted(r.dagster_run.run_id for r in in_progress) == sorted([live, elsewhere])
            assert fail_dead_runs(instance) == []  # idempotent
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)


def test_a_reused_pid_counts_as_gone():
    import time

    assert not gone(os.getpid(), since=time.time())  # started before the run it ran: still its process
    assert gone(os.getpid(), since=0.0)  # a process started after the run began holds the pid: reused
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert gone(child.pid, since=time.time())


def test_run_monitoring_is_on_in_the_local_home_and_an_old_home_of_ours_is_brought_up_to_date(tmp_path: Path,
                                                                                              monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    home.mkdir()
    (home / "dagster.yaml").write_text("# Written by mobile-mlops: no usage telemetry, no first-run dialog in the UI, "
                                       "and one queued run at a time\ntelemetry:\n  enabled: false\n")
    config = yaml.safe_load((dagster_home(home) / "dagster.yaml").read_text())
    assert config["run_monitoring"] == {"enabled": True, "start_timeout_seconds": 180, "max_runtime_seconds": 86400,
                                        "poll_interval_seconds": 60}
    with DagsterInstance.from_config(str(home)) as instance:
        assert instance.run_monitoring_enabled
        assert instance.run_monitoring_start_timeout_seconds == 180


def test_a_schedule_tick_frees_the_queue_of_a_dead_run_before_it_asks_for_a_run(small_project: Path, monkeypatch):
    from dagster import RunRequest, build_schedule_context

    from assets.build import build_definitions
    from assets.resources import SettingsResource
    from pipelines.core.config import load_settings

    home = dagster_home(small_project / ".dagster")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    dead, _ = _started_run(home, stay=False)
    settings = load_settings(small_project / "params.yaml")
    defs = build_definitions(settings)
    nightly = defs.resolve_schedule_def("nightly_retraining")
    with DagsterInstance.get() as instance:
        request = nightly(build_schedule_context(instance=instance, repository_def=defs.get_repository_def(),
                                                 resources={"settings": SettingsResource.of(settings)}))
        assert isinstance(request, RunRequest)  # nothing materialized yet: everything is stale
        assert instance.get_run_by_id(dead).status == DagsterRunStatus.FAILURE  # the queue can launch it
