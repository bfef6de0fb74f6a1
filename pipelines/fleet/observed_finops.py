"""Observed FinOps: what the fleet's telemetry says a month costs, beside the release's cost.json estimates.

Per month of telemetry: CDN egress (model downloads) and its price, MB per device (downloads + offload
traffic) and cellular MB per device, offload API calls and their serverless cost, battery share per day.
Per-device figures are normalized to a 30-day month of the devices seen, then scaled to the fleet size in
params (finops.fleet.monthly_active_devices), so they compare with the estimates whatever share of the fleet
reports. Budgets (gates.budgets) are evaluated on the observed figures; an overrun can be POSTed to a webhook.
"""
from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from pipelines.core.config import Params
from pipelines.core.errors import PipelineError
from pipelines.core.gates import GateResult
from pipelines.finops.cost import DAYS_PER_MONTH, MB, request_cost_usd
from pipelines.fleet import figures
from pipelines.fleet.query import Source, run

# The month's sums every observed figure is computed from (one pass over the shards, queried in place).
MONTHS_SQL = """
SELECT substr(day, 1, 7) AS month, count(*) AS device_days, count(DISTINCT device_id) AS devices,
       sum(download_bytes_wifi)::DOUBLE + sum(download_bytes_cellular)::DOUBLE AS downloads,
       sum(download_bytes_cellular)::DOUBLE AS cellular_downloads, sum(offload_bytes)::DOUBLE AS offload_bytes,
       sum(offload_calls)::DOUBLE AS calls, sum(battery_mj)::DOUBLE AS battery_mj
FROM t GROUP BY month ORDER BY month
"""


def _estimates(cost: dict[str, Any], params: Params) -> dict[str, float | None]:
    platforms = cost["release"]["platforms"]
    devices = sum(p["devices"] for p in platforms.values()) or 1.0

    def weighted(key: str) -> float | None:
        values = [(p[key], p["devices"]) for p in platforms.values() if p.get(key) is not None]
        return sum(v * d for v, d in values) / sum(d for _, d in values) if values else None

    energy = weighted("energy_j_per_device")
    battery_j = figures.battery_j(params)
    return {
        "download_mb_per_device": sum(p["download_gb"] * 1000 for p in platforms.values()) / devices,
        "device_mb_per_month": weighted("device_mb_per_month"),
        "cellular_mb_per_device": weighted("cellular_mb_per_device"),
        "offload_calls_per_device": sum(p["cloud_requests"] for p in platforms.values()) / devices,
        "cdn_usd": sum(p["download_usd"] for p in platforms.values()),
        "cloud_usd": sum(p["cloud_usd"] for p in platforms.values()),
        "serving_usd": cost["release"]["serving_usd"],
        "battery_share_per_day": None if energy is None else energy / DAYS_PER_MONTH / battery_j,
    }


def observed(source: Source, params: Params) -> list[dict[str, Any]]:
    """One row per month of telemetry (the store's shards or a frame of stored rows): the observed figures, per
    device-month and at fleet scale."""
    finops = params.finops
    rows = []
    for m in run(MONTHS_SQL, source).to_dict("records"):
        device_days, devices = int(m["device_days"]), int(m["devices"])
        downloads, offload_bytes, calls = m["downloads"], m["offload_bytes"], m["calls"]
        fleet = finops.fleet.monthly_active_devices
        updates = finops.fleet.updates_per_month
        download_mb = figures.download_mb_per_device(downloads, devices, updates)
        device_mb = figures.device_mb_per_month(downloads, offload_bytes, devices, device_days, updates)
        traffic_mb = device_mb - download_mb
        cellular_share = finops.fleet.connectivity_share["cellular"] / max(
            finops.fleet.connectivity_share["cellular"] + finops.fleet.connectivity_share["wifi"], 1e-12)
        calls_per_device = figures.calls_per_device_month(calls, device_days)
        cdn_usd = download_mb * fleet / 1000 * finops.prices.cdn_egress_per_gb
        cloud_usd = request_cost_usd(calls_per_device * fleet, finops)
        rows.append({
            "month": m["month"], "devices": devices, "device_days": device_days,
            "download_mb_per_device": download_mb,
            "device_mb_per_month": device_mb,
            # offload traffic is not split by network in v1 of the contract: the offline-free cellular share
            "cellular_mb_per_device": m["cellular_downloads"] / MB / devices * updates + traffic_mb * cellular_share,
            "offload_calls_per_device": calls_per_device,
            "cdn_usd": cdn_usd, "cloud_usd": cloud_usd, "serving_usd": cdn_usd + cloud_usd,
            "battery_share_per_day": figures.battery_share_per_day(m["battery_mj"], device_days, params),
        })
    return rows


def compare(rows: list[dict[str, Any]], cost: dict[str, Any], params: Params) -> list[dict[str, Any]]:
    """Observed beside estimated, per month and metric, with the ratio observed / estimated."""
    estimates = _estimates(cost, params)
    table = []
    for row in rows:
        for metric, estimate in estimates.items():
            value = row[metric]
            ratio = value / estimate if estimate not in (None, 0) else None
            table.append({"month": row["month"], "metric": metric, "observed": value, "estimated": estimate,
                          "ratio": ratio})
    return table


def budget_name(key: str, month: str) -> str:
    """A budget verdict's name: `observed <gates.budgets key>[YYYY-MM]` (parsed back by `budget_of`)."""
    return f"observed {key}[{month}]"


def budget_of(name: str) -> tuple[str, str] | None:
    """(gates.budgets key, month) of a name `budget_name` made; None for any other name."""
    if not (name.startswith("observed ") and name.endswith("]") and "[" in name):
        return None
    key, _, month = name[len("observed "):-1].partition("[")
    return key, month


def budget_results(rows: list[dict[str, Any]], cost: dict[str, Any], params: Params) -> list[GateResult]:
    """gates.budgets on the observed months (training compute from cost.json is added to the monthly total)."""
    budgets = params.gates.budgets
    training = cost["release"].get("training_usd_per_month", 0.0)
    results = []
    for row in rows:
        if budgets.max_monthly_usd is not None:
            spend = row["serving_usd"] + training
            results.append(GateResult(
                budget_name("max_monthly_usd", row["month"]), spend <= budgets.max_monthly_usd, spend,
                budgets.max_monthly_usd, f"observed {row['month']}: ${spend:.2f} at fleet scale vs "
                                         f"gates.budgets.max_monthly_usd ${budgets.max_monthly_usd:.2f}"))
        if budgets.max_device_mb_per_month is not None:
            mb = row["device_mb_per_month"]
            results.append(GateResult(
                budget_name("max_device_mb_per_month", row["month"]), mb <= budgets.max_device_mb_per_month, mb,
                budgets.max_device_mb_per_month, f"observed {row['month']}: {mb:.4g} MB per device vs "
                                                 "gates.budgets.max_device_mb_per_month "
                f"{budgets.max_device_mb_per_month:g}"))
    return results


def alert(url: str, payload: dict[str, Any], timeout: float = 10) -> int:
    """POST an over-budget alert as JSON; the HTTP status, or a one-line error."""
    request = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status
    except (urllib.error.URLError, OSError) as exc:
        raise PipelineError(f"fleet.webhook_url: alert not delivered to {url} ({exc})") from None
