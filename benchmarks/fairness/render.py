"""docs/fairness-benchmark.md and one Pareto plot per data set, from the benchmark's results JSON."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.fairness.baselines import GATED, METHODS
from benchmarks.fairness.datasets import DATASETS
from benchmarks.fairness.frontier import FAMILIES
from benchmarks.fairness.summary import (
    ACCURACY_SLACK,
    DPD_SLACK,
    FIGURES,
    PIPELINE,
    PIPELINE_KERAS,
    REFERENCE,
    method_points,
    reaches,
)
from pipelines.core.safe_text import md_cell

GATE_PASSES = 18  # issue 25: of 20 splits

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
             + (f" (Android variant: {', '.join(summary['variants'])})" if summary["variants"] else "")
             + ("; mitigation released (`models/trained/mitigation.json`): "
                + ", ".join(f"{md_cell(m)} on {n}" for m, n in summary["mitigations"].items())
                if summary.get("mitigations") else "") + "."]
    for stop in summary["stops"]:
        parts.append(f"- split {stop['seed']} stopped: {md_cell(stop['line'], 600)}")
    if frontier_section(entry):
        parts.append(frontier_section(entry))
    parts += [f"Acceptance rule: **{'pass' if verdict['passed'] else 'fail'}** ({md_cell(verdict['why'])})"
              f"{_partial(entry)}.",
              f"![{name}: accuracy against DPD]({plot})"]
    return "\n\n".join(parts)


FAMILY_SHORT = {"eg_thresholded": "EG thresholded", "eg_distilled": "network distilled from EG",
                "grid_search": "GridSearch model"}
FAMILY_STYLE = {"eg_thresholded": ("C3", "D"), "eg_distilled": ("C9", "o"), "grid_search": ("C4", "^")}


def _bound(family: str, key: Any) -> str:
    return f"multiplier #{key}" if family == "grid_search" else f"eps {key:g}"


def frontier_section(entry: dict[str, Any]) -> str:
    """The deterministic models' table (GridSearch: its Pareto-efficient models) and whether any reaches EG's point."""
    frontier, reference = entry["summary"].get("frontier") or {}, entry["summary"]["methods"].get(REFERENCE)
    if not frontier or reference is None:
        return ""
    rows, reached = [], []
    for family, points in frontier.items():
        for point in points:
            hit = reaches(point, reference)
            rows.append([FAMILY_SHORT[family], _bound(family, point["key"]),
                         *(_cell(point[f]) for f in FIGURES), "yes" if hit else "no"])
            if hit:
                reached.append((point, family))
    target = (f"EG's randomized point, accuracy {reference['accuracy']['mean']:.3f} at DPD "
              f"{reference['dpd']['mean']:.3f} (within {ACCURACY_SLACK} accuracy and {DPD_SLACK} DPD)")
    if reached:
        best = max(reached, key=lambda r: (r[0]["accuracy"]["mean"], -r[0]["dpd"]["mean"]))
        finding = (f"{len(reached)} deterministic model(s) reach {target}; the most accurate: "
                   f"{FAMILY_SHORT[best[1]]} ({_bound(best[1], best[0]['key'])}), accuracy "
                   f"{best[0]['accuracy']['mean']:.3f} at DPD {best[0]['dpd']['mean']:.3f}.")
    else:
        finding = (f"**No deterministic model tried reaches {target}**: the table is the measured deterministic "
                   "frontier.")
    return "\n\n".join(["#### Deterministic frontier", finding,
                         _table(["model", "bound", "accuracy", "DPD", "EOD", "reaches EG's point"], rows)])


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
        chosen = ", ".join(f"{md_cell(m)} ({n})" for m, n in (entry["summary"].get("mitigations") or {}).items())
        rows.append([name, str(entry["rows"]), f"`{entry['grouping']}`", pair(eg), pair(mine),
                     f"{entry['summary']['released']}/{entry['summary']['splits']}", chosen or "-",
                     ("pass" if verdict["passed"] else f"fail: {md_cell(verdict['why'])}") + _partial(entry),
                     f"`{md_cell(entry['commit'])}`"])
    for name in DATASETS:
        if name not in results["datasets"]:
            rows.append([name, "-", "-", "-", "-", "-", "-", "not measured: no split finished", "-"])
    return _table(["data set", "rows", "grouping", "EG accuracy / DPD", "released accuracy / DPD", "released",
                   "mitigation released (splits)", "acceptance rule", "commit"], rows)


def findings(results: dict[str, Any]) -> str:
    """Per data set: does a deterministic model reach EG's randomized point, and which family gets closest."""
    lines = []
    for name, entry in results["datasets"].items():
        frontier, reference = entry["summary"].get("frontier") or {}, entry["summary"]["methods"].get(REFERENCE)
        if not frontier or reference is None:
            continue
        hits = [(family, p) for family, points in frontier.items() for p in points if reaches(p, reference)]
        if hits:
            families = sorted({FAMILY_SHORT[f] for f, _ in hits})
            lines.append(f"- {name}: deterministic models reach EG's randomized point ({', '.join(families)})")
        else:
            lines.append(f"- {name}: **no deterministic model tried reaches EG's randomized point** (see its "
                         "deterministic frontier below)")
    return ("Deterministic frontier (does one deployable model reach EG's randomized accuracy and DPD, within the "
            "rule's slack?):\n\n" + "\n".join(lines)) if lines else ""


