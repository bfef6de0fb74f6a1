"""FinOps steps: the hybrid offload policy; cost per variant and of the release, the run's compute, the decision
matrix, budgets, the delta against production, and the offload endpoint's manifests."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from pipelines.core.config import Params, Settings
from pipelines.core.errors import PipelineError
from pipelines.core.io import atomic_path, read_json, write_csv, write_json
from pipelines.core.paths import FOOTPRINT_REPORT, MLFLOW_RECORD_FILE, PRIVACY_FILE, ArtifactPaths
from pipelines.core.step import StepResult, records_metrics
from pipelines.data.split_file import open_split
from pipelines.finops.cost import (
    budget_gates,
    cost_delta,
    federated_training,
    normalized,
    release_cost,
    run_compute,
    variant_costs,
)
from pipelines.finops.placement import (
    decision_matrix,
    matrix_table,
    mode_shares,
    privacy_class,
)
from pipelines.release_format.deployment import production_or_latest
from pipelines.training.keras_model import load_spec, saved_predictions
from pipelines.training.tracking import log_to_run

STEP = "finops_report"


def compute_records(settings: Settings) -> dict[str, dict[str, Any] | None]:
    """reports/metrics/<step>.json of every step that runs before this one (None: no record yet)."""
    from pipelines.catalog import STAGES

    paths, records = ArtifactPaths(settings.root), {}
    for name in STAGES:  # execution order
        if name == STEP:
            break
        path = paths.metrics(name)
        records[name] = read_json(path) if path.is_file() else None
    return records


def assess(footprint: dict[str, Any], offload: dict[str, Any], params: Params, run_usd: float) -> dict[str, Any]:
    """Variant costs, decision matrix, the release as the matrix deploys it, budget verdicts."""
    finops = params.finops
    tier_share = normalized(list(params.devices.tiers), finops.fleet.tier_share, "finops.fleet.tier_share")
    variants = variant_costs(footprint, offload, finops, tier_share)
    platforms = footprint["platforms"]
    released = {p: (f["variants"][f["selected"]] if f["selected"] else None) for p, f in platforms.items()}
    hybrid_row = next((r for r in variants if r["mode"] == "hybrid"), None)
    device = platforms.get("android", {}).get("variants", {}).get(offload["device_variant"])
    ctx = {"released": released, "privacy": privacy_class(params),
           "cloud_usd": {r["platform"]: r["total_usd"] for r in variants if r["mode"] == "cloud"},
           "hybrid": {"variant": device, "accuracy": offload["chosen"]["hybrid_accuracy"],
                      "monthly_usd": hybrid_row["total_usd"]}
           if hybrid_row and device and offload["chosen"]["offload_rate"] > 0 else None}  # delta 0: nothing offloaded
    matrix = decision_matrix(ctx, params)
    shares = mode_shares(matrix, tier_share, finops.fleet.connectivity_share)  # type: ignore[arg-type]
    shipped = {p: [n for n in dict.fromkeys([f["selected"], offload["device_variant"] if p == "android" else None])
                   if n and n in f["variants"]] for p, f in platforms.items()}
    release = release_cost(footprint, offload, shipped, shares, finops, tier_share, run_usd)
    return {"variants": variants, "matrix": matrix, "release": release, "tier_share": tier_share,
            "privacy_class": ctx["privacy"], "gates": budget_gates(release, params.gates.budgets)}


def _money(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.4f}" if abs(value) < 1 else f"{value:,.2f}"


def cost_table(variants: list[dict[str, Any]], release: dict[str, Any]) -> str:
    head = ["platform", "variant", "mode", "KB", "download GB/mo", "download $/mo", "MB/device/mo",
            "cellular MB/device/mo", "cloud requests/mo", "cloud $/mo", "energy J/device/mo*", "owners' $/mo",
            "total $/mo"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def row(platform: str, name: str, mode: str, r: dict[str, Any]) -> str:
        energy = "n/a (macOS)" if r["energy_j_per_device"] is None else f"{r['energy_j_per_device']:.3f}"
        cells = [platform, name, mode, f"{r['model_bytes'] / 1024:.1f}", f"{r['download_gb']:.3f}",
                 _money(r["download_usd"]), f"{r['device_mb_per_month']:.4f}", f"{r['cellular_mb_per_device']:.4f}",
                 f"{r['cloud_requests']:,.0f}", _money(r["cloud_usd"]), energy, _money(r["owners_energy_usd"]),
                 _money(r["total_usd"])]
        return "| " + " | ".join(cells) + " |"

    rows += [row(r["platform"], r["variant"] + (" (released)" if r["released"] else ""), r["mode"], r)
             for r in variants]
    for platform, r in release["platforms"].items():
        mix = ", ".join(f"{m} {s:.0%}" for m, s in r["mode_shares"].items())
        rows.append(row(f"**{platform}**", f"**release** ({' + '.join(r['files'])})", mix, r))
    return "\n".join(rows) + ("\n\n\\* on-device energy is an estimate derived from measured host latency; "
                              "owners pay for it, so it is not in our total.")


def summary_table(release: dict[str, Any], run: dict[str, Any], gates: list, delta: dict[str, Any]) -> str:
    rows = ["| | value |", "|---|---|", f"| release serving $/month | {_money(release['serving_usd'])} |",
            f"| training $/month ({run['cpu_seconds']:.1f} CPU s per run) | "
            f"{_money(release['training_usd_per_month'])} |",
            f"| **total $/month** | **{_money(release['monthly_usd'])}** |"]
    if delta.get("available"):
        rows.append(f"| serving $/month vs {delta['reference']} | {delta['serving_usd']['delta']:+,.4f} |")
        rows += [f"| {p} MB/device/month vs production | {d['delta']:+.4f} |"
                 for p, d in delta["device_mb_per_month"].items()]
    rows += [f"| {g.name} | {'pass' if g.passed else 'OVER'}: {g.detail} |" for g in gates]
    return "\n".join(rows)


@records_metrics
def offload_policy(settings: Settings) -> StepResult:
    from pipelines.finops.offload import app_config, choose_delta, grid_rows, offload_counts
    from pipelines.release_format.litert import predict_tflite
    from pipelines.training.metrics import classification_figures
    from pipelines.training.tally import Tallies, scored_chunks

    config, threshold = settings.params.offload, settings.params.train.threshold
    paths = ArtifactPaths(settings.root)
    tflite = read_json(paths.tflite_report)
    if config.device_variant not in tflite["variants"]:
        raise PipelineError(f"offload.device_variant: '{config.device_variant}' was not built "
                            f"(convert.tflite_variants: {', '.join(tflite['variants'])})")
    spec, record = load_spec(settings)
    device_file = tflite["variants"][config.device_variant]["file"]
    content = (paths.tflite_model / device_file).read_bytes()
    # the test split read and scored chunk by chunk, beside the float model the cloud serves (Keras, whose
    # probabilities trained_model saved): only counts are kept (pipelines.training.tally)
    deltas = config.deltas + ([config.delta] if config.delta is not None else [])
    counts: dict[float, Any] = {}
    with Tallies(threshold, auc=False) as tallies:
        for chunk in scored_chunks(open_split(settings, "test"), spec, settings.params.data.sensitive_features,
                                   {"device": lambda x: predict_tflite(content, x)},
                                   saved=saved_predictions(settings, "test", ["keras"])):
            tallies.add(chunk)
            for delta, part in offload_counts(chunk.probas["device"], chunk.probas["keras"], chunk.y, threshold,
                                              deltas).items():
                counts[delta] = counts.get(delta, 0) + part
        accuracy = {name: classification_figures(tally.confusion_total(), float("nan"))["accuracy"]
                    for name, tally in tallies.models.items()}
    grid = grid_rows(counts, tallies.rows, config.daily_inferences)
    cloud_accuracy = accuracy["keras"]
    chosen = choose_delta(grid, config, cloud_accuracy)
    cloud_model = {"name": record["model_name"], "version": record["model_version"], "format": "keras float32"}
    report: dict[str, Any] = {
        "device_variant": config.device_variant,
        "device_accuracy": accuracy["device"],
        "cloud_accuracy": cloud_accuracy, "threshold": threshold, "daily_inferences": config.daily_inferences,
        "grid": grid, "chosen": chosen, "app_config": app_config(chosen, threshold, device_file, cloud_model),
    }
    write_json(paths.offload_report, report)
    write_csv(paths.offload_grid, grid)
    log_to_run(settings, record["run_id"],
               {f"offload_{k}": chosen[k] for k in ("delta", "offload_rate", "hybrid_accuracy")},
               {"reports": paths.offload_report})
    rows = ["| delta | offload rate | hybrid accuracy | requests / 1k | cloud requests / day |",
            "|---|---|---|---|---|"]
    rows += [f"| {r['delta']:g}{' (chosen)' if r['delta'] == chosen['delta'] else ''} | {r['offload_rate']:.4f} "
             f"| {r['hybrid_accuracy']:.4f} | {r['requests_per_1k']:.1f} | {r['cloud_requests_per_day']:.0f} "
             "|" for r in grid]
    return StepResult(
        summary={"delta": chosen["delta"], "offload_rate": round(chosen["offload_rate"], 4),
                 "hybrid_accuracy": round(chosen["hybrid_accuracy"], 4),
                 "device_accuracy": round(report["device_accuracy"], 4),
                 "cloud_accuracy": round(cloud_accuracy, 4), "target_met": chosen["target_met"], "how": chosen["how"],
                 "path": str(paths.offload_report)},
        tables={"grid": "\n".join(rows)},
    )


@records_metrics
def finops_report(settings: Settings) -> StepResult:
    from pipelines.finops.endpoint import (
        endpoint_manifests,
        finops_labels,
        render_manifests,
    )
    from pipelines.training.tracking import log_to_run

    params, paths = settings.params, ArtifactPaths(settings.root)
    footprint, offload = read_json(paths.footprint_report), read_json(paths.offload_report)
    run = run_compute(compute_records(settings), params.finops.prices.compute_vcpu_hour)
    result = assess(footprint, offload, params, run["cost_usd"])
    folder, reason = production_or_latest(settings, Path(FOOTPRINT_REPORT).name)
    production = None
    if folder is not None and (folder / "offload.json").is_file():
        production = assess(read_json(folder / "footprint.json"), read_json(folder / "offload.json"), params, 0.0)
    delta = cost_delta(result["release"], production["release"] if production else None,
                       reason + " (recomputed from its footprint and offload reports at today's fleet and prices)")
    gates, blocking = result["gates"], params.gates.budgets.blocking
    cloud = offload["app_config"]["cloud_model"]
    manifests = endpoint_manifests(params, cloud["name"], str(cloud["version"]))
    report = {
        "schema": "mobile-mlops/cost-report/v1", "tags": params.project.tags(), "labels": finops_labels(params),
        "fleet": params.finops.fleet.model_dump(), "prices": params.finops.prices.model_dump(),
        "endpoint": params.finops.endpoint.model_dump(), "tier_share": result["tier_share"],
        "privacy_class": result["privacy_class"], "variants": result["variants"], "release": result["release"],
        "run_compute": run, "decision_matrix": result["matrix"], "delta_vs_production": delta,
        "budgets": {"blocking": blocking, "verdicts": [g.as_dict() for g in gates]},
    }
    private = paths.trained_model / PRIVACY_FILE
    if (federated := federated_training(read_json(private) if private.is_file() else None, params.finops)):
        report["federated_training"] = federated
    write_json(paths.cost_report, report)
    with atomic_path(paths.offload_endpoint) as tmp:
        tmp.write_text(render_manifests(manifests))
    over = [g for g in gates if not g.passed]
    release = result["release"]
    metrics = {"finops_monthly_usd": release["monthly_usd"], "finops_serving_usd": release["serving_usd"],
               "finops_run_cpu_seconds": run["cpu_seconds"], "finops_run_compute_usd": run["cost_usd"],
               **{f"cpu_seconds_{n}": s["cpu_seconds"] for n, s in run["steps"].items()
                  if s and s["cpu_seconds"] is not None}}
    log_to_run(settings, read_json(paths.trained_model / MLFLOW_RECORD_FILE)["run_id"], metrics,
               {"reports": paths.cost_report})
    summary = {"monthly_usd": round(release["monthly_usd"], 4), "serving_usd": round(release["serving_usd"], 4),
               "run_cpu_seconds": round(run["cpu_seconds"], 3), "run_compute_usd": round(run["cost_usd"], 6),
               **{f"{p}_mb_per_device_month": round(f["device_mb_per_month"], 4)
                  for p, f in release["platforms"].items()},
               "budgets_over": len(over), "budgets_blocking": blocking, "privacy_class": result["privacy_class"],
               "path": str(paths.cost_report)}
    if delta.get("available"):
        summary["serving_usd_delta_vs_production"] = round(delta["serving_usd"]["delta"], 4)
    return StepResult(summary=summary, tables={
        "cost": summary_table(release, run, gates, delta), "cost per variant": cost_table(result["variants"], release),
        "decision matrix": matrix_table(result["matrix"]),
        "offload endpoint": "```yaml\n" + render_manifests(manifests) + "```"})
