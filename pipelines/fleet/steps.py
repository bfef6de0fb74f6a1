"""Fleet steps (post-release, outside dvc.yaml): read telemetry, call the logic, write reports atomically.

The four assets' steps (fleet_telemetry, canary_analysis, observed_finops, production_drift: catalog entries of kind
post_release) return a StepResult like every stage; the report functions they call also serve the CLI."""
from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path
from typing import Any

import pandas as pd

from pipelines.core.config import Settings
from pipelines.core.errors import PipelineError
from pipelines.core.io import read_json, write_json
from pipelines.core.paths import (
    FLEET_CANARY_REPORT,
    FLEET_COST_PLOT,
    FLEET_DRIFT_REPORT,
    FLEET_FINOPS_REPORT,
    FLEET_GUARDRAILS_PLOT,
    FLEET_REPORTS_DIR,
    RELEASE_MANIFEST_FILE,
    RELEASE_PROFILE_FILE,
)
from pipelines.core.safe_text import md_cell
from pipelines.core.step import StepResult
from pipelines.fleet import canary, charts, history, rollout, store
from pipelines.fleet import observed_finops as observed
from pipelines.fleet import production_drift as input_drift
from pipelines.fleet.schema import HIST, SCHEMA
from pipelines.release_format.deployment import model_releases, production_or_latest, read_production, stage_index


def telemetry_dir(settings: Settings) -> Path:
    return settings.resolve(settings.params.fleet.directory)


def first_day(settings: Settings) -> dt.date | None:
    """The earliest day a record may carry: fleet.first_day, else the day of the model's first release, else None."""
    if settings.params.fleet.first_day is not None:
        return settings.params.fleet.first_day
    releases = model_releases(settings, settings.params.release, RELEASE_MANIFEST_FILE)
    if not releases:
        return None
    created = str(read_json(releases[0] / RELEASE_MANIFEST_FILE).get("created_at", ""))
    try:
        return dt.date.fromisoformat(created[:10])
    except ValueError:
        raise PipelineError(f"{releases[0] / RELEASE_MANIFEST_FILE}: created_at {created[:40]!r} is not a date "
                            "(set fleet.first_day)") from None


def reports_dir(settings: Settings) -> Path:
    return settings.resolve(FLEET_REPORTS_DIR)


def telemetry_day(settings: Settings, day: str) -> dict[str, Any]:
    """What one day partition holds (the fleet_telemetry asset's metadata)."""
    directory = telemetry_dir(settings)
    frame = store.read_days(directory, only=day)
    quarantine = store.read_days(directory, only=day, folder="quarantine")
    if frame.empty and quarantine.empty:
        raise PipelineError(f"{directory}/day={day}: no telemetry for that day")
    cohorts = frame.groupby("variant").agg(devices=("device_id", "nunique"), inferences=("inferences", "sum"),
                                           crashes=("crashes", "sum")).reset_index() if not frame.empty else None
    return {"day": day, "rows": len(frame), "devices": int(frame["device_id"].nunique()) if len(frame) else 0,
            "quarantined_rows": len(quarantine), "files": len(list((directory / f"day={day}").glob("*.parquet"))),
            "cohorts": [] if cohorts is None else cohorts.to_dict("records")}


def _release_folder(settings: Settings, holding: str) -> Path:
    folder, why = production_or_latest(settings, holding)
    if folder is None:
        raise PipelineError(f"fleet: {why}")
    return folder


