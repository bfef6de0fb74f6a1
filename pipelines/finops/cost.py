"""FinOps cost model: what each variant, and the release, costs per month at the fleet in params.

Pure functions of the footprint and offload reports and params `finops`. Money we pay: model downloads
(CDN egress), offloaded requests (serverless requests + GB-seconds) and the run's compute. Energy is spent
on the users' devices: reported in joules and kWh (and what the owners pay for it), never in our total.
Decimal units: 1 GB = 1e9 bytes, 1 MB = 1e6 bytes; a month is cloud billing's 730 hours.
"""
from __future__ import annotations

from typing import Any

from pipelines.core.config import BudgetGates, FinopsConfig
from pipelines.core.errors import PipelineError
from pipelines.core.gates import GateResult

DAYS_PER_MONTH = 730 / 24
GB, MB, J_PER_KWH = 1e9, 1e6, 3.6e6
MODES = ("on-device", "hybrid", "cloud")


def normalized(keys: list[str], given: dict[str, float] | None, key: str) -> dict[str, float]:
    """Shares over `keys` summing to 1 (equal when not given); a key params lack is an error naming it."""
    if given is None:
        return {k: 1 / len(keys) for k in keys}
    missing = [k for k in keys if k not in given]
    if missing:
        raise PipelineError(f"{key}: no share for {', '.join(missing)}")
    total = sum(given[k] for k in keys)
    if total <= 0:
        raise PipelineError(f"{key}: shares must add up to more than 0")
    return {k: given[k] / total for k in keys}


def platform_devices(finops: FinopsConfig, platform: str) -> float:
    fleet = finops.fleet
    return fleet.monthly_active_devices * normalized(list(fleet.platform_share), fleet.platform_share,
                                                     "finops.fleet.platform_share").get(platform, 0.0)


def online_share(finops: FinopsConfig) -> float:
    shares = finops.fleet.connectivity_share
    total = sum(shares.values())
    return (shares.get("wifi", 0.0) + shares.get("cellular", 0.0)) / total if total else 0.0


def cellular_online_share(finops: FinopsConfig) -> float:
    """Of the inferences made online, the share made on cellular (offload traffic billed to data plans)."""
    shares = finops.fleet.connectivity_share
    online = shares.get("wifi", 0.0) + shares.get("cellular", 0.0)
    return shares.get("cellular", 0.0) / online if online else 0.0


def request_cost_usd(requests: float, finops: FinopsConfig) -> float:
    """Serverless bill: per-request price plus memory x billed duration x the GB-second price."""
    prices, endpoint = finops.prices, finops.endpoint
    gb_seconds = requests * endpoint.memory_gb * endpoint.duration_ms / 1000
    return requests / 1e6 * prices.serverless_per_million_requests + gb_seconds * prices.serverless_per_gb_second


def mean_energy_mj(estimates: dict[str, Any] | None, tier_share: dict[str, float]) -> float | None:
    """Energy per inference averaged over the fleet's tiers; None when latency was not measured."""
    if not estimates:
        return None
    return sum(estimates[tier]["energy_mj"] * share for tier, share in tier_share.items())


def deployment_cost(platform: str, model_bytes: float, energy_mj: float | None, cloud_share: float,
                    device_share: float, finops: FinopsConfig) -> dict[str, Any]:
    """One platform's month: downloads, cloud requests for `cloud_share` of inferences, device traffic,
    energy for the `device_share` of inferences the device model runs, and the total we pay."""
    fleet, prices = finops.fleet, finops.prices
    devices = platform_devices(finops, platform)
    download_mb = model_bytes * fleet.updates_per_month / MB
    download_gb = download_mb * devices / 1000
    per_device_requests = fleet.inferences_per_device_per_day * DAYS_PER_MONTH * cloud_share
    requests = per_device_requests * devices
    traffic_mb = per_device_requests * finops.endpoint.payload_bytes / MB
    energy_j = None if energy_mj is None else energy_mj * fleet.inferences_per_device_per_day * DAYS_PER_MONTH \
        * device_share / 1000
    download_usd, cloud_usd = download_gb * prices.cdn_egress_per_gb, request_cost_usd(requests, finops)
    fleet_kwh = None if energy_j is None else energy_j * devices / J_PER_KWH
    return {
        "platform": platform, "devices": devices, "model_bytes": model_bytes,
        "download_gb": download_gb, "download_usd": download_usd,
        "cloud_requests": requests, "cloud_usd": cloud_usd,
        "device_mb_per_month": download_mb + traffic_mb,
        "cellular_mb_per_device": download_mb * fleet.cellular_share + traffic_mb * cellular_online_share(finops),
        "energy_j_per_device": energy_j, "fleet_kwh": fleet_kwh,
        "owners_energy_usd": None if fleet_kwh is None else fleet_kwh * prices.electricity_per_kwh,
        "total_usd": download_usd + cloud_usd,
    }


