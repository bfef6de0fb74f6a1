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
from pipelines.core.progress import Progress

LAUNCH = """mutation($params: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $params) {
  __typename ... on LaunchBackfillSuccess { backfillId } ... on Error { message } } }"""
STATUS = """query($id: String!) { partitionBackfillOrError(backfillId: $id) { __typename
  ... on PartitionBackfill { status timestamp runs(limit: 10000) { runId status creationTime } }
  ... on Error { message } } }"""
DONE = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}
FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}  # run statuses that end a partition's run


EVENTS = """query($id: ID!) { runOrError(runId: $id) { ... on Run { status
  eventConnection(afterCursor: null) { events { __typename ... on MessageEvent { timestamp } } } } } }"""
# Where a run's time goes, as (phase, first event, last event) of its event log.
PHASES = (("queued", "RunEnqueuedEvent", "RunStartingEvent"),  # waiting for a slot, then handed to the launcher
          ("process start", "RunStartingEvent", "RunStartEvent"),  # a new Python process loads Dagster and the code
          ("celery dispatch", "RunStartEvent", "ExecutionStepStartEvent"),  # the step task reaches a worker
          ("step", "ExecutionStepStartEvent", "ExecutionStepSuccessEvent"),  # validation, drift, the .dvc record
          ("run end", "ExecutionStepSuccessEvent", "RunSuccessEvent"))


@dataclass
class Backfill:
    """What a finished backfill did and where its time went (seconds)."""

    backfill_id: str
    status: str
    seconds: float
    succeeded: int
    failed: int
    workers: int
    pickup: float  # backfill launched -> its first run created (the daemon's backfill loop wakes every 30 s)
    phases: dict[str, float]  # median seconds per run of each phase
    step_total: float  # every run's step summed: the time the workers were busy with the days' work

    def line(self) -> str:
        split = ", ".join(f"{name} {value:.1f} s" for name, value in self.phases.items())
        return (f"backfill {self.backfill_id}: {self.status}, {self.succeeded} partitions succeeded, {self.failed} "
                f"failed, in {self.seconds:.1f} s with {self.workers} worker(s); the daemon created the runs after "
                f"{self.pickup:.1f} s; per run (median): {split}; steps in all {self.step_total:.1f} s")


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


def run_phases(client, run_id: str) -> dict[str, float]:
    """Seconds of each phase of one run, from its event log (a phase whose events are missing is left out)."""
    events = client._execute(EVENTS, {"id": run_id})["runOrError"]["eventConnection"]["events"]
    first: dict[str, float] = {}
    for event in events:
        if event.get("timestamp"):
            first.setdefault(event["__typename"], float(event["timestamp"]) / 1000)
    return {name: first[end] - first[begin] for name, begin, end in PHASES if begin in first and end in first}


def summarize(client, backfill_id: str, answer: dict, seconds: float, workers: int) -> Backfill:
    """The timing split of a finished backfill's runs."""
    runs = answer["runs"]
    per_run = [run_phases(client, run["runId"]) for run in runs]
    phases = {name: statistics.median(values) for name, *_ in PHASES
              if (values := [p[name] for p in per_run if name in p])}
    pickup = min((r["creationTime"] for r in runs), default=answer["timestamp"]) - answer["timestamp"]
    return Backfill(backfill_id, answer["status"], seconds, sum(r["status"] == "SUCCESS" for r in runs),
                    sum(r["status"] in ("FAILURE", "CANCELED") for r in runs), workers, pickup, phases,
                    sum(p.get("step", 0.0) for p in per_run))


def backfill(folder: Path, days: int, start: date | None = None, timeout: float = 3600, say=print) -> Backfill:
    """Backfill `days` daily_batch partitions from `start` (default data.incoming.start_date) and wait."""
    from cli.services import Stack, _client
    from pipelines.core.config import load_settings
    from pipelines.data.partitions import day_keys

    stack = Stack.load(folder)
    first = start or load_settings(stack.params).params.data.incoming.first_day
    keys = day_keys(first, days)
    client = _client(stack)
    started = time.perf_counter()
    backfill_id = launch(client, keys)
    say(f"backfill {backfill_id} of {len(keys)} days ({keys[0]}..{keys[-1]}): {stack.url('dagster')}"
        f"/runs/b/{backfill_id}")
    deadline = time.monotonic() + timeout
    answer = status(client, backfill_id)
    with Progress(f"backfill {backfill_id}", len(keys)) as bar:
        while answer["status"] not in DONE:
            if time.monotonic() > deadline:
                raise PipelineError(f"backfill {backfill_id} still {answer['status']} after {timeout:.0f} s")
            time.sleep(1)
            answer = status(client, backfill_id)
            finished = sum(r["status"] in FINISHED for r in answer["runs"])
            if finished > bar.done:
                bar.advance(finished - bar.done, note=f"runs finished ({answer['status'].lower()})")
    return summarize(client, backfill_id, answer, time.perf_counter() - started, stack.workers)
