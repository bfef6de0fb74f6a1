"""Runs of this Dagster home whose process is gone are marked failed, so a killed run never holds the queue
(`max_concurrent_runs: 1`) forever. Called when `mobile-mlops run` starts, when the Definitions load (the
webserver's and daemon's code server) and on every schedule and sensor tick."""
from __future__ import annotations

import logging

from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus, RunsFilter

from pipelines.core.lock import alive, process_started_at

IN_PROGRESS = [DagsterRunStatus.STARTED, DagsterRunStatus.STARTING, DagsterRunStatus.CANCELING]
REASON = "mobile-mlops: the process that ran it (pid {pid}) is gone; marked failed so the queue moves on"


def _worker(instance: DagsterInstance, run_id: str) -> tuple[int, float] | None:
    """The pid and start time of the process that started the run (its RUN_START event), if it got that far."""
    records = instance.get_records_for_run(run_id, of_type=DagsterEventType.RUN_START, limit=1).records
    if not records or (event := records[0].event_log_entry.dagster_event) is None:
        return None
    entry = records[0].event_log_entry
    pid = event.pid
    return (pid, entry.timestamp) if pid else None


def gone(pid: int, since: float) -> bool:
    """The process is dead, or its pid now belongs to a process started after the run began."""
    if not alive(pid):
        return True
    started = process_started_at(pid)
    return started is not None and started > since + 1.0


HOST_TAG = "mobile-mlops/host"  # `mobile-mlops run` tags its runs with the machine whose pids it names


def local_processes(instance: DagsterInstance) -> bool:
    """Whether this instance's runs are processes of this machine (the local launcher): a pid means something
    here. A Kubernetes or other launcher's runs are left to Dagster's run monitoring, which asks the launcher."""
    from dagster._core.launcher import DefaultRunLauncher

    return type(instance.run_launcher) is DefaultRunLauncher


def fail_dead_runs(instance: DagsterInstance) -> list[str]:
    """Mark failed every in-progress run of this machine whose process is gone; return their ids. Never raises:
    a hook."""
    import socket

    failed: list[str] = []
    try:
        if not local_processes(instance):
            return failed
        for record in instance.get_run_records(filters=RunsFilter(statuses=IN_PROGRESS)):
            run = record.dagster_run
            if run.tags.get(HOST_TAG, socket.gethostname()) != socket.gethostname():
                continue  # another machine's run (a shared PostgreSQL home): its pids mean nothing here
            worker = _worker(instance, run.run_id)
            if worker is None or not gone(*worker):
                continue  # STARTING without a worker yet: run monitoring's start_timeout_seconds handles it
            instance.report_run_failed(run, REASON.format(pid=worker[0]))
            failed.append(run.run_id)
    except Exception:  # a hook must not break the run, tick or load that calls it
        logging.getLogger("mobile_mlops").warning("could not check for stale runs", exc_info=True)
    return failed


def fail_dead_runs_of_current_instance() -> list[str]:
    """fail_dead_runs on $DAGSTER_HOME's instance; nothing when no home is set."""
    import os

    if not os.environ.get("DAGSTER_HOME"):
        return []
    try:
        with DagsterInstance.get() as instance:
            return fail_dead_runs(instance)
    except Exception:  # see fail_dead_runs
        logging.getLogger("mobile_mlops").warning("could not open the Dagster instance", exc_info=True)
        return []