def variant_costs(footprint: dict[str, Any], offload: dict[str, Any], finops: FinopsConfig,
                  tier_share: dict[str, float]) -> list[dict[str, Any]]:
    """Per variant on device alone; the Android hybrid (device model + cloud); each platform cloud-only.

    Offline inferences cannot reach the cloud: hybrid and cloud rows bill only the online share.
    """
    rows, online = [], online_share(finops)
    for platform, facts in footprint["platforms"].items():
        for name, v in facts["variants"].items():
            energy = mean_energy_mj(v.get("estimates"), tier_share)
            rows.append({"variant": name, "mode": "on-device", "released": name == facts["selected"],
                         **deployment_cost(platform, v["size_bytes"], energy, 0.0, 1.0, finops)})
    device = footprint["platforms"].get("android", {}).get("variants", {}).get(offload["device_variant"])
    if device:
        rate = offload["chosen"]["offload_rate"]
        rows.append({"variant": f"{offload['device_variant']} + cloud (delta {offload['chosen']['delta']:g})",
                     "mode": "hybrid", "released": False, **deployment_cost(
                         "android", device["size_bytes"], mean_energy_mj(device.get("estimates"), tier_share),
                         rate * online, 1.0, finops)})
    for platform in footprint["platforms"]:
        rows.append({"variant": "cloud float model", "mode": "cloud", "released": False,
                     **deployment_cost(platform, 0, 0.0, online, 0.0, finops)})
    return rows


def release_cost(footprint: dict[str, Any], offload: dict[str, Any], shipped: dict[str, list[str]],
                 mode_shares: dict[str, dict[str, float]], finops: FinopsConfig, tier_share: dict[str, float],
                 run_usd: float) -> dict[str, Any]:
    """The release as the decision matrix deploys it: per platform, the files it ships (downloaded by every
    device per update) and the inferences answered on device, through the hybrid or by the cloud."""
    platforms: dict[str, Any] = {}
    rate = offload["chosen"]["offload_rate"]
    for platform, files in shipped.items():
        variants = footprint["platforms"][platform]["variants"]
        shares = mode_shares.get(platform, {})
        on, hybrid, cloud = (shares.get(m, 0.0) for m in MODES)
        energies = {"on-device": mean_energy_mj(variants[files[0]].get("estimates"), tier_share) if files else None}
        device = variants.get(offload["device_variant"]) if platform == "android" else None
        energies["hybrid"] = mean_energy_mj(device.get("estimates"), tier_share) if device else None
        known = [(energies[m], s) for m, s in (("on-device", on), ("hybrid", hybrid)) if s]
        per_inference = None if any(e is None for e, _ in known) else \
            sum(e * s for e, s in known) / (on + hybrid) if on + hybrid else 0.0  # type: ignore[misc, operator]
        size = sum(variants[name]["size_bytes"] for name in files)
        platforms[platform] = {"files": files, "mode_shares": shares, **deployment_cost(
            platform, size, per_inference, hybrid * rate + cloud, on + hybrid, finops)}
    training_usd = run_usd * finops.fleet.updates_per_month
    serving = sum(p["total_usd"] for p in platforms.values())
    return {"platforms": platforms, "serving_usd": serving, "training_usd_per_month": training_usd,
            "monthly_usd": serving + training_usd,
            "device_mb_per_month": max((p["device_mb_per_month"] for p in platforms.values()), default=0.0)}


def run_compute(records: dict[str, dict[str, Any] | None], vcpu_hour: float) -> dict[str, Any]:
    """Sum of the steps' measured CPU seconds (reports/metrics/<step>.json) and their cost."""
    steps = {name: {"cpu_seconds": r.get("cpu_seconds"), "wall_seconds": r.get("wall_seconds"),
                    "compute_cost_usd": r.get("compute_cost_usd")} if r else None for name, r in records.items()}
    cpu = sum(s["cpu_seconds"] or 0.0 for s in steps.values() if s)
    return {"steps": steps, "cpu_seconds": cpu, "cost_usd": cpu / 3600 * vcpu_hour, "vcpu_hour_usd": vcpu_hour,
            "missing": sorted(n for n, s in steps.items() if not s or s["cpu_seconds"] is None)}


