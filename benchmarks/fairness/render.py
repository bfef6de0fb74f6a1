"""docs/fairness-benchmark.md and one Pareto plot per data set, from the benchmark's results JSON."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.fairness.baselines import METHODS
from benchmarks.fairness.datasets import DATASETS
from benchmarks.fairness.summary import (
    ACCURACY_SLACK,
    DPD_SLACK,
    FIGURES,
    PIPELINE,
    PIPELINE_KERAS,
    REFERENCE,
    method_points,
)
from pipelines.core.safe_text import md_cell

LABELS = {**METHODS, PIPELINE: "what `mobile-mlops run` released with default params: the Android variant",
          PIPELINE_KERAS: "the same run's Keras model (float, before conversion)"}
SHORT = {"majority": "majority", "logistic": "logistic regression", "eg_randomized": "EG (randomized)",
         "eg_thresholded": "EG (thresholded)", "grid_search": "GridSearch", "keras_unmitigated": "Keras, unmitigated",
         PIPELINE: "**released (Android)**", PIPELINE_KERAS: "run's Keras model"}


MARKERS = {"majority": "v", "logistic": "s", "eg_randomized": "o", "eg_thresholded": "D", "grid_search": "^",
           "keras_unmitigated": "P", PIPELINE: "*", PIPELINE_KERAS: "X"}


def _cell(facts: dict[str, Any]) -> str:
    if facts["mean"] is None:
        return "n/a"
    return f"{facts['mean']:.3f} ± {facts['std']:.3f}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def dataset_section(name: str, entry: dict[str, Any], plot: str) -> str:
    summary = entry["summary"]
    rows = [[SHORT[m], *(_cell(summary["methods"][m][f]) for f in FIGURES), str(summary["methods"][m]["accuracy"]["n"])]
            for m in SHORT if m in summary["methods"]]
    verdict = summary["acceptance"]
    parts = [f"### {name}",
             f"{entry['rows']} rows after validation ({entry['test_rows']} test rows a split), "
             f"label `{entry['label']}`, "
             f"constrained grouping `{entry['grouping']}`; params: `{entry['params']}`; data: `{entry['source']}`"
             f". Measured {entry['date']} at "
             f"commit `{entry['commit']}` in {entry['wall_s'] / 60:.1f} min"
             + (f"; **params overridden** (not the defaults): {md_cell(entry['overrides'])}"
                if entry.get("overrides") else "")
             + (f". **Only {summary['splits']} of the {entry['planned']} planned splits finished** (the run was "
                "stopped)" if summary["splits"] < entry.get("planned", 0) else "") + ".",
             _table(["method", "accuracy", "DPD", "EOD", "splits"], rows),
             f"Released on {summary['released']} of {summary['splits']} splits"
             + (f" (Android variant: {', '.join(summary['variants'])})" if summary["variants"] else "") + "."]
    for stop in summary["stops"]:
        parts.append(f"- split {stop['seed']} stopped: {md_cell(stop['line'], 600)}")
    parts += [f"Acceptance rule: **{'pass' if verdict['passed'] else 'fail'}** ({md_cell(verdict['why'])})"
              f"{_partial(entry)}.",
              f"![{name}: accuracy against DPD]({plot})"]
    return "\n\n".join(parts)


def _partial(entry: dict[str, Any]) -> str:
    done, planned = entry["summary"]["splits"], entry.get("planned", 0)
    return f" (provisional: {done} of {planned} splits)" if done < planned else ""


def overview(results: dict[str, Any]) -> str:
    rows = []
    for name, entry in results["datasets"].items():
        methods = entry["summary"]["methods"]
        eg, mine = methods.get(REFERENCE), methods.get(PIPELINE)

        def pair(m):
            if not m or m["dpd"]["mean"] is None:
                return "-"
            return f"{m['accuracy']['mean']:.3f} / {m['dpd']['mean']:.3f}"
        verdict = entry["summary"]["acceptance"]
        rows.append([name, str(entry["rows"]), f"`{entry['grouping']}`", pair(eg), pair(mine),
                     f"{entry['summary']['released']}/{entry['summary']['splits']}",
                     ("pass" if verdict["passed"] else f"fail: {md_cell(verdict['why'])}") + _partial(entry)])
    for name in DATASETS:
        if name not in results["datasets"]:
            rows.append([name, "-", "-", "-", "-", "-", "not measured: no split finished"])
    return _table(["data set", "rows", "grouping", "EG accuracy / DPD", "released accuracy / DPD", "released",
                   "acceptance rule"], rows)


def gate_section(results: dict[str, Any]) -> str:
    counts = results.get("gate_counts") or {}
    if not counts:
        return ("Not run for this page: `python -m benchmarks.fairness --gate-splits 20` runs it on the data sets "
                "under 3,000 rows.")
    rows = [[name, f"{c['passed']} of {c['splits']}", f"{c['released']} of {c['splits']}",
             "; ".join(md_cell(s, 200) for s in c["stops"]) or "-"] for name, c in counts.items()]
    return _table(["data set", "fairness gates passed on test", "released", "stop lines"], rows)


def pareto_plot(name: str, entry: dict[str, Any], target: Path) -> None:
    """Accuracy against DPD: each split a faint point, each method's mean with one standard deviation as bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6.4, 4.4))
    points = method_points(entry["splits"])
    for index, (method, label) in enumerate(SHORT.items()):
        pts = [p for p in points.get(method, []) if p["dpd"] is not None]
        if not pts:
            continue
        color, marker = f"C{index}", MARKERS[method]
        axes.scatter([p["dpd"] for p in pts], [p["accuracy"] for p in pts], color=color, alpha=0.25, s=14)
        m = entry["summary"]["methods"][method]
        axes.errorbar(m["dpd"]["mean"], m["accuracy"]["mean"], xerr=m["dpd"]["std"], yerr=m["accuracy"]["std"],
                      color=color, marker=marker, markersize=14 if method == PIPELINE else 7, capsize=3,
                      fillstyle="none" if method in ("eg_thresholded", PIPELINE_KERAS) else "full",
                      zorder=3 if method == PIPELINE else 2, label=label.replace("*", ""))
    axes.set_xlabel("demographic parity difference (test, lower is fairer)")
    axes.set_ylabel("accuracy (test)")
    axes.set_title(f"{name}: {entry['summary']['splits']} splits, mean ± std")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7, loc="best")
    figure.tight_layout()
    target.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(target, dpi=110)
    plt.close(figure)