def canary_report(settings: Settings, until: str | None = None, act: bool = False,
                    to: str | None = None) -> dict[str, Any]:
    """The decision for the deployed release's current stage from telemetry up to `until` (default: last day).

    With `act`, the report is written before the GitOps action is tried and again with its outcome, so
    reports/fleet/canary.json never shows an earlier decision; `to` names the release a rollback restores."""
    deployment = read_production(settings)
    if deployment is None:
        raise PipelineError("deploy/production.yaml: not found; nothing is rolling out")
    directory = telemetry_dir(settings)
    days = store.days(directory)
    if not days:
        raise PipelineError(f"{directory}: no telemetry yet (`mobile-mlops telemetry serve` stores it)")
    until = until or days[-1]
    index = stage_index(deployment)
    source = store.shards(directory, until=until)  # queried in place, never loaded whole
    in_stage = history.days_in_stage(source, deployment.model.version)
    decision, reasons, tests, quarantined = rollout.analyse_day(
        directory, until, deployment.rollout, settings.params, index, int(in_stage))
    if decision == "promote" and index == len(deployment.rollout.stages) - 1:
        decision = "complete"  # already at 100%: nothing left to promote
    report: dict[str, Any] = {"model": deployment.model.name, "version": deployment.model.version,
                              "stage": deployment.rollout.stages[index].name, "until": until,
                              "days_in_stage": int(in_stage),
                              "decision": decision, "reasons": reasons, "tests": [t.as_dict() for t in tests],
                              "quarantined_devices": quarantined, "table": canary.table(tests),
                              "history": history.history(source, settings.params)}
    charts.guardrail_chart(report["history"], settings.resolve(FLEET_GUARDRAILS_PLOT),
                           _limits(settings, deployment.rollout.guardrails))  # type: ignore[arg-type]
    report["chart"] = FLEET_GUARDRAILS_PLOT
    if experiment := deployment.experiment:
        a, b = (v.name for v in experiment.variants)
        ab = canary.evaluate(canary.units(source), b, a, deployment.rollout.guardrails, settings.params)
        report["ab"] = {"experiment": experiment.name, "control": a, "treatment": b,
                        "decision": canary.decide(ab, True, True)[0], "tests": [t.as_dict() for t in ab],
                        "table": canary.table(ab)}
    target = settings.resolve(FLEET_CANARY_REPORT)
    if act and decision in ("promote", "rollback"):
        from pipelines.fleet.actions import act as gitops

        report["action"] = {"kind": decision, "status": "pending", "to": to}
        write_json(target, report)
        try:
            done = gitops(settings, decision, report["table"], reasons, to)
        except Exception as exc:
            report["action"].update(status="failed", error=str(exc).splitlines()[0] if str(exc) else repr(exc))
            write_json(target, report)
            raise
        report["action"] = {"kind": done.kind, "status": "done", "to": done.to,  # type: ignore[union-attr]
                            "branch": done.branch,  # type: ignore[union-attr]
                            "commit": done.commit,  # type: ignore[union-attr]
                            "pull_request": done.pull_request.url if done.pull_request else None}  # type: ignore[union-attr]
    write_json(target, report)
    return report


def _limits(settings: Settings, guardrails: Any) -> dict[str, float | None]:
    return {"crash_rate": guardrails.max_crash_rate, "selection_rate_gap": guardrails.max_selection_rate_gap,
            "mb_per_device_month": settings.params.gates.budgets.max_device_mb_per_month}


def fleet_observed_finops(settings: Settings) -> dict[str, Any]:
    """Observed cost per month beside cost.json, budgets on observed spend, and the webhook alert on overrun."""
    folder = _release_folder(settings, "cost.json")
    cost = read_json(folder / "cost.json")
    rows = observed.observed(store.shards(telemetry_dir(settings)), settings.params)
    if not rows:
        raise PipelineError(f"{telemetry_dir(settings)}: no telemetry yet")
    results = observed.budget_results(rows, cost, settings.params)
    report: dict[str, Any] = {"release": (str(folder.relative_to(settings.root)) if folder.is_relative_to(settings.root)
                                          else str(folder)),
                              "months": rows, "comparison": observed.compare(rows, cost, settings.params),
                              "budgets": [r.as_dict() for r in results],
                              "over_budget": [r.name for r in results if not r.passed]}
    url = settings.params.fleet.webhook_url
    if report["over_budget"] and url:
        report["alert_status"] = observed.alert(url, {"event": "fleet.budget_exceeded", "release": report["release"],
                                                      "over_budget": [r.as_dict() for r in results if not r.passed]})
    charts.cost_chart(report["comparison"], settings.resolve(FLEET_COST_PLOT),
                      settings.params.gates.budgets.max_device_mb_per_month)
    report["chart"] = FLEET_COST_PLOT
    write_json(settings.resolve(FLEET_FINOPS_REPORT), report)
    return report


