"""One benchmark split in a fresh project folder: the pipeline (the catalog's steps in this process, or `mobile-mlops
run`), the baselines and the deterministic frontier on the run's own rows, then what it released or why it stopped."""
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

from benchmarks.fairness.baselines import constrained_grouping, fit_baselines, reference_gates
from benchmarks.projects import REPO
from pipelines.catalog import STAGES
from pipelines.core.config import Settings, load_settings
from pipelines.core.errors import PipelineError
from pipelines.core.io import read_json
from pipelines.core.paths import MITIGATION_FILE, ArtifactPaths
from pipelines.data.split import SPLITS

FAIRNESS_GATES = ("max_demographic_parity_difference", "max_equalized_odds_difference")
RUNNERS = ("stages", "run")  # the catalog's steps in this process (as `dvc repro` runs them), or `mobile-mlops run`
DATA_STAGES = ("raw_dataset", "validated_dataset", "dataset_splits")


def read_splits(settings: Settings) -> dict[str, pd.DataFrame] | None:
    """The pipeline's own train, validation and test rows, if its data steps got that far."""
    folder = ArtifactPaths(settings.root).dataset_splits
    if not all((folder / f"{name}.parquet").is_file() for name in SPLITS):
        return None
    return {name: pd.read_parquet(folder / f"{name}.parquet") for name in SPLITS}


def run_stages(settings: Settings, names: tuple[str, ...] | list[str], seconds: dict[str, float]) -> str | None:
    """Each stage's step and gates in this process, in the catalog's order (what `mobile-mlops stage` and each DVC
    stage run); None when all passed, else the stop line as `mobile-mlops run` prints it. `seconds` receives each
    step's wall time."""
    from pipelines.catalog import step_function
    from pipelines.core.verdict import GateFailed

    for name in names:
        started = time.perf_counter()
        try:
            step_function(name)(settings)
        except GateFailed as exc:
            return str(exc)
        except PipelineError as exc:
            return f"{name}: {exc}"
        except Exception as exc:  # a step's bug stops this split, as `mobile-mlops run` reports it, not the benchmark
            return f"{name}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        finally:
            seconds[name] = round(time.perf_counter() - started, 1)
    return None


def start_run(params: Path) -> subprocess.Popen:
    """`mobile-mlops run` (this checkout's code) on the project folder, with its own Dagster home and MLflow store."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DAGSTER_"))}
    env |= {"DAGSTER_HOME": str(params.parent / ".dagster"), "TF_CPP_MIN_LOG_LEVEL": "3",
            "PYTHONPATH": os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])}
    return subprocess.Popen([sys.executable, "-m", "cli.main", "run", "--params", str(params)],
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
            "keras": model_figures(settings, fairness, "keras"), "fairness_gate": fairness_gate(fairness, variant),
            "mitigation": mitigation(settings)}


def mitigation(settings: Settings) -> dict[str, Any]:
    """What the run's mitigation chose (models/trained/mitigation.json): method, strength or bound, chosen by."""
    facts = read_json(ArtifactPaths(settings.root).trained_model / MITIGATION_FILE)
    return {key: facts.get(key) for key in ("method", "constraint", "strength", "chosen_by")}


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


def run_split(params: Path, seed: int, runner: str = "stages", pipeline: bool = True,
              baselines: bool = True) -> dict[str, Any]:
    """One split on `params`' folder: the pipeline (or with `pipeline` False only its data steps), then the
    references' fairness-gate verdicts on the pipeline's own rows, and unless `baselines` is False the baselines'
    figures and the deterministic frontier too."""
    settings = load_settings(params)
    result: dict[str, Any] = {"seed": seed, "runner": runner if pipeline else "data steps"}
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    if not pipeline or runner == "stages":
        os.environ.pop("MLFLOW_TRACKING_URI", None)  # the run's own store in its folder, as `mobile-mlops run` uses
        stop = run_stages(settings, DATA_STAGES if not pipeline else list(STAGES), seconds)
    else:
        run = start_run(params)
        stderr = run.communicate()[1]
        seconds = step_seconds(stderr)
        stop = stop_line(stderr) if run.returncode else None
    result["pipeline_s"] = round(time.perf_counter() - started, 1)
    result["steps_s"] = seconds
    splits = read_splits(settings)
    result["rows"] = {name: len(frame) for name, frame in (splits or {}).items()}
    if splits is None:
        result["data_error"] = stop or "no splits written"
    elif baselines:
        result["baselines"], result["frontier"], result["reference_gates"] = fit_baselines(settings, splits)
    else:
        result["reference_gates"] = reference_gates(settings, splits)
    if stop is not None and pipeline:
        result["stop"] = stop
        outcome = f"stopped: {stop}"
    elif pipeline:
        result["pipeline"] = released(settings)
        outcome = f"released {result['pipeline']['variant']}"
    else:
        outcome = "baselines only"
    if "keras" in sys.modules:  # a fresh graph per split: models of earlier splits are not kept alive
        sys.modules["keras"].backend.clear_session()
    result["seconds"] = round(time.perf_counter() - started, 1)
    print(f"  split {seed}: {outcome} ({result['seconds']} s)", file=sys.stderr, flush=True)
    return result
