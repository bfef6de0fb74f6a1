"""The fleet loop measured on a release: detection power per guardrail, the false-rollback rate, timing and cost.

    python -m benchmarks.fleet --params params.yaml [--release releases/adult-income/N]
        [--scales 10000,100000,1000000] [--within 7] [--seeds 50] [--no-timing]

Detection power: for each guardrail's fault and each fleet size, the smallest fault on a ladder of sizes that the
staged rollout rolls back (with that guardrail breached) within `--within` days, one seed per cell (the ladder is
walked from the size the smaller fleet needed: down while detected, else up). False rollbacks: clean rollouts over
`--seeds` seeds of `--clean-devices` devices, 20 days each. Writes nothing into the project (telemetry goes to a temp
folder); prints Markdown.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from pipelines.core.config import load_settings
from pipelines.core.io import read_json
from pipelines.core.progress import track
from pipelines.fleet import observed_finops, rollout, simulate, store
from pipelines.release_format.deployment import production_or_latest

# Fault sizes, smallest first: latency x, crash rate x, offload payload x (all online inferences offloaded), share
# of one group's predictions lifted to positive, share of predictions flipped.
LADDERS = {"latency": (1.1, 1.2, 1.3, 1.5, 2.0, 3.0), "crash": (2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 25.0),
           "data": (1.5, 2.0, 4.0, 8.0, 16.0), "fairness": (0.02, 0.05, 0.1, 0.2, 0.35),
           "accuracy": (0.01, 0.02, 0.04, 0.08, 0.12)}
GUARDRAIL = {"latency": "latency", "crash": "crash_rate", "data": "data_mb_per_device_month",
             "fairness": "selection_rate_gap", "accuracy": "accuracy_drop"}
FAULTS = {"latency": 3.0, "crash": 25.0, "data": 8.0, "fairness": 0.35, "accuracy": 0.12}


def detected(settings, release, models, frame, fault: str, size: float, devices: int, days: int,
             seed: int) -> int | None:
    """Days until the fault's guardrail rolled the release back, or None when it did not within `days`."""
    sim = simulate.build(settings, release, devices=devices, seed=seed, frame=frame, models=models,
                         faults={fault: size})
    out = rollout.play(sim, settings.params.release.rollout, settings.params, days=days)
    breached = {t.guardrail for t in out.looks[-1].tests if t.status == "breach"}
    return out.days if out.final == "rollback" and GUARDRAIL[fault] in breached else None


def smallest(check, ladder: tuple[float, ...], start: int) -> tuple[int | None, int | None]:
    """(index of the smallest detected size, its day) walking the ladder from `start`: down while detected, else up.
    Detection is monotone in the size, so a larger fleet starts where the smaller one stopped."""
    day = check(ladder[start])
    if day is None:
        for index in range(start + 1, len(ladder)):
            if (day := check(ladder[index])) is not None:
                return index, day
        return None, None
    found = (start, day)
    for index in range(start - 1, -1, -1):
        if (day := check(ladder[index])) is None:
            break
        found = (index, day)
    return found


def power_table(settings, release, models, frame, scales: list[int], days: int, seed: int) -> list[str]:
    """Per guardrail and fleet size: the smallest fault size rolled back within `days` days (and after how many)."""
    lines = ["| guardrail (fault) | " + " | ".join(f"{n:,} devices" for n in scales) + " |",
             "|---|" + "---:|" * len(scales)]
    cells = [(fault, n) for fault in LADDERS for n in scales]
    found: dict[tuple[str, int], str] = {}
    start: dict[str, int] = {}
    for fault, n in track(cells, "detection power (fault x fleet size)"):
        ladder, began = LADDERS[fault], time.perf_counter()
        index, day = smallest(lambda size, f=fault, d=n: detected(settings, release, models, frame, f, size, d, days,
                                                                  seed), ladder, start.get(fault, 0))
        start[fault] = index if index is not None else len(ladder) - 1
        cell = f"{ladder[index]:g} (day {day})" if index is not None else f"> {ladder[-1]:g} (not within {days} d)"
        found[(fault, n)] = f"{cell}, {time.perf_counter() - began:.0f} s"
    for fault in LADDERS:
        lines.append(f"| {GUARDRAIL[fault]} ({fault}) | " + " | ".join(found[(fault, n)] for n in scales) + " |")
    return lines