def _over(name: str, key: str, measured: float, limit: float, what: str, unit: str) -> GateResult:
    """At most `limit`; a failure names the budget and the amount over it."""
    def fmt(x: float) -> str:
        return f"${x:,.2f}" if unit == "$" else f"{x:,.0f} {unit}" if unit == "bytes" else f"{x:,.4g} {unit}"

    if measured <= limit:
        return GateResult(name, True, float(measured), float(limit),
                          f"{what} {fmt(measured)} is within gates.budgets.{key} = {fmt(limit)}")
    share = f" ({(measured - limit) / limit:.0%} over)" if limit else ""
    return GateResult(name, False, float(measured), float(limit), f"{what} {fmt(measured)} exceeds "
                      f"gates.budgets.{key} = {fmt(limit)} by {fmt(measured - limit)}{share}")


def budget_gates(release: dict[str, Any], budgets: BudgetGates) -> list[GateResult]:
    """One verdict per budget set in params (None budgets are reported only)."""
    gates: list[GateResult] = []
    if budgets.max_monthly_usd is not None:
        gates.append(_over("budget max_monthly_usd", "max_monthly_usd", release["monthly_usd"], budgets.max_monthly_usd,
                           "monthly cost", "$"))
    for platform, facts in release["platforms"].items():
        if budgets.max_device_mb_per_month is not None:
            gates.append(_over(f"budget max_device_mb_per_month[{platform}]", "max_device_mb_per_month",
                               facts["device_mb_per_month"], budgets.max_device_mb_per_month,
                               f"{platform} MB per device per month", "MB"))
        if budgets.max_model_bytes is not None:
            gates.append(_over(f"budget max_model_bytes[{platform}]", "max_model_bytes", facts["model_bytes"],
                               budgets.max_model_bytes, f"{platform} download per update", "bytes"))
    return gates


def release_gates(release: dict[str, Any], budgets: BudgetGates) -> tuple[list[GateResult], list[GateResult]]:
    """(gates the release must pass, warnings): every budget blocks when gates.budgets.blocking, else warns."""
    gates = budget_gates(release, budgets)
    return (gates, []) if budgets.blocking else ([], [g for g in gates if not g.passed])


def cost_delta(candidate: dict[str, Any], production: dict[str, Any] | None, reference: str) -> dict[str, Any]:
    """Candidate minus production: monthly $ and per-device MB (per platform), for the pull request."""
    if production is None:
        return {"reference": reference, "available": False}

    def pair(new: float, old: float) -> dict[str, float]:
        return {"candidate": new, "production": old, "delta": new - old}

    return {"reference": reference, "available": True,
            "serving_usd": pair(candidate["serving_usd"], production["serving_usd"]),
            "device_mb_per_month": {p: pair(f["device_mb_per_month"], production["platforms"][p]["device_mb_per_month"])
                                    for p, f in candidate["platforms"].items() if p in production["platforms"]}}


def federated_training(facts: dict[str, Any] | None, finops: FinopsConfig) -> dict[str, Any] | None:
    """Device data spent by federated training (models/trained/privacy.json): measured bytes per device per round,
    the cellular share of it (fleet.cellular_share, as for downloads) and per model update (one training run)."""
    if not facts or facts.get("method") != "federated":
        return None
    traffic = facts["traffic"]
    per_round = traffic["mb_per_device_round"]
    rounds = facts["rounds"] * facts["sampled_per_round"] / facts["devices"]  # rounds a device takes part in
    return {"mb_per_device_round": per_round, "cellular_mb_per_device_round": per_round * finops.fleet.cellular_share,
            "bytes_up_per_device_round": traffic["mean_bytes_up_per_device_round"],
            "bytes_down_per_device_round": traffic["mean_bytes_down_per_device_round"],
            "rounds": facts["rounds"], "expected_rounds_per_device": rounds,
            "mb_per_device_per_training_run": per_round * rounds,
            "cellular_mb_per_device_per_month": per_round * rounds * finops.fleet.cellular_share
            * finops.fleet.updates_per_month,
            "note": "measured on the simulated devices of this run (serialized Flower records in and out of each "
                    "ClientApp); not yet added to device_mb_per_month or its budget"}
