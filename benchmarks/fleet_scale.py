"""The fleet loop at scale: canary analysis, observed FinOps and production drift over N devices x D days of stored
telemetry, queried in place (DuckDB over the day-partitioned Parquet store).

    python -m benchmarks.fleet_scale [--scales 100000,1000000] [--days 30] [--params params.yaml] [--keep DIR]
        [--write-docs]

Telemetry is synthetic but shaped like the simulator's (Poisson inferences and sessions, a multinomial latency
histogram, binomial crashes, predictions, feedback and offloads, one model download per device and cohort, a 5%
canary by a stable bucket, RR group reports), drawn vectorized per day and written through the store's own
`write_batch` (one shard per day plus the day's input-bucket sums). Each analysis runs in a fresh process; its wall
time, CPU time (user + system) and peak RSS come from os.wait4. Prints a Markdown table; `--write-docs` puts it
in docs/benchmarks.md under HEADING.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.machine import _cpu_model
from benchmarks.variants import replace_section
from pipelines.core.config import Params, load_settings
from pipelines.core.io import atomic_path
from pipelines.fleet import history, observed_finops, production_drift, rollout, store
from pipelines.fleet.schema import BUCKETS, HIST, LATENCY_EDGES_MS, typed

HEADING = "## Fleet analysis at scale (the telemetry store queried in place)"
CANARY_PERCENT = 5
FEATURE_DEVICES = 1000  # devices per day whose sampled input is bucketed (production drift)
PROFILE = {"features": {**{f"x{i}": {"kind": "numeric", "edges": list(np.linspace(0, 1, 11)),
                                     "proportions": [0.1] * 10} for i in range(6)},
                        "colour": {"kind": "categorical", "counts": {"red": 50, "green": 30, "blue": 20}}}}


def _ids(rng: np.random.Generator, n: int) -> np.ndarray:
    """n pseudonymous device ids (32 hex digits), vectorized."""
    return np.frombuffer(rng.bytes(16 * n).hex().encode(), dtype="S32").astype(str)


def write_store(directory: Path, devices: int, days: int, params: Params, seed: int = 0,
                start: str = "2026-01-01") -> float:
    """Write `days` day partitions of `devices` devices' telemetry; seconds taken."""
    began = time.perf_counter()
    rng = np.random.default_rng(seed)
    finops, k = params.finops.fleet, len(params.fleet.groups)
    ids = _ids(rng, devices)
    canary = rng.integers(0, 100, devices) < CANARY_PERCENT
    platform = np.where(rng.random(devices) < 0.6, "android", "ios")
    tier = rng.choice(np.array(list(params.devices.tiers)), devices)
    report = rng.integers(0, k, devices)
    downloaded = np.zeros(devices, dtype=bool)
    latency_p = np.exp(-0.5 * ((np.arange(BUCKETS) - 6.5) / 1.2) ** 2)
    latency_p /= latency_p.sum()
    lower = np.concatenate([[0.0], LATENCY_EDGES_MS])
    for offset in range(days):
        day = (dt.date.fromisoformat(start) + dt.timedelta(days=offset)).isoformat()
        active = np.flatnonzero(rng.random(devices) < 0.9)
        n = len(active)
        inferences = rng.poisson(finops.inferences_per_device_per_day, n)
        sessions = 1 + rng.poisson(2.0, n)
        hist = rng.multinomial(inferences, latency_p)
        top = BUCKETS - 1 - np.argmax(hist[:, ::-1] > 0, axis=1)
        calls = rng.binomial(inferences, 0.05)
        feedback = rng.binomial(inferences, 0.3)
        new = ~downloaded[active]
        downloaded[active] = True
        size = np.where(new, 8000, 0)
        cellular = rng.random(n) < finops.cellular_share
        on_canary = canary[active]
        frame = pd.DataFrame({
            "device_id": ids[active], "salt_epoch": 0, "day": day, "app_version": "1.0.0",
            "model_version": np.where(on_canary, "2", "1"), "variant": np.where(on_canary, "canary", "production"),
            "platform": platform[active], "tier": tier[active], "group_rr": report[active], "sessions": sessions,
            "inferences": inferences, "crashes": rng.binomial(sessions, 0.0002),
            "download_bytes_wifi": np.where(cellular, 0, size), "download_bytes_cellular": np.where(cellular, size, 0),
            "offload_calls": calls, "offload_bytes": calls * params.finops.endpoint.payload_bytes,
            "predicted_positive": rng.binomial(inferences, 0.24 + 0.01 * report[active]),
            "feedback_count": feedback, "feedback_correct": rng.binomial(feedback, 0.82),
            "battery_mj": inferences * 0.4 * rng.lognormal(0, 0.1, n), "cloud_latency_ms_sum": calls * 80.0,
            "latency_max_ms": np.where(inferences > 0, lower[top] * 1.5, 0.0)})
        frame[list(HIST)] = hist
        features = {name: (rng.multinomial(FEATURE_DEVICES, f["proportions"]).tolist() if f["kind"] == "numeric"
                           else rng.multinomial(FEATURE_DEVICES, [0.5, 0.3, 0.2, 0.0]).tolist())
                    for name, f in PROFILE["features"].items()}
        store.write_batch(directory, f"bench-{day}", typed(frame), None, {day: features})
    return time.perf_counter() - began


