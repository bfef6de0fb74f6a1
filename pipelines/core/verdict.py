"""A gated stage's verdict: its gates evaluated right after its step, written to reports/gates/<stage>.json.

The stage catalog names each stage's gates (pipelines/catalog.py); `gated` wraps the step so every orchestrator
(`mobile-mlops stage`, i.e. `dvc repro`, and the Dagster asset) evaluates them at the same point and stops on the
same one line. Stages downstream (the release) read the verdict instead of deciding again.
"""
from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines.core.config import Settings
from pipelines.core.errors import PipelineError
from pipelines.core.gates import GateResult
from pipelines.core.io import read_json, write_json
from pipelines.core.paths import ArtifactPaths, verdict_file
from pipelines.core.step import StepResult

SCHEMA = 1


@dataclass(frozen=True)
class Outcome:
    """What a gate function finds: its results, whether a failure stops the run, and why (one line)."""

    results: list[GateResult]
    blocking: bool = True
    description: str | None = None  # default: the failed results' details, or "all gates passed"
    tables: dict[str, str] = field(default_factory=dict)  # title -> Markdown (Dagster check metadata)
    plots: dict[str, Path] = field(default_factory=dict)  # title -> PNG
    facts: dict[str, int | float] = field(default_factory=dict)  # further numbers shown beside the gates

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    def line(self) -> str:
        failed = [r.detail for r in self.results if not r.passed]
        return self.description or "; ".join(failed) or "all gates passed"


GateFn = Callable[[Settings], Outcome]


class GateFailed(PipelineError):
    """A blocking gate of the stage failed: the one line names the gate, the stage and why.

    `result` is the step's own result (None when the step itself failed, as validation does): Dagster still
    records the asset with its failed check, which blocks everything downstream."""

    def __init__(self, message: str, result: StepResult | None):
        super().__init__(message)
        self.result = result


def failure_line(check: str, stage: str, description: str) -> str:
    """The one line a failed blocking gate stops a run with, under every orchestrator."""
    return f"gate {check} failed on {stage}: {description}"


def _entry(name: str, outcome: Outcome, root: Path) -> dict[str, Any]:
    return {"name": name, "passed": outcome.passed, "blocking": outcome.blocking, "description": outcome.line(),
            "gates": [{"name": r.name, "figure": r.measured, "limit": r.threshold, "detail": r.detail,
                       "passed": r.passed, "blocking": outcome.blocking} for r in outcome.results],
            "tables": outcome.tables, "facts": outcome.facts,
            "plots": {title: (str(png.relative_to(root)) if png.is_relative_to(root) else str(png))
                      for title, png in outcome.plots.items()}}


def write_verdict(stage: str, outcomes: dict[str, Outcome], settings: Settings) -> dict[str, Any]:
    """Write reports/gates/<stage>.json from the stage's gate outcomes (name -> outcome); return it."""
    checks = [_entry(name, outcome, settings.root) for name, outcome in outcomes.items()]
    stopping = next((c for c in checks if c["blocking"] and not c["passed"]), None)
    verdict = {"schema": SCHEMA, "stage": stage, "passed": all(c["passed"] for c in checks),
               "stops": stopping is not None,
               "message": failure_line(stopping["name"], stage, stopping["description"]) if stopping else None,
               "checks": checks}
    write_json(ArtifactPaths(settings.root).verdict(stage), verdict)
    return verdict


def gated(stage: str, step: Callable[..., StepResult],
          gates: Sequence[tuple[str, GateFn, bool]]) -> Callable[..., StepResult]:
    """The step, then its gates (name, function, also when the step fails) and the verdict; a failed blocking
    gate raises GateFailed with the one line. Without gates, the step unchanged."""
    if not gates:
        return step

    @functools.wraps(step)
    def run(settings: Settings, *args: Any, **kwargs: Any) -> StepResult:
        try:
            result = step(settings, *args, **kwargs)
        except PipelineError as failed:
            ArtifactPaths(settings.root).verdict(stage).unlink(missing_ok=True)  # no verdict of an earlier run
            after = [(name, fn) for name, fn, on_failure in gates if on_failure]
            try:  # a gate that judges the failure itself (the expectation suite): only from what this run wrote
                outcomes = {name: fn(settings) for name, fn in after}
            except PipelineError:
                raise failed from None
            if not outcomes:
                raise
            verdict = write_verdict(stage, outcomes, settings)
            if verdict["stops"]:
                raise GateFailed(verdict["message"], None) from failed
            raise
        verdict = write_verdict(stage, {name: fn(settings) for name, fn, _ in gates}, settings)
        if verdict["stops"]:
            raise GateFailed(verdict["message"], result)
        return result

    return run


def read_verdict(root: Path, stage: str) -> dict[str, Any]:
    """A stage's verdict as written; one line when it is missing or from another format."""
    path = ArtifactPaths(root).verdict(stage)
    if not path.is_file():
        raise PipelineError(f"{verdict_file(stage)}: not found; run the {stage} stage first")
    verdict = read_json(path)
    if not isinstance(verdict, dict) or verdict.get("schema") != SCHEMA or verdict.get("stage") != stage:
        raise PipelineError(f"{verdict_file(stage)}: not a verdict of stage {stage} (schema {SCHEMA}); "
                            "run the stage again")
    return verdict


def require_passed(verdicts: Sequence[dict[str, Any]]) -> None:
    """Stop at the first verdict whose blocking gate failed, with the line that stopped (or should have) its stage."""
    for verdict in verdicts:
        if verdict["stops"]:
            raise PipelineError(verdict["message"])


def results(verdict: dict[str, Any], blocking: bool | None = None) -> list[GateResult]:
    """The verdict's gate results (of blocking or of warning-only checks, or all), as GateResult."""
    return [GateResult(g["name"], g["passed"], g["figure"], g["limit"], g["detail"])
            for check in verdict["checks"] if blocking is None or check["blocking"] == blocking
            for g in check["gates"]]
