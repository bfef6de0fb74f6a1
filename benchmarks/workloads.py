"""What one benchmark process runs: `python -m benchmarks.workloads KIND PARAMS [STEP ...]`.

Each kind runs in a fresh process (so imports are counted the same way for every orchestrator)
and prints one JSON line: wall seconds, CPU seconds, peak RSS and per-step figures.
"""
from __future__ import annotations

import json
import os
import resource
import sys
import time
import warnings
from pathlib import Path


def _usage() -> dict:
    me = resource.getrusage(resource.RUSAGE_SELF)
    return {"cpu_s": round(me.ru_utime + me.ru_stime, 3), "max_rss_mb": round(me.ru_maxrss / 1024, 1)}


def plain(params: Path, steps: list[str]) -> dict:
    """The pipelines/ step functions called directly, no orchestrator."""
    from pipelines.catalog import STAGES, step_function
    from pipelines.core.config import load_settings

    settings, timings = load_settings(params), {}
    for name in steps or list(STAGES):
        started = time.perf_counter()
        step_function(name)(settings)
        timings[name] = round(time.perf_counter() - started, 3)
    return {"steps": timings}


def _job_run(instance, params: Path, steps: list[str]):
    from dagster import AssetKey

    from assets.build import build_definitions
    from pipelines.core.config import load_settings
    from pipelines.core.memory import freeze_startup

    defs = build_definitions(load_settings(params))
    freeze_startup()  # as `mobile-mlops run` does
    selection = [AssetKey(s) for s in steps] if steps else None
    result = defs.resolve_job_def("release_job").execute_in_process(instance=instance, asset_selection=selection)
    durations = {}
    for event in result.all_events:
        if event.event_type_value == "STEP_SUCCESS":
            durations[event.step_key] = round(event.event_specific_data.duration_ms / 1000, 3)
    return durations


def dagster(params: Path, steps: list[str]) -> dict:
    """A Dagster materialization of the same steps, as `mobile-mlops run` does it: in-process executor, the
    instance in $DAGSTER_HOME (the benchmark keeps one for its runs, as a project keeps .dagster/)."""
    from pipelines.core.memory import tune_collector

    tune_collector()  # as `mobile-mlops run` does before importing Dagster
    from dagster import DagsterInstance, instance_for_test

    from pipelines.core.stores import quick_sqlite

    if not os.environ.get("DAGSTER_HOME"):
        with instance_for_test() as instance:
            return {"steps": _job_run(instance, params, steps)}
    with quick_sqlite(Path(os.environ["DAGSTER_HOME"])), DagsterInstance.get() as instance:
        return {"steps": _job_run(instance, params, steps)}


def noop(params: Path, steps: list[str]) -> dict:
    """After a run: the nightly check on unchanged data. Returns its wall time and training executions."""
    from dagster import AssetKey, instance_for_test

    from assets.automation import observe_source, stale_asset_keys
    from assets.build import build_definitions
    from pipelines.core.config import load_settings

    settings = load_settings(params)
    defs = build_definitions(settings)
    with instance_for_test() as instance:
        observe_source(instance, settings)
        _job_run(instance, params, steps)
        key = AssetKey("trained_model")
        before = len(instance.fetch_materializations(key, limit=1000).records)
        cpu0, started = time.process_time(), time.perf_counter()
        observe_source(instance, settings)
        graph = defs.resolve_asset_graph()
        stale = [k for k in stale_asset_keys(instance, graph) if not steps or k.to_user_string() in steps]
        wall = time.perf_counter() - started
        after = len(instance.fetch_materializations(key, limit=1000).records)
    return {"noop_check_s": round(wall, 3), "noop_check_cpu_s": round(time.process_time() - cpu0, 3),
            "stale": [k.to_user_string() for k in stale], "trainings_executed": after - before,
            "training_cpu_s": 0.0 if after == before else None}


KINDS = {"plain": plain, "dagster": dagster, "noop": noop}


def main(argv: list[str]) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    warnings.filterwarnings("ignore")
    kind, params, steps = argv[0], Path(argv[1]).resolve(), argv[2:]
    started = time.perf_counter()
    result = KINDS[kind](params, steps)
    result |= {"wall_s": round(time.perf_counter() - started, 3)} | _usage()
    print("BENCH " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
    sys.stderr.flush()
    os._exit(0)  # as `mobile-mlops run` and `stage` end: TensorFlow's teardown at exit does nothing useful
