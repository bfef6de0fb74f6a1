"""`mobile-mlops services exporter`: the pipeline's own Prometheus metrics, read at each scrape.

- `mobile_mlops_budget_observed` / `mobile_mlops_budget_limit` {budget, month}: the latest month of the observed
  FinOps report (reports/fleet/observed_finops.json, written by `fleet finops` / the fleet_observed_finops asset),
  the figure and the gates.budgets limit exactly as the budget verdicts there computed them.
- `mobile_mlops_last_scheduled_success_timestamp_seconds` {job, schedule}: when the newest successful run the
  nightly schedule started ended (Dagster's run storage); absent until one has.
- `mobile_mlops_exporter_start_timestamp_seconds`: when this exporter started (the stalled-run rule's baseline
  before the first scheduled run).
Neither Dagster nor MLflow ships a Prometheus exporter in this environment (MLflow's `--expose-prometheus` needs
prometheus-flask-exporter, not in the lock), so this is what Prometheus scrapes for them.
"""
from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from pipelines.core.config import Settings
from pipelines.core.paths import FLEET_FINOPS_REPORT
from pipelines.fleet.observed_finops import budget_of

JOB = "release_job"  # assets.automation.JOB (tests check both names against the Definitions)
SCHEDULE = "nightly_retraining"  # the nightly schedule's name in assets/automation.py


def budget_samples(report: dict[str, Any]) -> list[tuple[str, str, float, float]]:
    """(gates.budgets key, month, observed figure, limit) for the report's latest month."""
    parsed = [(budget_of(b["name"]), b) for b in report.get("budgets", [])]
    rows = [(named[0], named[1], float(b["measured"]), float(b["threshold"])) for named, b in parsed if named]
    latest = max((month for _, month, _, _ in rows), default=None)
    return [row for row in rows if row[1] == latest]


def last_scheduled_success(instance: Any) -> float | None:
    """Unix time the newest successful run of JOB started by SCHEDULE ended; None if there is none."""
    from dagster import DagsterRunStatus, RunsFilter

    records = instance.get_run_records(RunsFilter(job_name=JOB, statuses=[DagsterRunStatus.SUCCESS],
                                                  tags={"dagster/schedule_name": SCHEDULE}), limit=1)
    if not records:
        return None
    record = records[0]
    return record.end_time or record.update_timestamp.timestamp()


def dagster_instance() -> Callable[[], Any] | None:
    """The instance of $DAGSTER_HOME (the stack's PostgreSQL storage), opened at the first scrape; None without it."""
    if not os.environ.get("DAGSTER_HOME"):
        return None
    opened: list[Any] = []

    def get() -> Any:
        if not opened:
            from dagster import DagsterInstance

            opened.append(DagsterInstance.get())
        return opened[0]
    return get


class PipelineCollector(Collector):
    """The gauges above, computed at each scrape from the report file and the Dagster instance."""

    def __init__(self, settings: Settings, instance: Callable[[], Any] | None = None):
        self.settings, self.instance, self.started = settings, instance, time.time()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        started = GaugeMetricFamily("mobile_mlops_exporter_start_timestamp_seconds", "When this exporter started")
        started.add_metric([], self.started)
        yield started
        observed = GaugeMetricFamily("mobile_mlops_budget_observed", "Observed figure of a gates.budgets key, latest "
                                     "month of the observed FinOps report", labels=["budget", "month"])
        limit = GaugeMetricFamily("mobile_mlops_budget_limit", "The gates.budgets limit that figure is held to",
                                  labels=["budget", "month"])
        report = self.settings.resolve(FLEET_FINOPS_REPORT)
        if report.is_file():
            for key, month, figure, bound in budget_samples(json.loads(report.read_text())):
                observed.add_metric([key, month], figure)
                limit.add_metric([key, month], bound)
        yield observed
        yield limit
        success = GaugeMetricFamily("mobile_mlops_last_scheduled_success_timestamp_seconds", "When the newest "
                                    "successful run started by the nightly schedule ended",
                                    labels=["dagster_job", "schedule"])
        if self.instance is not None and (when := last_scheduled_success(self.instance())) is not None:
            success.add_metric([JOB, SCHEDULE], when)
        yield success


def registry(settings: Settings, instance: Callable[[], Any] | None = None) -> CollectorRegistry:
    """A registry holding only the pipeline collector (no process metrics: one exporter, one purpose)."""
    made = CollectorRegistry(auto_describe=False)
    made.register(PipelineCollector(settings, instance))
    return made


def serve(settings: Settings, host: str, port: int, instance: Callable[[], Any] | None = None,
          say: Callable[..., None] = print) -> None:
    """Serve /metrics on host:port until SIGTERM or Ctrl-C."""
    server, thread = start_http_server(port, host, registry(settings, instance))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    say("pipeline exporter listening", url=f"http://{host}:{server.server_port}/metrics",
        report=str(Path(settings.resolve(FLEET_FINOPS_REPORT))))
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
        thread.join(10)
