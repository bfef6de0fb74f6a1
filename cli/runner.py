"""`mobile-mlops run`: materialize the whole graph in-process and print a summary."""
from __future__ import annotations

import logging
import os
import shutil
import socket
import time
from pathlib import Path
from typing import Any, ClassVar

from dagster import AssetCheckSeverity, DagsterEventType, DagsterInstance, colored_console_logger, logger
from rich.console import Console
from rich.table import Table

from cli import logformat
from cli.quiet import dagster_home
from cli.uptodate import fingerprint, forget, remember
from pipelines.catalog import output_folders, output_roots
from pipelines.core.config import load_settings
from pipelines.core.errors import PipelineError
from pipelines.core.lock import project_lock, remove_leftovers
from pipelines.core.memory import freeze_startup
from pipelines.core.stores import check_sqlite, quick_sqlite

console = Console(stderr=True, soft_wrap=True)  # one line per message, however long


@logger(description="One line per finished step, for the terminal.")  # type: ignore[call-overload]  # stub wants config_schema
def progress_logger(_init_context):
    class _Progress(logging.Handler):
        started: ClassVar[dict[str, float]] = {}

        def emit(self, record: logging.LogRecord) -> None:
            meta = getattr(record, "dagster_meta", None) or {}
            event = meta.get("dagster_event") if isinstance(meta, dict) else getattr(meta, "dagster_event", None)
            if event is None:
                return
            if logformat.is_json():
                kind = {DagsterEventType.STEP_START: ("info", "step started"),
                        DagsterEventType.STEP_SUCCESS: ("info", "step succeeded"),
                        DagsterEventType.STEP_FAILURE: ("error", "step failed")}.get(event.event_type)
                if kind:
                    logformat.line(*kind, run_id=getattr(record, "run_id", None) or meta.get("run_id"),
                                   step=event.step_key)
                return
            if event.event_type == DagsterEventType.STEP_START:
                self.started[event.step_key] = time.perf_counter()
                console.print(f"  [dim]start[/] {event.step_key}")
            elif event.event_type in (DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE):
                took = time.perf_counter() - self.started.pop(event.step_key, time.perf_counter())
                word = "[green]done[/] " if event.event_type == DagsterEventType.STEP_SUCCESS else "[red]failed[/]"
                console.print(f"  {word} {event.step_key} [dim]({took:.1f} s)[/]")

    log = logging.getLogger("mobile_mlops.progress")
    log.setLevel(logging.DEBUG)
    log.handlers = [_Progress()]
    log.propagate = False
    return log


def _failure_message(result) -> str:
    """The user-facing line: a failed blocking gate's (as its stage's verdict says it), else the failed step's
    PipelineError text."""
    for event in result.all_events:
        if event.event_type == DagsterEventType.ASSET_CHECK_EVALUATION and not event.event_specific_data.passed \
                and event.event_specific_data.severity == AssetCheckSeverity.ERROR:  # a warning stops nothing
            data = event.event_specific_data
            return f"gate {data.check_name} failed on {data.asset_key.to_user_string()}: {data.description}"
    for event in result.all_events:
        if event.event_type == DagsterEventType.STEP_FAILURE:
            error = event.step_failure_data.error
            while error.cause is not None and error.cls_name != "PipelineError":
                error = error.cause
            text = error.message.strip().splitlines()[0]
            return f"{event.step_key}: {text.split(': ', 1)[-1] if error.cls_name == 'PipelineError' else text}"
    return "run failed"


def _summary(records: dict[str, dict]) -> Table:
    table = Table(title="mobile-mlops run", show_header=True)
    table.add_column("what")
    table.add_column("value", overflow="fold")  # paths and links wrap, never cut off
    raw = records.get("raw_dataset", {})
    table.add_row("data version (raw md5)", str(records.get("_data_version", "")))
    table.add_row("rows", str(raw.get("rows", "")))
    validated = records.get("validated_dataset", {})
    if validated.get("suite"):
        table.add_row("expectations suite", str(validated["suite"]))
    for key in ("accuracy", "auc"):
        table.add_row(f"keras {key}", str(records.get("model_evaluation", {}).get(key, "")))
    evaluation = records.get("model_evaluation", {})
    for name in ("logistic_regression", "majority_class"):
        if f"baseline_{name}_accuracy" in evaluation:
            table.add_row(f"{name.replace('_', ' ')} accuracy", str(evaluation[f"baseline_{name}_accuracy"]))
    trained = records.get("trained_model", {})
    if "strength_chosen_by" in trained:
        table.add_row("fairness strength", str(trained["strength_chosen_by"]))
    for key, value in records.get("tflite_model", {}).items():
        if key.startswith("tflite_") and isinstance(value, (int, float)):
            table.add_row(key.removeprefix("tflite_").replace("_", " "),
                          f"{value:.4f}" if isinstance(value, float) else str(value))
    footprint = records.get("footprint_report", {})
    for platform in ("android", "ios"):
        table.add_row(f"{platform} released variant",
                      f"{footprint.get(f'{platform}_released', '')} "
                      f"({footprint.get(f'{platform}_released_bytes', '')} bytes)")
    table.add_row("offload delta (rate)", f"{records.get('offload_policy', {}).get('delta', '')} "
                                          f"({records.get('offload_policy', {}).get('offload_rate', '')})")
    finops = records.get("finops_report", {})
    table.add_row("monthly cost USD (run CPU s)",
                  f"{finops.get('monthly_usd', '')} ({finops.get('run_cpu_seconds', '')})")
    table.add_row("release candidate", str(records.get("release_candidate", {}).get("release", "")))
    table.add_row("MLflow run", str(records.get("trained_model", {}).get("mlflow_run", "")))
    return table


