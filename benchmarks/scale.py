"""`make bench-scale`: the pipeline end to end on 1M, 10M and 30M synthetic rows, each step in a fresh process
(wall time, CPU time, peak memory per step), then the release verified; reports/bench-scale.json and a plot.

    python -m benchmarks.scale [ROWS ...] [--steps data|all] [--work DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

from benchmarks.machine import describe
from benchmarks.projects import REPO
from benchmarks.report import SCALE_HEADING, scale_section
from benchmarks.run import workload

SIZES = [1_000_000, 10_000_000, 30_000_000]
CHUNK = 500_000  # synthetic rows made and written at a time: the generator's memory stays flat too
OUT = REPO / "reports" / "bench-scale.json"
PLOT = REPO / "docs" / "images" / "bench-scale.png"
PAGE = REPO / "docs" / "benchmarks.md"


def write_section(bench: dict, page: Path = PAGE) -> None:
    """Put the scale section in docs/benchmarks.md, replacing an earlier one (the rest of the page is untouched)."""
    text = page.read_text() if page.is_file() else "# Benchmarks\n"
    start = text.find(SCALE_HEADING)
    end = len(text) if start < 0 else text.find("\n## ", start + 1)
    before = text if start < 0 else text[:start]
    after = "" if start < 0 or end < 0 else text[end + 1:]
    page.write_text(before.rstrip("\n") + "\n\n" + scale_section(bench) + "\n" + ("\n" + after if after else ""))


def synth_project(target: Path, rows: int, seed: int = 0) -> Path:
    """A folder with `rows` synthetic CSV rows made from the real Adult rows (chunk by chunk), and params that
    train one epoch (as benchmarks.projects.scale_project, without the whole frame in memory)."""
    from benchmarks.projects import scale_project
    from pipelines.core.config import load_settings
    from pipelines.data.load import load_dataset
    from pipelines.data.rowsplit import INTERNAL
    from pipelines.data.synth import synthesize

    params = scale_project(target, 1_000)  # its params; its 1000-row data file is replaced below
    settings = load_settings(REPO / "params.yaml")
    data = settings.params.data
    real = load_dataset(data, settings.resolve(data.source), settings.resolve(data.test_source)).dropna()
    real = real.drop(columns=list(INTERNAL))
    path = target / "data.csv"
    with open(path, "w") as handle:
        for i, start in enumerate(range(0, rows, CHUNK)):
            synthesize(real, min(CHUNK, rows - start), seed=seed + i).to_csv(handle, index=False, header=i == 0)
    settings_yaml = yaml.safe_load(params.read_text())
    settings_yaml["validate"]["min_rows"] = 1000
    settings_yaml["gates"]["fairness"]["min_group_size"] = 100
    # one epoch on synthetic rows measures time and memory, not a fair model: gates wide open, every step still runs
    settings_yaml["gates"]["fairness"] |= {"max_demographic_parity_difference": 1.0,
                                           "max_equalized_odds_difference": 1.0, "max_group_accuracy_drop": 1.0}
    settings_yaml["gates"]["on_device"] |= {"max_accuracy_drop": 1.0, "max_parity_increase": 1.0,
                                            "min_agreement_with_keras": 0.0}
    settings_yaml["gates"]["conversion"] = {"min_agreement_with_keras": 0.0}
    params.write_text(yaml.safe_dump(settings_yaml, sort_keys=False))
    return params


def stages(scope: str) -> list[str]:
    from pipelines.catalog import STAGES

    names = list(STAGES)
    return names[: names.index("dataset_splits") + 1] if scope == "data" else names


def verify(project: Path) -> tuple[bool, str]:
    """`mobile-mlops verify` of the newest release folder (--params is the verify command's option, naming the
    project whose keys it trusts), and its last line of output."""
    releases = sorted((project / "releases").glob("*/*"), key=lambda p: p.stat().st_mtime)
    if not releases:
        return False, "no release folder"
    done = subprocess.run([sys.executable, "-m", "cli.main", "verify", str(releases[-1]), "--params",
                           str(project / "params.yaml")], cwd=REPO, capture_output=True, text=True)
    said = (done.stdout.strip() or done.stderr.strip()).splitlines()
    return done.returncode == 0, said[-1] if said else ""


def measure(work: Path, rows: int, scope: str, save=lambda result: None) -> dict:
    """Every step of one size in its own process; stops at the first step that fails (and says which). `save`
    gets the figures so far after every step (a run cut short keeps what it measured)."""
    started = time.perf_counter()
    params = synth_project(work / f"scale-{rows}", rows)
    result: dict = {"rows": rows, "date": time.strftime("%Y-%m-%d", time.gmtime()),
                    "generate_s": round(time.perf_counter() - started, 1), "steps": {}, "load_average": []}
    for name in stages(scope):
        try:
            figures = workload("plain", params, [name])
        except RuntimeError as exc:
            result["failed"] = f"{name}: {exc}"
            break
        result["steps"][name] = {"wall_s": figures["wall_s"], "cpu_s": figures["cpu_s"],
                                 "max_rss_mb": figures["max_rss_mb"]}
        result["load_average"].append(round(os.getloadavg()[0], 2))  # the machine's 1-minute load after the step
        print(f"  {rows} {name}: {result['steps'][name]}", flush=True)
        save(_totals(result))
    result = _totals(result)
    if scope == "all" and "failed" not in result:
        result["release_verified"], result["verify_output"] = verify(params.parent)
    return result


def _totals(result: dict) -> dict:
    steps = result["steps"].values()
    loads = result.get("load_average") or [0.0]
    return result | {"load_range": [min(loads), max(loads)], "wall_s": round(sum(s["wall_s"] for s in steps), 1),
                     "cpu_s": round(sum(s["cpu_s"] for s in steps), 1),
                     "peak_rss_mb": max((s["max_rss_mb"] for s in steps), default=0.0)}


def _save(out: Path, results: dict[int, dict]) -> None:
    """The figures so far (a run cut short keeps what it measured)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": describe(None), "sizes": [results[k] for k in sorted(results)]}, indent=2)
                   + "\n")


