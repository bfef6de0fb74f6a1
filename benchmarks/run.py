"""`mobile-mlops bench [--quick]`: run the suite, write reports/benchmarks.json and docs/benchmarks.md."""
from __future__ import annotations

import itertools
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.machine import describe
from benchmarks.projects import REPO, repo_copy, scale_project
from benchmarks.report import render
from pipelines.core.progress import track

DATA_STEPS = ["raw_dataset", "validated_dataset", "dataset_splits"]
SCALE_STEPS = ["raw_dataset", "validated_dataset", "dataset_splits", "teacher_model", "trained_model",
               "model_evaluation", "tflite_model"]  # tflite_model and every stage it reads, directly or not
FULL = {"reps": 5, "sizes": [10_000, 100_000, 1_000_000]}  # each way 5 times, interleaved: median, min, max
QUICK = {"reps": 3, "sizes": [500, 2_000]}


def find_dvc() -> str | None:
    local = REPO / ".venv-dvc" / "bin" / "dvc"
    return shutil.which("dvc") or (str(local) if local.exists() else None)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def workload(kind: str, params: Path, steps: list[str]) -> dict:
    """One benchmark process; its own JSON line plus the wall time seen from outside."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "benchmarks.workloads", kind, str(params), *steps],
                          cwd=REPO, capture_output=True, text=True, env=env)
    outer = time.perf_counter() - started
    lines = [line for line in done.stdout.splitlines() if line.startswith("BENCH ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"benchmark {kind} failed: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(lines[-1][6:]) | {"process_wall_s": round(outer, 3)}


def dvc_repro(dvc: str, project: Path, steps: list[str], force: bool) -> dict:
    cpu0, started = _children_cpu(), time.perf_counter()
    args = [dvc, "repro", *(["-f"] if force else []), *steps]
    done = subprocess.run(args, cwd=project, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"dvc repro failed: {done.stderr.strip().splitlines()[-1:]}")
    return {"process_wall_s": round(time.perf_counter() - started, 3), "cpu_s": round(_children_cpu() - cpu0, 3),
            "up_to_date": "up to date" in done.stdout}


def overhead(project: Path, dvc: str | None, steps: list[str], reps: int) -> dict:
    """The same work as a plain script (a), a Dagster materialization (b) and `dvc repro` (c), interleaved."""
    params = project / "params.yaml"
    walls: dict[str, list[float]] = {"plain": [], "dagster": [], "dvc": []}
    for _ in track(range(reps), "bench overhead repetitions"):
        walls["plain"].append(workload("plain", params, steps)["process_wall_s"])
        walls["dagster"].append(workload("dagster", params, steps)["process_wall_s"])
        if dvc:
            walls["dvc"].append(dvc_repro(dvc, project, steps, force=True)["process_wall_s"])
    medians = {k: round(statistics.median(v), 3) for k, v in walls.items() if v}
    ratios = {f"{k}/plain": round(medians[k] / medians["plain"], 3) for k in ("dagster", "dvc") if k in medians}
    return {"runs": walls, "median_s": medians, "min_s": {k: min(v) for k, v in walls.items() if v},
            "max_s": {k: max(v) for k, v in walls.items() if v}, "ratios": ratios,
            "goal": "dagster/plain <= 1.10, dvc/plain <= 1.5 (ratios of medians)"}


def scale(work: Path, sizes: list[int]) -> dict:
    """The scale path per size, each in a fresh process; growth ratios between consecutive sizes."""
    rows = []
    for size in track(sizes, "bench scale sizes"):
        params = scale_project(work / f"scale-{size}", size)
        result = workload("plain", params, SCALE_STEPS)
        rows.append({"rows": size, "wall_s": result["wall_s"], "max_rss_mb": result["max_rss_mb"],
                     "steps": result["steps"]})
    for before, after in itertools.pairwise(rows):
        after["time_growth"] = round(after["wall_s"] / before["wall_s"], 2)
        after["rows_growth"] = round(after["rows"] / before["rows"], 2)
    return {"sizes": rows, "goal": "1M rows within 8 GB peak RSS; 10x rows -> at most 12x time"}


def variant_table(project: Path) -> dict:
    """The on-device variants measured in the end-to-end run (whatever reports it produced)."""
    reports = {}
    for name in ("tflite", "coreml", "footprint"):
        path = project / "reports" / f"{name}.json"
        if path.is_file():
            reports[name] = json.loads(path.read_text())
    return reports


def run(quick: bool) -> dict:
    plan = QUICK if quick else FULL
    dvc = find_dvc()
    work = Path(tempfile.mkdtemp(prefix="mobile-mlops-bench-"))
    try:
        project = repo_copy(work / "project", quick)
        home = work / "dagster-home"  # one instance for every Dagster run, as a project keeps .dagster/
        subprocess.run([sys.executable, "-m", "cli.quiet", str(home)], check=True, cwd=REPO)
        os.environ["DAGSTER_HOME"] = str(home)
        steps = DATA_STEPS if quick else []
        params = project / "params.yaml"
        result = {"mode": "quick" if quick else "full", "date": datetime.now(UTC).isoformat(timespec="seconds"),
                  "machine": describe(dvc)}
        cold = workload("dagster", params, steps)
        result["end_to_end"] = {"wall_s": cold["process_wall_s"], "steps_s": cold["steps"],
                                "scope": steps or "all assets"}
        result["overhead"] = overhead(project, dvc, steps, plan["reps"])
        # right after the overhead runs (whose last run was `dvc repro -f`), before Dagster rewrites outputs
        dvc_noop = dvc_repro(dvc, project, steps, force=False) if dvc else None
        result["noop"] = workload("noop", params, steps) | ({"dvc_repro": dvc_noop} if dvc_noop else {})
        result["scale"] = scale(work, plan["sizes"])
        # quick mode runs only the data steps end to end; its variants come from the largest scale run
        result["variants"] = variant_table(work / f"scale-{plan['sizes'][-1]}" if quick else project)
        return result
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(quick: bool, root: Path = REPO) -> Path:
    """Run and write the JSON (and, for a full run, the Markdown page) under `root`."""
    result = run(quick)
    out = root / "reports" / ("benchmarks-quick.json" if quick else "benchmarks.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    if not quick:
        scaled = root / "reports" / "bench-scale.json"  # make bench-scale's figures keep their section
        (root / "docs" / "benchmarks.md").write_text(render(result, json.loads(scaled.read_text())
                                                            if scaled.is_file() else None))
    return out
