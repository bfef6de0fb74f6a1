"""Footprint: device-tier estimates, per-platform selection, and the report (JSON, CSV, chart, table).

Latency, energy and battery figures for a device tier are ESTIMATES DERIVED FROM MEASURED HOST LATENCY:
host latency x the tier's slowdown factor, energy = active CPU power x median latency (the median, not the mean:
on a shared host, scheduling stalls put a long tail on the mean that a phone's model does not have). They rank
variants and enforce budgets; they are not measurements on a phone.
"""
from __future__ import annotations

import base64
import io
from collections.abc import Callable
from typing import Any

from pipelines.core.config import DevicesConfig, DeviceTier, OnDeviceGates
from pipelines.core.gates import download_sizes, gate_model, on_device_gates, select_variant
from pipelines.mobile.ort import fairness_name

LABEL = "estimate derived from measured host latency"
PLATFORMS = {"android": "tflite", "ios": "coreml", "onnxruntime": "onnx"}  # onnxruntime: ORT Mobile, on either OS
# a variant's name in the fairness report; Core ML variants are not scored there (prediction needs macOS)
FAIRNESS_NAMES: dict[str, Callable[[str], str]] = {"android": str, "onnxruntime": fairness_name}
CSV_COLUMNS = ("platform", "variant", "size_bytes", "gzip_bytes", "accuracy", "agreement_with_keras", "host_p50_ms",
               "host_p95_ms", "released")


def tier_estimate(latency: dict[str, float], tier: DeviceTier) -> dict[str, Any]:
    """One tier: latency scaled from the host, energy per inference (W x ms = mJ), daily battery share."""
    mean_ms = latency["mean_ms"] * tier.slowdown
    energy_mj = tier.active_power_w * latency["p50_ms"] * tier.slowdown
    daily_j = energy_mj * tier.inferences_per_day / 1000
    battery_j = tier.battery_mah * tier.battery_voltage * 3.6  # mAh x V = mWh; 1 mWh = 3.6 J
    return {
        "p50_ms": latency["p50_ms"] * tier.slowdown, "p95_ms": latency["p95_ms"] * tier.slowdown,
        "mean_ms": mean_ms, "energy_mj": energy_mj, "daily_energy_j": daily_j,
        "daily_battery_share": daily_j / battery_j, "label": LABEL,
    }


def _fairness(groups: dict[str, Any]) -> dict[str, Any]:
    return {feature: {k: facts[k] for k in ("demographic_parity_difference", "accuracy_gap")}
            for feature, facts in groups.items()}


def _variant(facts: dict[str, Any], tiers: dict[str, DeviceTier], keras_p50: float) -> dict[str, Any]:
    keep = ("size_bytes", "gzip_bytes", "accuracy", "auc", "agreement_with_keras", "precision", "sparsity",
            "non_finite_outputs")
    variant = {k: facts[k] for k in keep if k in facts} | {"groups": _fairness(facts["groups"])}
    latency = facts.get("latency")
    if latency:
        variant["host_latency"] = {k: latency[k] for k in ("p50_ms", "p95_ms", "mean_ms", "batch_rows_per_s")}
        variant["keras_to_litert_p50_ratio"] = facts.get("keras_to_litert_p50_ratio") or keras_p50 / latency["p50_ms"]
        variant["estimates"] = {name: tier_estimate(latency, tier) for name, tier in tiers.items()}
    else:
        variant["estimates"] = None
        variant["latency_note"] = "not measured: Core ML prediction needs macOS; no latency or energy estimate"
    return variant


def fairness_verdicts(fairness: dict[str, Any] | None) -> dict[str, list[dict[str, Any]]]:
    """Each scored model's gates.fairness verdicts (reports/fairness.json), by the model's name there."""
    verdicts: dict[str, list[dict[str, Any]]] = {}
    for gate in (fairness or {}).get("gates") or []:
        verdicts.setdefault(gate_model(gate["name"]), []).append(gate)
    return verdicts