def gate_section(results: dict[str, Any]) -> str:
    counts = results.get("gate_counts") or {}
    if not counts:
        return ("Not run for this page: `python -m benchmarks.fairness --gate-splits 20` runs it on the data sets "
                "under 3,000 rows.")
    rows = []
    for name, c in counts.items():
        planned = c.get("planned", c["splits"])
        verdict = ("pass" if c["passed"] >= GATE_PASSES * planned / 20 else "fail") if c["splits"] >= planned else \
            f"partial: {c['splits']} of {planned} splits run"
        rows.append([name, f"{c['passed']} of {c['splits']}", f"{c['released']} of {c['splits']}", verdict,
                     _references(c), f"`{c['commit']}`, {c.get('runner', 'run')}",
                     "; ".join(md_cell(s, 200) for s in c["stops"]) or "-"])
    return "\n\n".join([
        f"The issue asks that the released model pass its fairness gates on the test split in at least {GATE_PASSES} "
        "of 20 splits of each data set under 3,000 rows. Each split is a full pipeline run with default params "
        "(the benchmark's own splits of the same commit are reused); a split counts when the run released a model "
        "and the Keras model's and the released Android variant's parity and equalized-odds gates passed on the "
        "test split (a run stopped by any gate does not count). The same fairness gate is also run on the "
        "reference models' decisions on each test split (benchmarks.fairness.baselines.gate_failures): how often "
        "the issue's yardstick, ExponentiatedGradient, and the other references would pass the gate a release must "
        "pass.",
        _table(["data set", "fairness gates passed on test", "released", "verdict (at least 18 of 20)",
                "references passing the same gate: " + ", ".join(SHORT[m] for m in GATED),
                "commit, runner", "stop lines"], rows)])