def fleet_production_drift(settings: Settings) -> dict[str, Any]:
    """DP-noised production input histograms against the release's reference profile; drift marks data stale."""
    folder = _release_folder(settings, RELEASE_PROFILE_FILE)
    counts = store.feature_counts(telemetry_dir(settings))
    if not counts:
        raise PipelineError(f"{telemetry_dir(settings)}: no input histograms in telemetry yet")
    config = settings.params.fleet
    threshold = config.drift_psi_threshold or settings.params.drift.psi_threshold
    result = input_drift.drift(counts, read_json(folder / RELEASE_PROFILE_FILE), config.histogram_epsilon,
                                    threshold, seed=len(store.days(telemetry_dir(settings), "features")))
    result["reference"] = folder.name
    write_json(settings.resolve(FLEET_DRIFT_REPORT), result)
    return result


def to_records(frame: pd.DataFrame, features: dict[int, dict[str, list[int]]] | None = None) -> list[dict]:
    """Stored rows back as contract records (what an app posts)."""
    base = frame.drop(columns=list(HIST)).to_dict("records")
    hists = frame[list(HIST)].to_numpy().tolist()
    for i, (record, hist) in enumerate(zip(base, hists, strict=True)):
        record["latency_hist"] = hist
        if features and i in features:
            record["features"] = features[i]
    return base


def batch_body(records: list[dict]) -> bytes:
    return json.dumps({"schema": SCHEMA, "batch_id": uuid.uuid4().hex, "records": records},
                      default=lambda v: v.item() if hasattr(v, "item") else str(v)).encode()


def md_rows(rows: list[dict[str, Any]]) -> str:
    """Records as a Markdown table; cells escaped (cohort and variant names come from devices)."""
    if not rows:
        return "(none)"
    keys = list(rows[0])

    def cell(v: object) -> str:
        return f"{v:.4g}" if isinstance(v, float) else "" if v is None else md_cell(v)

    return "\n".join(["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)] +
                     ["| " + " | ".join(cell(r[k]) for k in keys) + " |" for r in rows])


def fleet_telemetry(settings: Settings, day: str) -> StepResult:
    """One day partition of accepted telemetry: rows, devices, quarantined rows and cohorts."""
    facts = telemetry_day(settings, day)
    return StepResult(summary={"rows": facts["rows"], "devices": facts["devices"],
                               "quarantined_rows": facts["quarantined_rows"], "batch_files": facts["files"]},
                      tables={"cohorts": md_rows(facts["cohorts"])})


def canary_analysis(settings: Settings) -> StepResult:
    """The deployed release's canary / A-B decision on every guardrail, and the guardrails-over-time chart."""
    report = canary_report(settings)
    chart = settings.resolve(report["chart"])  # drawn with the report, as the CLI draws it
    tables = {"guardrails": report["table"], "reasons": "\n".join(f"- {md_cell(r, 400)}" for r in report["reasons"])}
    if "ab" in report:
        tables["a/b"] = report["ab"]["table"]
    return StepResult(summary={k: report[k] for k in ("decision", "stage", "version", "until")}, tables=tables,
                      plots={"guardrails over time": chart})


def observed_finops(settings: Settings) -> StepResult:
    """Observed monthly cost, traffic and battery beside cost.json's estimates, and the budgets on them."""
    report = fleet_observed_finops(settings)
    chart = settings.resolve(report["chart"])  # drawn with the report, as the CLI draws it
    return StepResult(summary={"release": report["release"], "over_budget": ", ".join(report["over_budget"]) or "none"},
                      tables={"observed vs estimated": md_rows(report["comparison"]),
                              "budgets": md_rows(report["budgets"])},
                      plots={"observed vs estimated cost": chart})


def production_drift(settings: Settings) -> StepResult:
    """PSI of DP-noised production input histograms against the release's reference profile."""
    report = fleet_production_drift(settings)
    rows = [{"feature": n, "psi": f.get("psi"), "drift": f.get("drift")} for n, f in report["features"].items()]
    return StepResult(summary={"drift": report["drift"], "drifted": ", ".join(report["drifted"]) or "none",
                               "reference": report["reference"]},
                      tables={"psi": md_rows(rows)})
