"""How small a data set's test split is for its fairness gate: the equal-rates floor per limited grouping.

`python -m benchmarks.fairness.floor --datasets boston-mortgage --splits 5` runs the data steps of each split (as the
benchmark does, split seeds 0..N-1), fits logistic regression on the train split for an operating point (its
selection, true and false positive rates on the test split), and prints, for every limit the fairness gate applies,
the floor (pipelines.training.metrics.equal_rates_floor at fairness.pass_share): what a model giving every group the
same selection rate (parity) or the same true and false positive rates (equalized odds) measures on the split's own
groups in that share of test splits. A limit below the floor fails such fair models on more than 1 - pass_share of
those splits, whatever was trained.

`--fair-draws N` also draws N models fair by construction per split (each test row selected at logistic regression's
overall selection rate, whatever its group and label) and runs the whole fairness gate on each: the share that passes
every limit at once is how often a perfectly fair model passes this split's gate, and its sum over the splits is the
number of splits such a model is expected to pass. `--set split.test_size=0.3` (repeatable) writes a params key into
every split's project first, to see what another test share or gate would do.

With `--references` it also runs the fairness gate itself (pipelines.governance.fairness, every grouping and limit as a
run applies them) on the reference models' decisions on each test split: how often the issue's yardsticks
(ExponentiatedGradient randomized and thresholded, GridSearch, logistic regression) would pass the gate a release
must pass.
"""
from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from benchmarks.fairness.baselines import GATED, reference_gates
from benchmarks.fairness.datasets import DATASETS, project_copy
from benchmarks.fairness.pipeline import DATA_STAGES, read_splits, run_stages
from pipelines.core.config import Settings, load_settings
from pipelines.core.gates import gate_limits
from pipelines.data.features import encode_features, encode_labels, fit_feature_spec
from pipelines.training.metrics import equal_rates_floor


def split_floors(name: str, seed: int, work: Path, references: bool = False, fair_draws: int = 0,
                 overrides: dict[str, object] | None = None) -> list[dict]:
    """Every gated limit of one split with its floor, the test rows and the gated groups' sizes; with `references`,
    one more row with the reference models' gate verdicts; with `fair_draws`, one with fair_pass_share."""
    from sklearn.linear_model import LogisticRegression

    settings = load_settings(project_copy(DATASETS[name], work / f"{name}-{seed}",
                                          {"split.seed": seed, **(overrides or {})}))
    stop = run_stages(settings, DATA_STAGES, {})
    splits = read_splits(settings)
    if stop or splits is None:
        return [{"seed": seed, "stop": stop}]
    params = settings.params
    spec = fit_feature_spec(splits["train"], params.data)
    x_train, x_test = encode_features(splits["train"], spec), encode_features(splits["test"], spec)
    y_train, y_test = encode_labels(splits["train"], spec), encode_labels(splits["test"], spec)
    proba = LogisticRegression(max_iter=2000).fit(x_train, y_train).predict_proba(x_test)[:, 1]
    gates, minimum = params.gates.fairness, params.gates.fairness.min_group_size
    groups = splits["test"][params.data.sensitive_features]
    floors = equal_rates_floor(y_test, proba, groups, params.train.threshold, share=params.fairness.pass_share,
                               intersection=True, min_group_size=minimum, seed=seed)
    rows = []
    for grouping, figures in floors.items():
        for key, value, _, limit in gate_limits(gates, grouping, list(floors)):
            rows.append({"seed": seed, "test_rows": len(y_test), "grouping": grouping, "limit_key": key,
                         "limit": limit, "floor": figures[value]})
    if references:
        rows.append({"seed": seed, "references": reference_gates(settings, splits)})
    if fair_draws:
        rate = float(np.mean(proba >= params.train.threshold))
        rows.append({"seed": seed, "fair_pass": fair_pass_share(settings, splits["test"], y_test, rate, fair_draws,
                                                                seed)})
    return rows