def run_all(params: Path, overrides: dict, debug: bool = False, verbose: bool = False, wait: bool = False,
            profile: bool = False, force: bool = False) -> int:
    """Materialize what is stale (every asset with `force`); exit code 0 on success, 1 with one line on failure.
    One run per project at a time."""
    settings = load_settings(params, overrides)  # bad params stop here, before Dagster starts
    if profile:  # every step (pipelines.core.step.measured) runs under cProfile into this folder
        from pipelines.core.profiling import PROFILE_ENV

        folder = settings.root / "reports" / "profile"
        shutil.rmtree(folder, ignore_errors=True)
        os.environ[PROFILE_ENV] = str(folder)
    home = dagster_home(Path(os.environ.setdefault("DAGSTER_HOME", str(settings.root / ".dagster"))))
    for store in sorted(home.glob("*.db")) + sorted(home.glob("history/*.db")) + sorted(
            home.glob("history/runs/*.db")) + sorted(home.glob("schedules/*.db")):
        check_sqlite(store, "Dagster home's store")
    with project_lock(settings.root, wait=wait, say=console.print):
        removed = remove_leftovers(output_folders(settings), output_roots(settings))
        if removed:
            console.print(f"removed {len(removed)} temp folder(s) a stopped run left behind: "
                          + ", ".join(str(p.relative_to(settings.root)) if p.is_relative_to(settings.root) else str(p)
                                      for p in removed[:3]) + (" ..." if len(removed) > 3 else ""))
        return _run(settings, params, home, debug, verbose, force)


def _selection(instance, defs, settings, force: bool):
    """The source observation recorded (the schedule and sensor compare against it), then what is stale:
    None = everything (`--force`), [] = nothing."""
    from assets.automation import observe_source, run_selection

    version = observe_source(instance, settings)
    if force:
        _say(f"data version {version}; --force: every stage runs", data_version=version)
        return None
    stale, selection = run_selection(instance, defs.get_repository_def().asset_graph, settings)
    if selection:
        names = [k.to_user_string() for k in stale]
        _say(f"data version {version}; stale: {', '.join(names)}; running {len(selection)} stage(s)",
             data_version=version, stale=names)
    return selection


def _say(text: str, **fields) -> None:
    """A dim line on the console, or a JSON line with `--log-format json`."""
    if logformat.is_json():
        logformat.line("info", text, **fields)
    else:
        console.print(f"[dim]{text}[/]")


def _run(settings, params: Path, home: Path, debug: bool, verbose: bool, force: bool = False) -> int:
    from assets.build import (
        build_definitions,  # after the quiet settings: it imports Dagster's world
    )

    defs = build_definitions(settings, loggers={"progress": progress_logger, "console": colored_console_logger})
    loggers: dict[str, dict] = {"progress": {}} | ({"console": {"config": {"log_level": "INFO"}}} if verbose else {})
    started = time.perf_counter()
    if logformat.is_json():
        logformat.line("info", "run started", params=str(params), dagster_home=str(home))
    else:
        console.print(f"[bold]mobile-mlops run[/] ({params}) with Dagster home {home}")
    with quick_sqlite(home), DagsterInstance.get() as instance:
        from assets.stale_runs import HOST_TAG, fail_dead_runs

        stale = fail_dead_runs(instance)
        if stale:
            console.print(f"marked {len(stale)} run(s) failed whose process is gone: {', '.join(stale[:3])}")
        freeze_startup()  # Dagster, the definitions and the instance's storage: built once, never garbage
        known = fingerprint(settings)  # before the run: an edit made meanwhile is seen by the next one
        selection = _selection(instance, defs, settings, force)
        if selection == []:
            remember(settings, known)
            seconds = time.perf_counter() - started
            if logformat.is_json():
                logformat.line("info", "up to date: data, code and params unchanged since the last run; nothing to "
                               "run (--force redoes everything)", seconds=round(seconds, 1))
            else:
                console.print(f"up to date: data, code and params unchanged since the last run; nothing to run "
                              f"(--force redoes everything) [dim]({seconds:.1f} s)[/]")
            return 0
        forget(settings)
        result = defs.resolve_job_def("release_job").execute_in_process(
            run_config={"loggers": loggers}, instance=instance, raise_on_error=debug, asset_selection=selection,
            tags={HOST_TAG: socket.gethostname()},  # whose pids the stale-run check may trust
        )
    if not result.success:
        raise PipelineError(_failure_message(result))
    remember(settings, known)
    records: dict[str, Any] = {}
    for event in result.get_asset_materialization_events():
        materialization = event.event_specific_data.materialization  # type: ignore[union-attr]  # a materialization event
        records[materialization.asset_key.to_user_string()] = {k: v.value for k, v in materialization.metadata.items()}
        if materialization.asset_key.to_user_string() == "raw_dataset":
            records["_data_version"] = materialization.tags.get("dagster/data_version", "")  # type: ignore[union-attr]
    if logformat.is_json():
        logformat.line("info", "run succeeded", run_id=result.run_id,
                       seconds=round(time.perf_counter() - started, 1), release=records.get("release_candidate"))
    else:
        Console().print(_summary(records))
        console.print(f"finished in {time.perf_counter() - started:.1f} s")
    from pipelines.core.profiling import profile_folder, write_report

    if folder := profile_folder():
        from pipelines.catalog import STAGES

        report = write_report(folder, list(STAGES))
        console.print(f"profile: {report.relative_to(settings.root)} (per step; the .prof files beside it)")
    return 0
