"""Hybrid inference: the on-device model answers confident cases, uncertain ones go to the cloud float model.

A row is offloaded when |p_device - threshold| < delta. For each delta in a grid we measure the offload
rate, the hybrid accuracy and the cloud request volume; the chosen delta goes into the release as the
app's offload configuration.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from pipelines.core.config import OffloadConfig
from pipelines.core.errors import PipelineError

RULE = "offload when abs(p - threshold) < delta, else answer on device with p >= threshold"


def offload_grid(device: np.ndarray, cloud: np.ndarray, y: np.ndarray, threshold: float,
                 deltas: list[float], daily_inferences: int) -> list[dict[str, float]]:
    """Per delta: offload rate, hybrid accuracy, cloud requests per 1,000 inferences and per day."""
    return grid_rows(offload_counts(device, cloud, y, threshold, deltas), len(device), daily_inferences)


def offload_counts(device: np.ndarray, cloud: np.ndarray, y: np.ndarray, threshold: float,
                   deltas: list[float]) -> dict[float, np.ndarray]:
    """Per delta (sorted): [rows offloaded, rows the hybrid answers right]; counts of chunks add up."""
    device_pred, cloud_pred = device >= threshold, cloud >= threshold
    truth = np.asarray(y).astype(bool)
    out = {}
    for delta in sorted(set(deltas)):
        offloaded = np.abs(device - threshold) < delta
        hybrid = np.where(offloaded, cloud_pred, device_pred)
        out[float(delta)] = np.array([np.count_nonzero(offloaded), np.count_nonzero(hybrid == truth)], np.int64)
    return out


def grid_rows(counts: dict[float, np.ndarray], rows: int, daily_inferences: int) -> list[dict[str, float]]:
    """offload_grid from the counts over `rows` rows."""
    grid = []
    for delta, (offloaded, right) in counts.items():
        rate = float(offloaded / rows)
        grid.append({"delta": float(delta), "offload_rate": rate, "hybrid_accuracy": float(right / rows),
                     "requests_per_1k": rate * 1000, "cloud_requests_per_day": rate * daily_inferences})
    return grid


def choose_delta(grid: list[dict[str, float]], config: OffloadConfig, cloud_accuracy: float) -> dict[str, Any]:
    """A fixed delta from params, else the smallest grid delta whose hybrid accuracy reaches the target.

    The default target is the cloud model's own accuracy. When no grid delta reaches it, the most
    accurate one is chosen (smallest on ties) and `target_met` says so.
    """
    target = config.accuracy_target if config.accuracy_target is not None else cloud_accuracy
    if config.delta is not None:
        row = next((r for r in grid if r["delta"] == config.delta), None)
        if row is None:
            raise PipelineError(f"offload.delta: {config.delta} was not evaluated (grid: {[r['delta'] for r in grid]})")
        return {**row, "how": "fixed by offload.delta", "accuracy_target": target,
                "target_met": row["hybrid_accuracy"] >= target}
    meeting = [r for r in grid if r["hybrid_accuracy"] >= target]
    if meeting:
        row = min(meeting, key=lambda r: r["delta"])
        return {**row, "how": "smallest delta reaching accuracy_target", "accuracy_target": target, "target_met": True}
    best = max(r["hybrid_accuracy"] for r in grid)
    row = min((r for r in grid if r["hybrid_accuracy"] == best), key=lambda r: r["delta"])
    return {**row, "how": "no delta reached accuracy_target; most accurate delta", "accuracy_target": target,
            "target_met": False}


def app_config(chosen: dict[str, Any], threshold: float, device_file: str, cloud: dict[str, str]) -> dict[str, Any]:
    """What the app reads: which model runs on device, when to call the cloud, what to expect."""
    return {
        "schema": "mobile-mlops/offload-config/v1",
        "device_model": device_file, "threshold": threshold, "delta": chosen["delta"], "rule": RULE,
        "cloud_model": cloud,
        "expected": {k: chosen[k] for k in ("offload_rate", "hybrid_accuracy", "requests_per_1k")},
    }
