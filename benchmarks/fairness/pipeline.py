"""One benchmark split: the data steps in a fresh project folder, then `mobile-mlops run` on it (the real pipeline,
in its own process) while the baselines fit on the same rows, then what the run released or why it stopped."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

from benchmarks.fairness.baselines import constrained_grouping, fit_baselines
from benchmarks.projects import REPO
from pipelines.core.config import Settings, load_settings
from pipelines.core.errors import PipelineError
from pipelines.core.paths import ArtifactPaths
from pipelines.data.split import SPLITS

MOBILE_MLOPS = REPO / ".venv" / "bin" / "mobile-mlops"
FAIRNESS_GATES = ("max_demographic_parity_difference", "max_equalized_odds_difference")


def prepare_splits(settings: Settings) -> dict[str, pd.DataFrame]:
    """The data steps the pipeline runs first (load, validate, split at split.seed), in this process: the test rows
    the baselines are measured on are the pipeline's own."""
    from pipelines.data.steps import dataset_splits, raw_dataset, validated_dataset

    for step in (raw_dataset, validated_dataset, dataset_splits):
        step(settings)
    folder = ArtifactPaths(settings.root).dataset_splits
    return {name: pd.read_parquet(folder / f"{name}.parquet") for name in SPLITS}


def start_run(params: Path) -> subprocess.Popen:
    """`mobile-mlops run` on the project folder, niced, with its own Dagster home and MLflow store."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DAGSTER_"))}
    env |= {"DAGSTER_HOME": str(params.parent / ".dagster"), "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.Popen(["nice", "-n", "10", str(MOBILE_MLOPS), "run", "--params", str(params)],
                            cwd=params.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def stop_line(stderr: str) -> str:
    """The run's one-line stop (`error: ...`), else its last line."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    errors = [line.removeprefix("error: ") for line in lines if line.startswith("error: ")]
    return errors[-1] if errors else (lines[-1] if lines else "no output")


def step_seconds(stderr: str) -> dict[str, float]:
    """Each finished step's wall seconds, from the run's progress lines (`  done trained_model (12.3 s)`)."""
    found = re.findall(r"^\s+(?:done|failed)\s+(\S+)\s+\(([0-9.]+) s\)", stderr, flags=re.MULTILINE)
    return {step: float(seconds) for step, seconds in found}


def released(settings: Settings) -> dict[str, Any]:
    """The released Android variant's test accuracy, DPD and EOD (reports/footprint.json names it,
    reports/fairness.json measures it on the constrained grouping), and whether its fairness gates passed."""
    paths = ArtifactPaths(settings.root)
    fairness = json.loads(paths.fairness_report.read_text())
    variant = json.loads(paths.footprint_report.read_text())["platforms"]["android"]["selected"]
    return {"variant": variant, **model_figures(settings, fairness, variant),
            "keras": model_figures(settings, fairness, "keras"), "fairness_gate": fairness_gate(fairness, variant)}


def model_figures(settings: Settings, fairness: dict[str, Any], model: str) -> dict[str, float]:
    _, grouping = constrained_grouping(settings)
    entry = fairness["models"][model]
    facts = entry["groups"][grouping]
    return {"accuracy": entry["overall"]["accuracy"], "dpd": facts["demographic_parity_difference"],
            "eod": facts["equalized_odds_difference"]}


def fairness_gate(fairness: dict[str, Any], variant: str) -> bool:
    """Every parity and equalized-odds gate of the Keras model and the released variant passed on the test split."""
    mine = [g for g in fairness["gates"] if g["name"].startswith(FAIRNESS_GATES)
            and ("[keras/" in g["name"] or f"[{variant}/" in g["name"])]
    return bool(mine) and all(g["passed"] for g in mine)


def run_split(params: Path, seed: int, baselines: Path | None, pipeline: bool = True) -> dict[str, Any]:
    """One split: the pipeline's release or its stop line on `params`' folder and, unless `baselines` is None, the
    baselines on a copy of it (the data steps run there, so the pipeline starts at once). Either may be left out."""
    settings = load_settings(params)
    result: dict[str, Any] = {"seed": seed}
    started = time.perf_counter()
    run = start_run(params) if pipeline else None
    try:
        if baselines is not None:
            copy = load_settings(baselines)
            try:
                splits = prepare_splits(copy)
            except PipelineError as exc:  # the run stops at the same step: no rows to fit baselines on
                splits, result["data_error"] = None, str(exc)
            result["rows"] = {name: len(frame) for name, frame in (splits or {}).items()}
            if splits is not None:
                result["baselines"] = fit_baselines(copy, splits)
    finally:
        stderr = run.communicate()[1] if run else ""
    result["seconds"] = round(time.perf_counter() - started, 1)
    result["steps_s"] = step_seconds(stderr)
    if run is None:
        outcome = "baselines only"
    elif run.returncode == 0:
        result["pipeline"] = released(settings)
        outcome = f"released {result['pipeline']['variant']}"
    else:
        result["stop"] = stop_line(stderr)
        outcome = f"stopped: {result['stop']}"
    print(f"  split {seed}: {outcome} ({result['seconds']} s)", file=sys.stderr, flush=True)
    return result
