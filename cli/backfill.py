"""`mobile-mlops services backfill`: daily_batch partitions backfilled on the stack, one run per day.

The backfill is Dagster's own (GraphQL `launchPartitionBackfill`, what the UI's *Materialize* dialog sends): the
daemon's backfill loop submits one run per partition to the run queue, the queue lets `mobile-mlops/ingest` runs
through side by side (deploy/services/dagster.yaml), and each run's step goes to a Celery worker.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from pipelines.core.errors import PipelineError

LAUNCH = """mutation($params: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $params) {
  __typename ... on LaunchBackfillSuccess { backfillId } ... on Error { message } } }"""
STATUS = """query($id: String!) { partitionBackfillOrError(backfillId: $id) { __typename
  ... on PartitionBackfill { status timestamp endTimestamp
    runs(limit: 10000) { runId status creationTime startTime endTime
      stepStats { stepKey status startTime endTime } } }
  ... on Error { message } } }"""
DONE = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}


@dataclass
class Backfill:
    """What a finished backfill did and where its time went (seconds; medians are per run)."""

    backfill_id: str
    status: str
    seconds: float
    succeeded: int
    failed: int
    workers: int
    launch_median: float  # run created -> run process started (queue, launch, code load)
    dispatch_median: float  # run started -> its step started on a worker (Celery)
    step_median: float  # the step itself, on the worker
    step_total: float  # every step's time summed: the workers' busy time

    def line(self) -> str:
        busy = self.step_total / max(self.seconds * self.workers, 1e-9)
        return (f"backfill {self.backfill_id}: {self.status}, {self.succeeded} partitions succeeded, {self.failed} "
                f"failed, in {self.seconds:.1f} s with {self.workers} worker(s); per run (median): queue + run "
                f"process start {self.launch_median:.1f} s, Celery dispatch {self.dispatch_median:.1f} s, step "
                f"{self.step_median:.1f} s; steps took {self.step_total:.1f} s in all ({busy:.0%} of the workers' time)")


def launch(client, days: list[str]) -> str:
    """Start Dagster's backfill of daily_batch over these days; its id."""
    from assets.partitions import INGEST_TAG

    result = client._execute(LAUNCH, {"params": {
        "partitionNames": days, "assetSelection": [{"path": ["daily_batch"]}],
        "tags": [{"key": INGEST_TAG, "value": "daily_batch"}], "title": f"daily_batch {days[0]}..{days[-1]}"}})
    answer = result["launchPartitionBackfill"]
    if answer["__typename"] != "LaunchBackfillSuccess":
        raise PipelineError(f"backfill not launched: {answer.get('message', answer['__typename']).splitlines()[0]}")
    return answer["backfillId"]


def status(client, backfill_id: str) -> dict:
    answer = client._execute(STATUS, {"id": backfill_id})["partitionBackfillOrError"]
    if answer["__typename"] != "PartitionBackfill":
        raise PipelineError(f"backfill {backfill_id}: {answer.get('message', answer['__typename'])}")
    return answer


def summarize(backfill_id: str, answer: dict, seconds: float, workers: int) -> Backfill:
    """The timing split of a finished backfill's runs."""
    runs = answer["runs"]
    launch_s, dispatch_s, step_s = [], [], []
    for run in runs:
        steps = [s for s in run["stepStats"] if s["startTime"] and s["endTime"]]
        if run["startTime"]:
            launch_s.append(run["startTime"] - run["creationTime"])
        if steps and run["startTime"]:
            dispatch_s.append(min(s["startTime"] for s in steps) - run["startTime"])
        step_s += [s["endTime"] - s["startTime"] for s in steps]
    median = (lambda xs: statistics.median(xs) if xs else 0.0)
    return Backfill(backfill_id, answer["status"], seconds, sum(r["status"] == "SUCCESS" for r in runs),
                    sum(r["status"] in ("FAILURE", "CANCELED") for r in runs), workers, median(launch_s),
                    median(dispatch_s), median(step_s), sum(step_s))


def backfill(folder: Path, days: int, start: date | None = None, timeout: float = 3600, say=print) -> Backfill:
    """Backfill `days` daily_batch partitions from `start` (default data.incoming.start_date) and wait."""
    from cli.services import Stack, _client
    from pipelines.core.config import load_settings
    from pipelines.data.partitions import day_keys

    stack = Stack.load(folder)
    first = start or load_settings(stack.params).params.data.incoming.start_date
    keys = day_keys(first, days)
    client = _client(stack)
    started = time.perf_counter()
    backfill_id = launch(client, keys)
    say(f"backfill {backfill_id} of {len(keys)} days ({keys[0]}..{keys[-1]}): {stack.url('dagster')}"
        f"/runs/b/{backfill_id}")
    deadline = time.monotonic() + timeout
    answer = status(client, backfill_id)
    while answer["status"] not in DONE:
        if time.monotonic() > deadline:
            raise PipelineError(f"backfill {backfill_id} still {answer['status']} after {timeout:.0f} s")
        time.sleep(1)
        answer = status(client, backfill_id)
    seconds = time.perf_counter() - started
    # the backfill ends when its last run does; its end time is Dagster's, the wall clock ours
    return summarize(backfill_id, answer, seconds, stack.workers)