def plot(results: list[dict], target: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    rows = [r["rows"] / 1e6 for r in results]
    names = [n for n in results[0]["steps"] if all(n in r["steps"] for r in results)]
    for name in names:
        left.plot(rows, [r["steps"][name]["max_rss_mb"] / 1024 for r in results], marker="o", label=name)
    left.set(xlabel="rows (millions)", ylabel="peak memory (GiB)", title="Peak memory per step")
    left.legend(fontsize=7)
    right.plot(rows, [r["wall_s"] / 60 for r in results], marker="o", label="wall")
    right.plot(rows, [r["cpu_s"] / 60 for r in results], marker="o", label="CPU")
    right.set(xlabel="rows (millions)", ylabel="minutes", title="End to end")
    right.legend()
    fig.tight_layout()
    target.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(target, dpi=100)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", nargs="*", type=int, default=SIZES)
    parser.add_argument("--steps", choices=["data", "all"], default="all")
    parser.add_argument("--work", type=Path, default=Path("/tmp/mobile-mlops-bench-scale"))
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    previous = json.loads(args.out.read_text()) if args.out.is_file() else {}
    results = {r["rows"]: r for r in previous.get("sizes", [])}
    for rows in args.rows:
        shutil.rmtree(args.work / f"scale-{rows}", ignore_errors=True)
        args.work.mkdir(parents=True, exist_ok=True)
        results[rows] = measure(args.work, rows, args.steps, save=lambda so_far, rows=rows: _save(
            args.out, results | {rows: so_far | {"scope": args.steps}})) | {"scope": args.steps}
        shutil.rmtree(args.work / f"scale-{rows}", ignore_errors=True)
        ordered = [results[k] for k in sorted(results)]
        args.out.parent.mkdir(parents=True, exist_ok=True)
        bench = {"machine": describe(None), "sizes": ordered}
        args.out.write_text(json.dumps(bench, indent=2) + "\n")
        plot(ordered, PLOT if args.out == OUT else args.out.with_suffix(".png"))  # a trial run leaves the docs alone
        if args.out == OUT:
            write_section(bench)


if __name__ == "__main__":
    main()