def fair_pass_share(settings: Settings, test: pd.DataFrame, y_test: np.ndarray, rate: float, draws: int,
                    seed: int, batch: int = 50) -> float:
    """The share of `draws` models fair by construction (every test row selected with probability `rate`) that pass
    every parity and equalized-odds limit of the run's fairness gate on these test rows."""
    from pipelines.governance.fairness import evaluate_models, fairness_gates

    params = settings.params
    config = params.fairness.model_copy(update={"bootstrap": 0})  # the verdict is on the point figures
    rng = np.random.default_rng(seed)
    groups, passed = test[params.data.sensitive_features], 0
    for start in range(0, draws, batch):
        decisions = {f"fair{i}": (rng.random(len(y_test)) < rate).astype(float)
                     for i in range(start, min(draws, start + batch))}
        report = evaluate_models(y_test, decisions, groups, config, 0.5, params.gates.fairness.min_group_size)
        failed = {r.name.split("[")[1].split("/")[0] for r in fairness_gates(report, params.gates.fairness)
                  if not r.passed and not r.name.startswith("max_group_accuracy_drop")}
        passed += len(decisions) - len(failed)
    return passed / draws


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fairness.floor", description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--splits", type=int, default=5)
    parser.add_argument("--fair-draws", type=int, default=0, metavar="N",
                        help="also run the fairness gate on N fair-by-construction models per split")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                        help="a params key written into every split's project (a YAML value), e.g. split.test_size=0.3")
    parser.add_argument("--references", action="store_true",
                        help="also run the fairness gate on the reference models' test decisions")
    args = parser.parse_args(argv)
    overrides = {key: yaml.safe_load(value) for key, _, value in (o.partition("=") for o in args.overrides)}
    work = Path(tempfile.mkdtemp(prefix="fairness-floor-"))
    try:
        print("| data set | test rows | grouping | limit | floor (mean over splits, max) | splits with floor > limit |")
        print("|---|---|---|---|---|---|")
        verdicts: list[tuple[str, dict]] = []
        fair: list[tuple[str, float]] = []
        for name in args.datasets:
            rows = [r for seed in range(args.splits)
                    for r in split_floors(name, seed, work, args.references, args.fair_draws, overrides)]
            verdicts += [(name, r) for r in rows if "references" in r]
            fair += [(name, r["fair_pass"]) for r in rows if "fair_pass" in r]
            rows = [r for r in rows if "references" not in r and "fair_pass" not in r]
            for stop in (r for r in rows if "stop" in r):
                print(f"| {name} | - | split {stop['seed']} stopped: {stop['stop']} | | | |")
            cells: dict[tuple[str, str, float], list] = {}
            for r in (r for r in rows if "stop" not in r):
                cells.setdefault((r["grouping"], r["limit_key"], r["limit"]), []).append(r)
            for (grouping, key, limit), found in cells.items():
                floors = [r["floor"] for r in found if r["floor"] is not None]
                shown = f"{np.mean(floors):.3f}, {max(floors):.3f}" if floors else "not measurable"
                over = sum(f > limit for f in floors)
                rows_shown = f"{min(r['test_rows'] for r in found)}-{max(r['test_rows'] for r in found)}"
                print(f"| {name} | {rows_shown} | {grouping} | {key.removeprefix('max_')} {limit:g} | {shown} | "
                      f"{over} of {len(found)} |")
        if fair:
            print("\n| data set | a fair-by-construction model passes the whole gate (expected splits) |")
            print("|---|---|")
            for name in dict.fromkeys(n for n, _ in fair):
                shares = [share for n, share in fair if n == name]
                print(f"| {name} | {sum(shares):.1f} of {len(shares)} (per split {min(shares):.0%} to "
                      f"{max(shares):.0%}) |")
        if verdicts:
            print_verdicts(verdicts)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def print_verdicts(verdicts: list[tuple[str, dict]]) -> None:
    """The reference models' fairness-gate pass counts per data set, with the limits that failed and how often."""
    print("\n| data set | reference | splits passing the fairness gate | failed limits (splits) |")
    print("|---|---|---|---|")
    for name in dict.fromkeys(n for n, _ in verdicts):
        found = [r["references"] for n, r in verdicts if n == name]
        for method in GATED:
            failed = [v[method] for v in found]
            counts: dict[str, int] = {}
            for limits in failed:
                for limit in dict.fromkeys(limits):
                    counts[limit] = counts.get(limit, 0) + 1
            listed = ", ".join(f"{k} ({v})" for k, v in sorted(counts.items(), key=lambda kv: -kv[1])) or "-"
            print(f"| {name} | {method} | {sum(not f for f in failed)} of {len(failed)} | {listed} |")


if __name__ == "__main__":
    main()