def analyse(directory: Path, params_path: str) -> dict[str, float]:
    """What the three post-release assets compute, timed: canary decision + history, observed FinOps, drift."""
    params = load_settings(params_path).params
    last = store.days(directory)[-1]
    out: dict[str, float] = {}
    began = time.perf_counter()
    decision, _, tests, _ = rollout.analyse_day(directory, last, params.release.rollout, params, 0,
                                                len(store.days(directory)))
    source = store.shards(directory, until=last)
    rows = history.history(source, params)
    out["canary_s"] = time.perf_counter() - began
    began = time.perf_counter()
    months = observed_finops.observed(store.shards(directory), params)
    observed_finops.budget_results(months, {"release": {}}, params)
    out["finops_s"] = time.perf_counter() - began
    began = time.perf_counter()
    production_drift.drift(store.feature_counts(directory), PROFILE, params.fleet.histogram_epsilon,
                           params.drift.psi_threshold)
    out["drift_s"] = time.perf_counter() - began
    out.update(decision=decision, canary_devices=tests[0].units, history_rows=len(rows),
               device_days=sum(m["device_days"] for m in months))
    return out


def measured(directory: Path, params_path: str) -> dict:
    """The analysis in a fresh process: its own figures plus wall, CPU and peak RSS from os.wait4."""
    began = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-m", "benchmarks.fleet_scale", "--analyse", str(directory),
                              "--params", params_path], stdout=subprocess.PIPE, text=True)
    stdout = child.stdout.read()  # type: ignore[union-attr]
    _, status, usage = os.wait4(child.pid, 0)
    if status != 0:
        raise SystemExit(f"analysis of {directory} failed (status {status})")
    return {**json.loads(stdout.strip().splitlines()[-1]), "wall_s": time.perf_counter() - began,
            "cpu_s": usage.ru_utime + usage.ru_stime, "peak_rss_mib": usage.ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--scales", default="100000,1000000", help="fleet sizes, comma-separated")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--keep", help="write the stores under this folder and keep them")
    parser.add_argument("--write-docs", action="store_true", help="put the table in docs/benchmarks.md")
    parser.add_argument("--analyse", help=argparse.SUPPRESS)  # the child process: analyse one store, print JSON
    args = parser.parse_args()
    if args.analyse:
        print(json.dumps(analyse(Path(args.analyse), args.params)))
        return
    params = load_settings(args.params).params
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="fleet-scale-"))
    lines = ["| devices | days | device-days | store MB | write s | analysis wall s | CPU s | peak RSS MiB | canary s "
             "| FinOps s | drift s | decision |", "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    print("\n".join(lines), flush=True)
    try:
        for devices in (int(s) for s in args.scales.split(",")):
            directory = root / f"{devices}x{args.days}"
            shutil.rmtree(directory, ignore_errors=True)
            write_s = write_store(directory, devices, args.days, params)
            mb = sum(f.stat().st_size for f in directory.rglob("*") if f.is_file()) / 1e6
            r = measured(directory, args.params)
            lines.append(f"| {devices:,} | {args.days} | {r['device_days']:,} | {mb:,.0f} | {write_s:.1f} | "
                         f"{r['wall_s']:.1f} | {r['cpu_s']:.1f} | {r['peak_rss_mib']:,.0f} | {r['canary_s']:.1f} | "
                         f"{r['finops_s']:.1f} | {r['drift_s']:.2f} | {r['decision']} |")
            print(lines[-1], flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    if args.write_docs:
        note = (f"Measured {dt.datetime.now(dt.UTC):%Y-%m-%d} with `make bench-fleet` on {_cpu_model()}, "
                f"{os.cpu_count()} cores shared with other work (wall times are noisy; CPU time is the steadier "
                f"figure). Synthetic telemetry, {CANARY_PERCENT}% canary, written through the store's `write_batch` "
                "(write s); then in a fresh process the canary decision + guardrail history, observed FinOps and "
                "production drift, all queried in place by DuckDB; peak RSS is that process's.")
        page = Path("docs/benchmarks.md")
        with atomic_path(page) as tmp:
            tmp.write_text(replace_section(page.read_text(), "\n".join(lines) + "\n\n" + note, HEADING))


if __name__ == "__main__":
    main()