def build_footprint(tflite: dict[str, Any], coreml: dict[str, Any], devices: DevicesConfig,
                    gates: OnDeviceGates, onnx: dict[str, Any] | None = None,
                    fairness: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every variant per platform with its gates, and the released (smallest download passing) one.

    `onnx` (the onnx_model report) adds the onnxruntime platform: the ORT Mobile file an app on Android or iOS
    that ships onnxruntime would load."""
    reference = {"model": "keras", **{k: tflite["keras"][k] for k in ("accuracy", "auc")},
                 "groups": _fairness(tflite["keras"]["groups"]), "host_latency": tflite["keras"]["latency"]}
    base_sizes = {"tflite": tflite["variants"].get("float32", {}).get("size_bytes"),
                  "coreml": coreml["variants"].get("float16", {}).get("size_bytes"),
                  "onnx": ((onnx or {}).get("variants") or {}).get("float32", {}).get("size_bytes")}
    reports = {"tflite": tflite, "coreml": coreml, "onnx": onnx}
    keras_p50 = tflite["keras"]["latency"]["p50_ms"]
    fair = fairness_verdicts(fairness)
    platforms: dict[str, Any] = {}
    for platform, source in PLATFORMS.items():
        report = reports[source]
        if report is None:
            continue
        variants = {name: _variant(facts, devices.tiers, keras_p50) for name, facts in report["variants"].items()}
        for name, variant in variants.items():
            judged = fair.get(FAIRNESS_NAMES[platform](name)) if platform in FAIRNESS_NAMES else None
            if judged is not None:
                variant["fairness_gates"] = judged
        verdicts = {name: on_device_gates(v, reference, gates) for name, v in variants.items()}
        for name, variant in variants.items():
            variant["file"] = report["variants"][name].get("file") or report["variants"][name].get("package")
            if base_sizes[source]:
                variant["size_vs_float"] = variant["size_bytes"] / base_sizes[source]
            variant["passed"] = all(g.passed for g in verdicts[name])
            variant["failed_gates"] = [g.detail for g in verdicts[name] if not g.passed]
        selected = select_variant(download_sizes(variants), verdicts)
        platforms[platform] = {"format": source, "selected": selected, "variants": variants}
    return {
        "label": LABEL, "host": tflite["host"], "reference": reference,
        "tiers": {name: tier.model_dump() for name, tier in devices.tiers.items()},
        "tier_order": list(devices.tiers),  # JSON keys are written sorted; this keeps the params order
        "budgets": gates.model_dump(), "platforms": platforms,
    }


def footprint_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One flat row per variant (the DVC plots file)."""
    rows = []
    for platform, facts in report["platforms"].items():
        for name, v in facts["variants"].items():
            latency = v.get("host_latency") or {}
            rows.append({"platform": platform, "variant": name, "size_bytes": v["size_bytes"],
                         "gzip_bytes": v.get("gzip_bytes", v["size_bytes"]),
                         "accuracy": round(v["accuracy"], 6),
                         "agreement_with_keras": round(v["agreement_with_keras"], 6),
                         "host_p50_ms": round(latency.get("p50_ms", float("nan")), 6),
                         "host_p95_ms": round(latency.get("p95_ms", float("nan")), 6),
                         "released": name == facts["selected"]})
    return rows


def footprint_table(report: dict[str, Any]) -> str:
    """Markdown: one row per variant; tier columns are estimates derived from measured host latency."""
    tiers = report.get("tier_order") or list(report["tiers"])
    head = (["platform", "variant", "KB", "gzip KB", "x float", "accuracy", "agreement", "host p50/p95 µs",
             "Keras/LiteRT p50"]
            + [f"{t} p95 ms*" for t in tiers] + [f"{t} mJ*" for t in tiers] + ["max battery %/day*", "verdict"])
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for platform, facts in report["platforms"].items():
        for name, v in facts["variants"].items():
            lat, est = v.get("host_latency"), v.get("estimates") or {}
            verdict = "**released**" if name == facts["selected"] else ("passes" if v["passed"] else
                                                                         "fails: " + "; ".join(v["failed_gates"][:2]))
            cells = [platform, name, f"{v['size_bytes'] / 1024:.1f}", f"{v.get('gzip_bytes', float('nan')) / 1024:.1f}",
                     f"{v.get('size_vs_float', float('nan')):.2f}",
                     f"{v['accuracy']:.4f}", f"{v['agreement_with_keras']:.4f}",
                     f"{lat['p50_ms'] * 1000:.1f} / {lat['p95_ms'] * 1000:.1f}" if lat else "n/a (macOS only)",
                     f"{v['keras_to_litert_p50_ratio']:.0f}x" if lat else "n/a"]
            cells += [f"{est[t]['p95_ms']:.4f}" if est else "n/a" for t in tiers]
            cells += [f"{est[t]['energy_mj']:.4f}" if est else "n/a" for t in tiers]
            cells.append(f"{max(e['daily_battery_share'] for e in est.values()) * 100:.2g}" if est else "n/a")
            rows.append("| " + " | ".join(cells + [verdict]) + " |")
    return "\n".join(rows) + (f"\n\n\\* {LABEL} (host: {report['host']['cpu']}). x float: size relative to the "
                              "float32 TFLite (Android), float16 Core ML (iOS) or float32 ORT (onnxruntime) file; "
                              "gzip KB: what a phone downloads; the released variant is the smallest download "
                              "passing every gate. Keras/LiteRT p50: Keras over the variant's runtime.")


def footprint_chart(report: dict[str, Any]) -> bytes:
    """PNG: size per variant (both platforms) and measured host latency per TFLite variant."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(8.5, 3.4), dpi=80)
    labels, sizes, colors = [], [], []
    for platform, facts in report["platforms"].items():
        for name, v in sorted(facts["variants"].items(), key=lambda item: item[1]["size_bytes"]):
            labels.append(f"{platform}/{name}" + (" *" if name == facts["selected"] else ""))
            sizes.append(v["size_bytes"] / 1024)
            colors.append("tab:green" if platform == "android" else "tab:blue")
    left.barh(labels, sizes, color=colors)
    left.invert_yaxis()
    left.set_xlabel("size (KB); * = released")
    android = report["platforms"]["android"]["variants"]
    names = sorted((n for n, v in android.items() if v.get("host_latency")), key=lambda n: android[n]["size_bytes"])
    p50 = [android[n]["host_latency"]["p50_ms"] * 1000 for n in names]
    p95 = [android[n]["host_latency"]["p95_ms"] * 1000 for n in names]
    positions = range(len(names))
    right.barh([p - 0.2 for p in positions], p50, height=0.4, label="p50", color="tab:gray")
    right.barh([p + 0.2 for p in positions], p95, height=0.4, label="p95", color="tab:orange")
    right.set_yticks(list(positions), names)
    right.invert_yaxis()
    keras = report["reference"]["host_latency"]["p50_ms"] * 1000
    right.set_title(f"LiteRT, 1 thread (Keras p50 {keras:.0f} µs)", fontsize=9)
    right.set_xlabel("µs per single-sample call (host)")
    right.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    fig.suptitle("On-device variants: sizes and host latency measured; tier figures in the report are estimates",
                 fontsize=9)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def inline_image(png: bytes, alt: str = "chart") -> str:
    """Markdown with the PNG inline (Dagster metadata renders it)."""
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})"
