"""The fleet figures, defined once: MB per device-month, offload calls per device-month, battery share per day.

The canary guardrails (pipelines/fleet/canary.py) and observed FinOps (pipelines/fleet/observed_finops.py) both
compute them here. A model download is one-off per update: it counts once per device seen, times
finops.fleet.updates_per_month; offload traffic, calls and energy accrue daily, so they are normalized by the
observed exposure (device-days / days per month). `per_device` gives each device's own value and the
delta-method standard error of the cohort figure, so the sequential test and the monthly report agree.
"""
from __future__ import annotations

import numpy as np

from pipelines.core.config import Params
from pipelines.finops.cost import DAYS_PER_MONTH, MB


def device_mb_per_month(download_bytes: float, offload_bytes: float, devices: int, device_days: float,
                        updates_per_month: float) -> float:
    """Downloads once per device and update, plus offload traffic per device-month."""
    if devices <= 0 or device_days <= 0:
        return float("nan")
    return download_bytes / MB / devices * updates_per_month + offload_bytes / MB / (device_days / DAYS_PER_MONTH)


def download_mb_per_device(download_bytes: float, devices: int, updates_per_month: float) -> float:
    """Model download MB per device and month (one download per update)."""
    return download_bytes / MB / devices * updates_per_month if devices > 0 else float("nan")


def calls_per_device_month(calls: float, device_days: float) -> float:
    """Offload API calls per device-month of exposure."""
    return calls / (device_days / DAYS_PER_MONTH) if device_days > 0 else float("nan")


def battery_j(params: Params) -> float:
    """Mean battery capacity in joules over the fleet's tiers."""
    tiers = params.devices.tiers
    share = params.finops.fleet.tier_share or {t: 1.0 for t in tiers}
    total = sum(share.get(t, 0.0) for t in tiers) or 1.0
    return sum(share.get(t, 0.0) * tier.battery_mah * tier.battery_voltage * 3.6 for t, tier in tiers.items()) / total


def battery_share_per_day(battery_mj: float, device_days: float, params: Params) -> float:
    """Share of a battery charge inference uses per device-day."""
    return battery_mj / 1000 / device_days / battery_j(params) if device_days > 0 else float("nan")


def mb_per_device_month(download_bytes: np.ndarray, offload_bytes: np.ndarray, device_days: np.ndarray,
                        updates_per_month: float) -> tuple[float, float, int]:
    """(cohort MB per device-month, its delta-method standard error, devices) from per-device sums."""
    n = len(device_days)
    if n < 2 or device_days.sum() <= 0:
        return float("nan"), float("inf"), n
    downloads = download_bytes / MB * updates_per_month  # per device: one download per update
    traffic = offload_bytes / MB * DAYS_PER_MONTH  # per device, to be divided by its device-days
    rate = traffic.sum() / device_days.sum()
    value = downloads.mean() + rate
    influence = downloads - downloads.mean() + (traffic - rate * device_days) / device_days.mean()
    se = influence.std(ddof=1) / np.sqrt(n)
    return float(value), float(se), n
