"""The fleet loop measured on a release: detection per injected fault, a clean rollout, observed vs estimated cost.

    python -m benchmarks.fleet --params params.yaml [--release releases/adult-income/N] [--devices 100000]

Writes nothing into the project: telemetry goes to a temp folder. Prints Markdown tables.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from pipelines.core.config import load_settings
from pipelines.core.io import read_json
from pipelines.fleet import observed_finops, rollout, simulate, store
from pipelines.release_format.deployment import production_or_latest

FAULTS = {"latency": 3.0, "crash": 25.0, "data": 8.0, "fairness": 0.35, "accuracy": 0.12}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--release")
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--size", action="append", default=[], metavar="FAULT=SIZE", help="e.g. latency=1.5")
    parser.add_argument("--no-timing", action="store_true", help="only the detection table")
    args = parser.parse_args()
    sizes = {**FAULTS, **{k: float(v) for k, v in (s.split("=", 1) for s in args.size)}}
    settings = load_settings(args.params)
    release = Path(args.release) if args.release else production_or_latest(settings, "footprint.json")[0]
    frame = simulate.held_out(settings)
    model = simulate.load_model(settings, release, frame)
    config, params = settings.params.release.rollout, settings.params
    print(f"release {release}, {args.devices} devices, rollout {[(s.name, s.percent) for s in config.stages]}\n")
    print("| fault | size | decision | stage | days to decision | canary devices seen | breached |")
    print("|---|---:|---|---|---:|---:|---|")
    for fault, size in [("none", None), *sizes.items()]:
        sim = simulate.build(settings, release, devices=args.devices, seed=args.seed, frame=frame,
                             models=(model, model), faults={fault: size} if size else None)
        out = rollout.play(sim, config, params, days=args.days)
        breached = sorted({t.guardrail for t in out.looks[-1].tests if t.status == "breach"})
        print(f"| {fault} | {size or ''} | {out.final} | {out.looks[-1].stage} | {out.days} | {out.devices_seen} | "
              f"{', '.join(breached)} |")
    if args.no_timing:
        return
    with tempfile.TemporaryDirectory() as tmp:
        long = config.model_copy(update={"stages": [s.model_copy(update={"min_hours": 24 * 365}) for s in config.stages]})
        sim = simulate.build(settings, release, devices=args.devices, seed=args.seed, frame=frame, models=(model, model))
        began = time.perf_counter()
        out = rollout.play(sim, long, params, days=args.days, directory=Path(tmp))
        wall = time.perf_counter() - began
        began = time.perf_counter()
        rollout.analyse_day(Path(tmp), "9999-12-31", config, params, 0, 1)
        once = time.perf_counter() - began
        print(f"\n{args.devices} devices x {out.days} days (canary stage held): simulation "
              f"{out.seconds_simulation:.1f} s, {out.days} daily analyses {out.seconds_analysis:.1f} s, "
              f"one analysis of all {len(store.days(Path(tmp)))} stored partitions {once:.1f} s, wall {wall:.1f} s\n")
        rows = observed_finops.observed(store.read_days(Path(tmp)), params)
        table = observed_finops.compare(rows, read_json(release / "cost.json"), params)
    print("| month | metric | observed | estimated (cost.json) | observed / estimated |")
    print("|---|---|---:|---:|---:|")
    for r in table:
        est = "" if r["estimated"] is None else f"{r['estimated']:.4g}"
        ratio = "" if r["ratio"] is None else f"{r['ratio']:.2f}"
        print(f"| {r['month']} | {r['metric']} | {r['observed']:.4g} | {est} | {ratio} |")


if __name__ == "__main__":
    main()
