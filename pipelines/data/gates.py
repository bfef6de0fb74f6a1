"""The data stages' gates (named in the stage catalog): the expectation suite and drift against the reference."""
from __future__ import annotations

from pipelines.core.config import Settings
from pipelines.core.errors import PipelineError
from pipelines.core.gates import GateResult
from pipelines.core.io import read_json
from pipelines.core.paths import VALIDATION_REPORT, ArtifactPaths
from pipelines.core.verdict import Outcome
from pipelines.data.expectations import describe_failure
from pipelines.data.steps import drift_message, drift_table, expectations_table


def expectations(settings: Settings) -> Outcome:
    """The Great Expectations suite passed on the raw rows (judged also when validation stopped the step)."""
    path = ArtifactPaths(settings.root).validation_report
    if not path.is_file():
        raise PipelineError(f"{VALIDATION_REPORT}: not found; run the validated_dataset stage first")
    report = read_json(path)
    outcome = report["expectations"]
    failed = outcome["failed"]
    line = describe_failure(outcome) if failed else f"all {outcome['evaluated']} expectations passed"
    return Outcome([GateResult("expectations", bool(report["success"]), float(len(failed)), 0.0, line)],
                   description=line, tables={"expectations": expectations_table(outcome)},
                   facts={"failed": len(failed), "evaluated": outcome["evaluated"]})


def drift(settings: Settings) -> Outcome:
    """Today's data has not drifted from the reference release; blocks only when drift.blocking."""
    paths = ArtifactPaths(settings.root)
    report = read_json(paths.drift_report)
    line = drift_message(report) if report["drift"] else (
        f"no drift against {report['reference']}" if report["reference"] else report["reason"])
    result = GateResult("no_drift", not report["drift"], float(len(report["drifted"])), 0.0, line)
    plots = {"psi_chart": paths.drift_plot} if paths.drift_plot.is_file() else {}
    return Outcome([result], blocking=bool(report["blocking"]), description=line,
                   tables={"drift": drift_table(report), "reference": report["reason"]}, plots=plots)