def render(results: dict[str, Any], docs: Path) -> str:
    """The page's Markdown; writes the plots under docs/fairness-benchmark/."""
    machine = results["machine"]
    sections = []
    for name, entry in results["datasets"].items():
        plot = f"fairness-benchmark/{name}.png"
        pareto_plot(name, entry, docs / plot)
        sections.append(dataset_section(name, entry, plot))
    legend = "\n".join(f"- {SHORT[m].strip('*')}: {LABELS[m]}" for m in SHORT)
    return "\n\n".join([
        "# Fairness benchmark",
        "Generated by `make bench-fairness` (`python -m benchmarks.fairness`) from "
        "`docs/fairness-benchmark/results.json`; do not edit by hand.",
        f"Machine: {machine['cpu']}, {machine['cores']} cores (shared with other work: times are noisy), "
        f"{machine['memory_gib']} GiB, Python {machine['python']}, "
        f"TensorFlow {machine['versions'].get('tensorflow-cpu')}, "
        f"fairlearn {results['fairlearn']}. Split seeds 0..N-1 (`split.seed`); each data set's section names the "
        "commit it was measured at, its date and how long its splits took.",
        "## How it works",
        "For each data set and split seed the harness copies the data set's params file (written the documented way: "
        "the data block and the model's name, defaults for the rest) and data into a fresh folder with "
        "`split.seed` set, runs the pipeline's data steps there (load, validate, split), fits the baselines on the "
        "train split and measures them on the test split, and meanwhile runs the real `mobile-mlops run` on the "
        "same folder. The test rows are the pipeline's own. Every figure is on the test split, computed by the "
        "pipeline's metric code (fairlearn's definitions) over the constrained grouping (`fairness.features`, by "
        "default the intersection of all sensitive features), leaving out groups under "
        "`gates.fairness.min_group_size` test rows as the fairness gate does. Adult ships a fixed test file, so "
        "its seeds vary the train/validation split and the model, not the test rows.",
        legend,
        "Acceptance rule (issue 25): on every data set, with default params, the run releases a model whose int8 "
        f"Android variant has mean accuracy >= the ExponentiatedGradient baseline's - {ACCURACY_SLACK} and mean "
        f"DPD <= the baseline's + {DPD_SLACK} (means over the splits). A data set where any split stopped fails.",
        "## Summary", overview(results),
        "## Per data set", *sections,
        "## Fairness gate over 20 splits (data sets under 3,000 rows)", gate_section(results),
        "## How to run",
        "```\nmake bench-fairness                                     # every data set, 5 splits\n"
        ".venv/bin/python -m benchmarks.fairness --datasets german-credit --splits 2\n"
        ".venv/bin/python -m benchmarks.fairness --gate-splits 20   # the 20-split gate count, small data sets\n"
        ".venv/bin/python -m benchmarks.fairness --render           # this page again from results.json\n```",
    ]) + "\n"