def false_rollbacks(settings, release, models, frame, devices: int, seeds: int, first_seed: int = 100) -> list[str]:
    """Clean rollouts (no fault) over `seeds` seeds: how many were rolled back, promoted, or still held."""
    finals, breaches = [], {}
    for seed in track(range(first_seed, first_seed + seeds), "clean rollouts (false-rollback rate)"):
        sim = simulate.build(settings, release, devices=devices, seed=seed, frame=frame, models=models)
        out = rollout.play(sim, settings.params.release.rollout, settings.params, days=20)
        finals.append(out.final)
        if out.final == "rollback":
            for t in out.looks[-1].tests:
                if t.status == "breach":
                    breaches[t.guardrail] = breaches.get(t.guardrail, 0) + 1
    return ["| clean seeds | devices | rolled back | promoted | still held after 20 days | breached guardrails |",
            "|---:|---:|---:|---:|---:|---|",
            f"| {seeds} | {devices:,} | {finals.count('rollback')} ({finals.count('rollback') / seeds:.0%}) | "
            f"{finals.count('promoted')} | {finals.count('hold')} | "
            f"{', '.join(f'{k} x{v}' for k, v in sorted(breaches.items())) or 'none'} |"]


def timing(settings, release, models, frame, devices: int, days: int, seed: int) -> list[str]:
    """A held canary of `devices` devices for `days` days: simulation and analysis time, observed vs estimated."""
    config, params = settings.params.release.rollout, settings.params
    with tempfile.TemporaryDirectory() as tmp:
        long = config.model_copy(
            update={"stages": [s.model_copy(update={"min_hours": 24 * 365}) for s in config.stages]})
        sim = simulate.build(settings, release, devices=devices, seed=seed, frame=frame, models=models)
        began = time.perf_counter()
        out = rollout.play(sim, long, params, days=days, directory=Path(tmp))
        wall = time.perf_counter() - began
        began = time.perf_counter()
        rollout.analyse_day(Path(tmp), "9999-12-31", config, params, 0, 1)
        once = time.perf_counter() - began
        lines = [f"{devices} devices x {out.days} days (canary stage held): simulation {out.seconds_simulation:.1f} s, "
                 f"{out.days} daily analyses {out.seconds_analysis:.1f} s, one analysis of all "
                 f"{len(store.days(Path(tmp)))} stored partitions {once:.1f} s, wall {wall:.1f} s", ""]
        rows = observed_finops.observed(store.shards(Path(tmp)), params)
        table = observed_finops.compare(rows, read_json(release / "cost.json"), params)
    lines += ["| month | metric | observed | estimated (cost.json) | observed / estimated |",
              "|---|---|---:|---:|---:|"]
    for r in table:
        est = "" if r["estimated"] is None else f"{r['estimated']:.4g}"
        ratio = "" if r["ratio"] is None else f"{r['ratio']:.2f}"
        lines.append(f"| {r['month']} | {r['metric']} | {r['observed']:.4g} | {est} | {ratio} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--release")
    parser.add_argument("--scales", default="10000,100000,1000000", help="fleet sizes, comma-separated")
    parser.add_argument("--within", type=int, default=7, help="days a fault must be rolled back within")
    parser.add_argument("--seeds", type=int, default=50, help="clean seeds for the false-rollback rate (0: skip)")
    parser.add_argument("--clean-devices", type=int, default=20_000, help="fleet size of the clean rollouts")
    parser.add_argument("--first-seed", type=int, default=100, help="the clean rollouts' first seed")
    parser.add_argument("--no-power", action="store_true", help="skip the detection-power table")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-timing", action="store_true", help="skip the timing and observed-cost tables")
    args = parser.parse_args()
    settings = load_settings(args.params)
    release = Path(args.release) if args.release else production_or_latest(settings, "footprint.json")[0]
    frame = simulate.held_out(settings)
    model = simulate.load_model(settings, release, frame)
    models, scales = (model, model), [int(s) for s in args.scales.split(",")]
    stages = [(s.name, s.percent) for s in settings.params.release.rollout.stages]
    print(f"release {release}, rollout {stages}, seed {args.seed}\n")
    if not args.no_power:
        print(f"Smallest fault rolled back within {args.within} days (its guardrail breached), per fleet size; "
              "the cell's wall time after it:\n")
        print("\n".join(power_table(settings, release, models, frame, scales, args.within, args.seed)))
    if args.seeds:
        print()
        print("\n".join(false_rollbacks(settings, release, models, frame, args.clean_devices, args.seeds,
                                         args.first_seed)))
    if not args.no_timing:
        print()
        print("\n".join(timing(settings, release, models, frame, scales[0], 30, args.seed)))


if __name__ == "__main__":
    main()
