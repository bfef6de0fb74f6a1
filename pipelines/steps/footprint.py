"""Footprint and offload steps: per-platform selection against budgets, and the hybrid offload policy."""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from pipelines.config import Settings
from pipelines.errors import PipelineError
from pipelines.features import encode_features, encode_labels
from pipelines.io import atomic_path, read_json, write_json
from pipelines.paths import ArtifactPaths
from pipelines.steps import StepResult, records_metrics
from pipelines.steps.model import MLFLOW_FILE, load_split, load_trained
from pipelines.tracking import log_to_run


def write_csv(target: Path, rows: list[dict[str, Any]]) -> None:
    """Rows as CSV, atomically (DVC plots files)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    with atomic_path(target) as tmp:
        tmp.write_text(buffer.getvalue())


@records_metrics
def footprint_report(settings: Settings) -> StepResult:
    from pipelines.footprint import LABEL, build_footprint, footprint_chart, footprint_rows, footprint_table, inline_image

    paths = ArtifactPaths(settings.root)
    report = build_footprint(read_json(paths.tflite_report), read_json(paths.coreml_report), settings.params)
    png = footprint_chart(report)
    write_json(paths.footprint_report, report)
    write_csv(paths.footprint_table, footprint_rows(report))
    with atomic_path(paths.footprint_chart) as tmp:
        tmp.write_bytes(png)
    selected = {p: facts["selected"] for p, facts in report["platforms"].items()}
    summary: dict[str, Any] = {f"{p}_released": name or "none" for p, name in selected.items()}
    for platform, name in selected.items():
        if name:
            summary[f"{platform}_released_bytes"] = report["platforms"][platform]["variants"][name]["size_bytes"]
    int8 = report["platforms"]["android"]["variants"].get("int8")
    if int8 and "size_vs_float" in int8:
        summary["tflite_int8_size_vs_float32"] = round(int8["size_vs_float"], 4)
    metrics = {k: float(v) for k, v in summary.items() if isinstance(v, int | float)}
    log_to_run(settings, read_json(paths.trained_model / MLFLOW_FILE)["run_id"], metrics,
               {"reports": paths.footprint_report, "plots": paths.footprint_chart})
    return StepResult(summary=summary | {"estimates": LABEL, "path": str(paths.footprint_report)},
                      tables={"variants": footprint_table(report), "chart": inline_image(png, "size and latency")})


@records_metrics
def offload_policy(settings: Settings) -> StepResult:
    from pipelines.metrics import classification_metrics
    from pipelines.offload import app_config, choose_delta, offload_grid
    from pipelines.tflite import predict_tflite
    from pipelines.train import predict_keras

    config, threshold = settings.params.offload, settings.params.train.threshold
    paths = ArtifactPaths(settings.root)
    tflite = read_json(paths.tflite_report)
    if config.device_variant not in tflite["variants"]:
        raise PipelineError(f"offload.device_variant: '{config.device_variant}' was not built "
                            f"(convert.tflite_variants: {', '.join(tflite['variants'])})")
    model, spec, record = load_trained(settings)
    test = load_split(settings, "test")
    x, y = encode_features(test, spec), encode_labels(test, spec)
    device_file = tflite["variants"][config.device_variant]["file"]
    device = predict_tflite((paths.tflite_model / device_file).read_bytes(), x)
    cloud = predict_keras(model, x)
    deltas = config.deltas + ([config.delta] if config.delta is not None else [])
    grid = offload_grid(device, cloud, y, threshold, deltas, config.daily_inferences)
    cloud_accuracy = classification_metrics(y, cloud, threshold)["accuracy"]
    chosen = choose_delta(grid, config, cloud_accuracy)
    cloud_model = {"name": record["model_name"], "version": record["model_version"], "format": "keras float32"}
    report = {
        "device_variant": config.device_variant, "device_accuracy": classification_metrics(y, device, threshold)["accuracy"],
        "cloud_accuracy": cloud_accuracy, "threshold": threshold, "daily_inferences": config.daily_inferences,
        "grid": grid, "chosen": chosen, "app_config": app_config(chosen, threshold, device_file, cloud_model),
    }
    write_json(paths.offload_report, report)
    write_csv(paths.offload_grid, grid)
    log_to_run(settings, record["run_id"], {f"offload_{k}": chosen[k] for k in ("delta", "offload_rate", "hybrid_accuracy")},
               {"reports": paths.offload_report})
    rows = ["| delta | offload rate | hybrid accuracy | requests / 1k | cloud requests / day |", "|---|---|---|---|---|"]
    rows += [f"| {r['delta']:g}{' (chosen)' if r['delta'] == chosen['delta'] else ''} | {r['offload_rate']:.4f} "
             f"| {r['hybrid_accuracy']:.4f} | {r['requests_per_1k']:.1f} | {r['cloud_requests_per_day']:.0f} |" for r in grid]
    return StepResult(
        summary={"delta": chosen["delta"], "offload_rate": round(chosen["offload_rate"], 4),
                 "hybrid_accuracy": round(chosen["hybrid_accuracy"], 4), "device_accuracy": round(report["device_accuracy"], 4),
                 "cloud_accuracy": round(cloud_accuracy, 4), "target_met": chosen["target_met"], "how": chosen["how"],
                 "path": str(paths.offload_report)},
        tables={"grid": "\n".join(rows)},
    )