def _references(count: dict[str, Any]) -> str:
    """`13, 14, 4, 2 of 20`: each GATED reference's passes of the fairness gate, in GATED order."""
    found = count.get("references") or {}
    if not found:
        return "not run"
    return f"{', '.join(str(found[m]) for m in GATED if m in found)} of {count['reference_splits']}"


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
    for family, points in (entry["summary"].get("frontier") or {}).items():
        line = sorted(points, key=lambda p: p["dpd"]["mean"])
        color, marker = FAMILY_STYLE[family]
        axes.plot([p["dpd"]["mean"] for p in line], [p["accuracy"]["mean"] for p in line], color=color,
                  marker=marker, markersize=4, linewidth=1, linestyle="--", alpha=0.8,
                  label=f"{FAMILY_SHORT[family]} (deterministic, means)")
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
    legend = "\n".join([*(f"- {SHORT[m].strip('*')}: {LABELS[m]}" for m in SHORT),
                        *(f"- {FAMILY_SHORT[f]} (deterministic frontier): {text}" for f, text in FAMILIES.items())])
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
        "`split.seed` set and runs the pipeline there with default params: every stage of the catalog with its "
        "gates, in order, as `dvc repro` and `mobile-mlops stage` run them (`--runner stages`, the default: one "
        "process for all splits, so TensorFlow, Great Expectations and MLflow are imported once), or the real "
        "`mobile-mlops run` under Dagster in a process of its own per split (`--runner run`; each section says "
        "which). Then it fits the baselines on the run's own train split and measures them on its test split. "
        "Every figure is on the test split, computed by the "
        "pipeline's metric code (fairlearn's definitions) over the constrained grouping (`fairness.features`, by "
        "default the intersection of all sensitive features), leaving out groups under "
        "`gates.fairness.min_group_size` test rows as the fairness gate does. Adult ships a fixed test file, so "
        "its seeds vary the train/validation split and the model, not the test rows.",
        legend,
        "Acceptance rule (issue 25): on every data set, with default params, the run releases a model whose int8 "
        f"Android variant has mean accuracy >= the ExponentiatedGradient baseline's - {ACCURACY_SLACK} and mean "
        f"DPD <= the baseline's + {DPD_SLACK} (means over the splits). A data set where any split stopped fails.",
        "## Summary", overview(results), findings(results),
        "## Per data set", *sections,
        "## Fairness gate over 20 splits (data sets under 3,000 rows)", gate_section(results),
        "## How to run",
        "```\nmake bench-fairness                                     # every data set, 5 splits\n"
        ".venv/bin/python -m benchmarks.fairness --datasets german-credit --splits 2\n"
        ".venv/bin/python -m benchmarks.fairness --gate-splits 20   # the 20-split gate count, small data sets\n"
        ".venv/bin/python -m benchmarks.fairness --runner run       # each split through `mobile-mlops run`\n"
        ".venv/bin/python -m benchmarks.fairness --render           # this page again from results.json\n"
        "# one process per data set, each into its own folder, then one page:\n"
        ".venv/bin/python -m benchmarks.fairness --datasets adult --docs /tmp/bench/adult\n"
        ".venv/bin/python -m benchmarks.fairness --merge /tmp/bench/*\n"
        ".venv/bin/python -m benchmarks.fairness.floor --splits 5  # each test split against its gates' noise\n"
        "# how often a model fair by construction passes the whole gate, here at another test share:\n"
        ".venv/bin/python -m benchmarks.fairness.floor --splits 20 --fair-draws 400 --set split.test_size=0.3\n```",
        "Cost (measured on the machine above, shared, so noisy): one German credit split, alone at load 22, took "
        "264 s wall and 48 CPU seconds with `--runner stages` (pipeline, baselines and frontier; the pipeline is "
        "about half, trained_model a third of it); `mobile-mlops run` by itself took 178 s wall and 46 CPU seconds "
        "for the pipeline only. In the 2 December run (six processes, one per data set, at load 30-37, each "
        "process getting about 4% of a core) a first split took 31-35 minutes on every data set, so 5 splits x 6 "
        "data sets did not fit in 25 minutes there; on a quiet 2-core machine the CPU figures above are the bound. "
        "On 3 December two processes (German credit, recidivism and Boston mortgage with `--gate-splits 20`; CPS, "
        "401(k) and Adult) beside other work (load average 3.5-6) took 6.5 min (German credit) to 12.8 min (Adult) "
        "for 5 splits, and 9 to 12 min for the 15 further gate splits of each small data set: about 55 minutes of "
        "wall time in all. On 4 December two processes (recidivism and Boston mortgage with `--gate-splits 20`; "
        "German credit with `--gate-splits 20`, CPS and 401(k)), with `make test` beside them for most of the time, "
        "took 25 minutes of wall time for all five (5.3 to 6.9 min for each data set's 5 splits); Adult was not "
        "run again (its runs do not cross-validate and train the same weights). Later that day, on the sized test "
        "split, two processes took 14.6 minutes (CPS, then German credit with `--gate-splits 20`) and 10.0 minutes "
        "(recidivism with `--gate-splits 20`); then CPS (5.1 min) and Boston mortgage with `--gate-splits 20` "
        "(11.5 min), the first 6 minutes beside each other, then beside `make test`.",
    ]) + "\n"
