"""Run the benchmark: every data set over its split seeds, then the results JSON, the page and the plots."""
from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.fairness.baselines import constrained_grouping
from benchmarks.fairness.datasets import DATASETS, Dataset, project_copy
from benchmarks.fairness.pipeline import run_split
from benchmarks.fairness.render import render
from benchmarks.fairness.summary import gate_count, summarize
from benchmarks.machine import describe
from benchmarks.projects import REPO
from pipelines.core.config import load_settings
from pipelines.core.errors import PipelineError
from pipelines.core.io import atomic_path, read_json, write_json

DOCS = REPO / "docs"
RESULTS = "fairness-benchmark/results.json"
PAGE = "fairness-benchmark.md"
SMALL = 3000  # rows: the 20-split gate count runs on data sets smaller than this


def commit() -> str:
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO, capture_output=True,
                           text=True)
    return (head.stdout.strip() or "unknown") + ("+changes" if dirty.stdout.strip() else "")


def run_dataset(dataset: Dataset, seeds: list[int], work: Path, overrides: dict[str, Any], runner: str = "stages",
                pipeline: bool = True, baselines: bool = True,
                after: Callable[[list[dict[str, Any]]], None] | None = None) -> list[dict[str, Any]]:
    """Each seed in a fresh project folder (removed afterwards); `after` sees the splits done so far."""
    splits: list[dict[str, Any]] = []
    for seed in seeds:
        folder = work / f"{dataset.name}-{seed}"
        params = project_copy(dataset, folder, overrides | {"split.seed": seed})
        try:
            splits.append(run_split(params, seed, runner, pipeline=pipeline, baselines=baselines))
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        if after is not None:
            after(splits)
    return splits


def describe_dataset(dataset: Dataset, splits: list[dict[str, Any]], overrides: dict[str, Any],
                     measured_at: str) -> dict[str, Any]:
    settings = load_settings(dataset.params, overrides)
    rows: dict[str, int] = next((s["rows"] for s in splits if s.get("rows")), {})
    return {"params": str(dataset.params.relative_to(REPO)), "source": str(dataset.source.relative_to(REPO)),
            "label": settings.params.data.label,
            "grouping": constrained_grouping(settings)[1], "rows": sum(rows.values()), "test_rows": rows.get("test", 0),
            "commit": measured_at, "overrides": overrides, "splits": splits, "summary": summarize(splits)}


def main(names: list[str], splits: int, gate_splits: int, overrides: dict[str, Any], pipeline: bool = True,
         docs: Path = DOCS, only_render: bool = False, runner: str = "stages") -> Path:
    """Run (or with `only_render` just re-render) and write results.json, the page and the plots under `docs`,
    after each data set: a long run that is stopped keeps what it finished. Data sets not run keep their entry."""
    unknown = sorted(set(names) - set(DATASETS))
    if unknown:
        raise PipelineError(f"--datasets: unknown data set '{unknown[0]}' (known: {', '.join(DATASETS)})")
    target, page = docs / RESULTS, docs / PAGE
    results: dict[str, Any] = read_json(target) if target.is_file() else {"datasets": {}, "gate_counts": {}}
    if only_render:
        write_page(page, render(results, docs))
        return page
    results |= {"machine": describe(None), "fairlearn": _version("fairlearn")}
    measured_at = commit()  # the code every split below runs (later commits during the run are not it)
    work = Path(tempfile.mkdtemp(prefix="fairness-bench-"))

    def save() -> None:
        results["datasets"] = {n: results["datasets"][n] for n in DATASETS if n in results["datasets"]}
        write_json(target, results)
        write_page(page, render(results, docs))

    try:
        for name in names:
            dataset, started = DATASETS[name], time.perf_counter()

            def record(done: list[dict[str, Any]], name: str = name, dataset: Dataset = dataset,
                       started: float = started) -> None:  # after every split: a stopped run keeps them
                results["datasets"][name] = describe_dataset(dataset, done, overrides, measured_at) | {
                    "date": _now(), "wall_s": round(time.perf_counter() - started, 1), "planned": splits}
                save()

            if splits:
                print(f"{name}: {splits} split(s)", file=sys.stderr, flush=True)
                run_dataset(dataset, list(range(splits)), work, overrides, runner, pipeline, after=record)
            if gate_splits:
                gate_run(results, dataset, gate_splits, work, overrides, measured_at, runner, save)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return page


def merge(sources: list[Path], docs: Path = DOCS) -> Path:
    """Data set entries (and gate counts) of runs made elsewhere, e.g. one process per data set with its own
    --docs folder, into the results under `docs`; then the page again."""
    target = docs / RESULTS
    results: dict[str, Any] = read_json(target) if target.is_file() else {"datasets": {}, "gate_counts": {}}
    for source in sources:
        other = read_json(source / RESULTS)
        results["datasets"] |= other["datasets"]
        results["gate_counts"] = results.get("gate_counts", {}) | other.get("gate_counts", {})
        results.setdefault("machine", other["machine"])
        results.setdefault("fairlearn", other["fairlearn"])
    results["datasets"] = {n: results["datasets"][n] for n in DATASETS if n in results["datasets"]}
    write_json(target, results)
    page = docs / PAGE
    write_page(page, render(results, docs))
    return page


def write_page(page: Path, text: str) -> None:
    with atomic_path(page) as tmp:
        tmp.write_text(text)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def gate_run(results: dict[str, Any], dataset: Dataset, count: int, work: Path, overrides: dict[str, Any],
             measured_at: str, runner: str, save: Callable[[], None]) -> None:
    """The 20-split gate count on a data set under SMALL rows: the pipeline only; the benchmark's own splits of the
    same commit are reused."""
    entry = results["datasets"].get(dataset.name)
    if entry is None:
        print(f"{dataset.name}: no gate count before its benchmark splits have run", file=sys.stderr, flush=True)
        return
    if entry["rows"] >= SMALL:
        return
    same = entry["commit"] == measured_at and entry["overrides"] == overrides  # else the splits must run again
    have = {s["seed"]: s for s in entry["splits"] if same and s["seed"] < count}
    print(f"{dataset.name}: gate count over {count} splits ({len(have)} reused)", file=sys.stderr, flush=True)

    def record(fresh: list[dict[str, Any]]) -> None:  # after every split: a stopped run keeps a partial count
        splits = sorted([*have.values(), *fresh], key=lambda s: s["seed"])
        results["gate_counts"][dataset.name] = gate_count(splits) | {"commit": measured_at, "planned": count,
                                                                     "runner": runner, "date": _now()}
        save()

    record([])
    run_dataset(dataset, [s for s in range(count) if s not in have], work, overrides, runner, baselines=False,
                after=record)


def _version(package: str) -> str:
    from importlib import metadata

    return metadata.version(package)
