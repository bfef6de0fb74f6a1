"""A staged rollout played day by day: telemetry in, the canary analysis, a decision, the next stage.

`analyse_day` is what the Dagster `canary_analysis` asset runs on stored telemetry; `play` drives a simulator
through the stages of deploy/production.yaml the way the daily analysis would, for tests and `fleet simulate`.
"""
from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from pipelines.core.config import Params, RolloutConfig
from pipelines.core.progress import track
from pipelines.fleet import canary, store
from pipelines.fleet.ingest import split


@dataclass
class Look:
    day: str
    stage: str
    decision: str
    reasons: list[str]
    tests: list[canary.Test]
    canary_devices: int


@dataclass
class Outcome:
    looks: list[Look] = field(default_factory=list)
    final: str = "hold"  # promoted (through every stage) | rollback | hold (ran out of days)
    seconds_analysis: float = 0.0
    seconds_simulation: float = 0.0
    devices_seen: int = 0  # distinct canary devices up to the decisive look
    stage_reached: str = ""

    @property
    def days(self) -> int:
        return len(self.looks)


def analyse(units_frame: pd.DataFrame, rollout: RolloutConfig, params: Params, stage_index: int,
            days_in_stage: int) -> tuple[str, list[str], list[canary.Test]]:
    """The decision for one look at the canary cohort of the current stage."""
    stage = rollout.stages[stage_index]
    tests = canary.evaluate(units_frame, "canary", "production", rollout.guardrails, params)
    soaked = days_in_stage * 24 >= stage.min_hours
    n = len(units_frame.loc["canary"]) if "canary" in set(units_frame.index.get_level_values(0)) else 0
    decision, reasons = canary.decide(tests, soaked, n >= params.fleet.min_devices)
    return decision, reasons, tests


def analyse_day(directory: Path, until: str, rollout: RolloutConfig, params: Params, stage_index: int,
                days_in_stage: int) -> tuple[str, list[str], list[canary.Test], int]:
    """The canary decision from the stored telemetry up to `until` (quarantined devices left out), queried in
    place."""
    source = store.shards(directory, until=until, exclude_quarantined=True)
    decision, reasons, tests = analyse(canary.units(source), rollout, params, stage_index, days_in_stage)
    return decision, reasons, tests, len(source.exclude)


def play(sim: Any, rollout: RolloutConfig, params: Params, days: int = 30, start: str = "2026-01-01",
         directory: Path | None = None, feature_devices: int = 0) -> Outcome:
    """Run the rollout until it is promoted through every stage, rolled back, or `days` run out."""
    outcome = Outcome()
    total: pd.DataFrame | None = None
    stage_index, days_in_stage = 0, 0
    first = dt.date.fromisoformat(start)
    last = len(rollout.stages) - 1
    for offset in track(range(days), "simulated days"):
        day = (first + dt.timedelta(days=offset)).isoformat()
        stage = rollout.stages[stage_index]
        began = time.perf_counter()
        records, features = sim.day(day, stage.percent, feature_devices)
        keep, quarantine = split(records, params.fleet)
        if directory is not None:
            store.write_batch(directory, f"sim-{day}", keep, quarantine, {day: features} if features else None)
        outcome.seconds_simulation += time.perf_counter() - began
        began = time.perf_counter()
        total = canary.add_units(total, keep)
        days_in_stage += 1
        decision, reasons, tests = analyse(total, rollout, params, stage_index, days_in_stage)
        outcome.seconds_analysis += time.perf_counter() - began
        n = len(total.loc["canary"]) if "canary" in set(total.index.get_level_values(0)) else 0
        outcome.looks.append(Look(day, stage.name, decision, reasons, tests, n))
        outcome.devices_seen, outcome.stage_reached = n, stage.name
        if decision == "rollback":
            outcome.final = "rollback"
            return outcome
        if decision == "promote":
            if stage_index + 1 >= last:  # the next stage is 100%: the rollout is complete
                outcome.final, outcome.stage_reached = "promoted", rollout.stages[last].name
                return outcome
            stage_index, days_in_stage = stage_index + 1, 0
    return outcome
