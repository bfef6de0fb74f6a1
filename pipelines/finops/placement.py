"""Where inference should run, per platform, device tier and connectivity: on-device, hybrid or cloud.

Rules, in order: PII never leaves the device; offline means on-device; the hybrid is chosen when it is
feasible and buys at least `finops.min_hybrid_accuracy_gain` accuracy over the released variant (or the
released variant does not fit the tier); else on-device; else cloud; else nothing fits. On-device fits
when the variant meets the tier's p95 and energy budgets (gates.on_device.*), the battery budget
(finops.max_battery_share_per_day) and the size budget (gates.budgets.max_model_bytes); the cloud fits
when the network round trip plus the endpoint's duration meets finops.latency_target_ms and its monthly
cost fits gates.budgets.max_monthly_usd. Tier figures are estimates derived from measured host latency.
"""
from __future__ import annotations

from typing import Any

from pipelines.core.config import Params

CONNECTIVITY = ("wifi", "cellular", "offline")


def privacy_class(params: Params) -> str:
    """finops.privacy_class, else `pii` when data.pii names columns (the data describes people), else internal."""
    return params.finops.privacy_class or ("pii" if params.data.pii else "internal")


def device_problems(variant: dict[str, Any] | None, tier: str, params: Params) -> list[str]:
    """Why a variant does not fit a tier on device (empty: it fits)."""
    if variant is None:
        return ["no variant passes the footprint gates"]
    problems, budgets = [], params.gates.budgets
    if budgets.max_model_bytes is not None and variant["size_bytes"] > budgets.max_model_bytes:
        problems.append(f"{variant['size_bytes']} bytes > gates.budgets.max_model_bytes {budgets.max_model_bytes}")
    estimate = (variant.get("estimates") or {}).get(tier)
    if estimate:
        p95_budget = params.gates.on_device.max_p95_ms.get(tier)
        if p95_budget is not None and estimate["p95_ms"] > p95_budget:
            problems.append(f"p95 {estimate['p95_ms']:.3g} ms > {p95_budget:g} ms")
        if estimate["energy_mj"] > params.gates.on_device.max_energy_mj:
            problems.append(f"{estimate['energy_mj']:.3g} mJ > {params.gates.on_device.max_energy_mj:g} mJ")
        if estimate["daily_battery_share"] > params.finops.max_battery_share_per_day:
            problems.append(f"battery {estimate['daily_battery_share']:.2%}/day > "
                            f"{params.finops.max_battery_share_per_day:.2%}")
    return problems


def cloud_problems(connectivity: str, monthly_usd: float, params: Params) -> list[str]:
    """Why the cloud cannot answer under this connectivity (latency, or the monthly budget)."""
    finops = params.finops
    if connectivity == "offline":
        return ["offline"]
    problems = []
    latency = finops.endpoint.network_rtt_ms[connectivity] + finops.endpoint.duration_ms  # type: ignore[index]
    if latency > finops.latency_target_ms:
        problems.append(f"{latency:g} ms round trip > finops.latency_target_ms {finops.latency_target_ms:g}")
    budget = params.gates.budgets.max_monthly_usd
    if budget is not None and monthly_usd > budget:
        problems.append(f"${monthly_usd:,.2f}/month > gates.budgets.max_monthly_usd ${budget:,.2f}")
    return problems


def recommend(platform: str, tier: str, connectivity: str, ctx: dict[str, Any], params: Params) -> dict[str, str]:
    """One cell: the mode and the reason."""
    released = ctx["released"].get(platform)
    on_device = device_problems(released, tier, params)
    fits = not on_device
    if ctx["privacy"] == "pii":
        return {"mode": "on-device", "reason": "PII stays on the device"} if fits else \
            {"mode": "none", "reason": "PII stays on the device, and on-device does not fit: " + "; ".join(on_device)}
    if connectivity == "offline":
        return {"mode": "on-device", "reason": "offline"} if fits else \
            {"mode": "none", "reason": "offline, and on-device does not fit: " + "; ".join(on_device)}
    hybrid, hybrid_note = ctx.get("hybrid") if platform == "android" else None, ""
    if hybrid:
        problems = device_problems(hybrid["variant"], tier, params) + \
            cloud_problems(connectivity, hybrid["monthly_usd"], params)
        gain = hybrid["accuracy"] - (released["accuracy"] if released else 0.0)
        if not problems and (gain >= params.finops.min_hybrid_accuracy_gain or not fits):
            return {"mode": "hybrid", "reason": f"{gain:+.4f} accuracy for ${hybrid['monthly_usd']:,.2f}/month"}
        hybrid_note = (f" (hybrid: {'; '.join(problems)})" if problems else
                       f" (hybrid adds {gain:+.4f} accuracy < {params.finops.min_hybrid_accuracy_gain:g})")
    if fits:
        measured = "" if (released.get("estimates") or {}).get(tier) else "; latency not measured (macOS only)"
        return {"mode": "on-device", "reason": "fits latency, energy, battery and size budgets; no per-request "
                                               f"cost{measured}{hybrid_note}"}
    cloud = cloud_problems(connectivity, ctx["cloud_usd"].get(platform, 0.0), params)
    if not cloud:
        return {"mode": "cloud", "reason": "on-device does not fit: " + "; ".join(on_device)}
    return {"mode": "none", "reason": "; ".join(on_device + cloud)}


def decision_matrix(ctx: dict[str, Any], params: Params) -> list[dict[str, str]]:
    """Every platform x tier x connectivity cell. `ctx`: released variant per platform, privacy class,
    the hybrid (device variant, accuracy, monthly $) and the cloud-only monthly $ per platform."""
    return [{"platform": platform, "tier": tier, "connectivity": connectivity,
             **recommend(platform, tier, connectivity, ctx, params)}
            for platform in ctx["released"] for tier in params.devices.tiers for connectivity in CONNECTIVITY]


def mode_shares(matrix: list[dict[str, str]], tier_share: dict[str, float],
                connectivity_share: dict[str, float]) -> dict[str, dict[str, float]]:
    """Per platform, the share of inferences each mode answers (tiers x connectivity weighted)."""
    total = sum(connectivity_share.values()) or 1.0
    shares: dict[str, dict[str, float]] = {}
    for cell in matrix:
        weight = tier_share[cell["tier"]] * connectivity_share.get(cell["connectivity"], 0.0) / total
        platform = shares.setdefault(cell["platform"], {})
        platform[cell["mode"]] = platform.get(cell["mode"], 0.0) + weight
    return shares


def matrix_table(matrix: list[dict[str, str]]) -> str:
    """Markdown: one row per platform and tier, one column per connectivity."""
    cells = {(c["platform"], c["tier"], c["connectivity"]): c for c in matrix}
    rows = ["| platform | tier | " + " | ".join(CONNECTIVITY) + " |", "|---|---|" + "---|" * len(CONNECTIVITY)]
    for platform, tier in dict.fromkeys((c["platform"], c["tier"]) for c in matrix):
        row = [f"**{cells[(platform, tier, k)]['mode']}**: "
               f"{cells[(platform, tier, k)]['reason']}" for k in CONNECTIVITY]
        rows.append(f"| {platform} | {tier} | " + " | ".join(row) + " |")
    return "\n".join(rows)
