"""Drift step: today's data against the production model's data (or the previous candidate's)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from pipelines.config import Settings
from pipelines.data import ORIGIN
from pipelines.drift import compare, prediction_drift, profile_frame
from pipelines.errors import PipelineError
from pipelines.features import FeatureSpec, encode_features
from pipelines.io import read_json, write_json
from pipelines.paths import ArtifactPaths
from pipelines.plots import psi_chart
from pipelines.steps import StepResult, records_metrics

PROFILE_FILE = "reference_profile.json"
REFERENCE_MODELS = ("model_float32.tflite", "model_float16.tflite", "model_dynamic_int8.tflite", "model_int8.tflite")


def reference_model(release: Path) -> Path | None:
    """The most precise TFLite model a release carries (it ships the selected variant, not all of them)."""
    return next((release / name for name in REFERENCE_MODELS if (release / name).is_file()), None)
PRODUCTION_FILE = "deploy/production.yaml"


def _version_key(path: Path) -> tuple:
    return tuple(int(p) if p.isdigit() else 0 for p in path.name.replace("-", ".").split("."))


def _production_version(settings: Settings) -> str | None:
    path = settings.resolve(PRODUCTION_FILE)
    if not path.is_file():
        return None
    desired = yaml.safe_load(path.read_text()) or {}
    model = desired.get("model", desired)
    version = model.get("version") or model.get("model_version") if isinstance(model, dict) else None
    return str(version) if version is not None else None


def find_reference(settings: Settings) -> tuple[Path | None, str]:
    """The release to compare against and why: configured, production, previous candidate, or none."""
    configured = settings.params.drift.reference
    if configured != "auto":
        folder = settings.resolve(configured)
        if not (folder / PROFILE_FILE).is_file():
            raise PipelineError(f"drift.reference: {folder} has no {PROFILE_FILE}")
        return folder, "configured in drift.reference"
    releases = settings.resolve(settings.params.release.directory) / settings.params.release.model_name
    version = _production_version(settings)
    if version and (releases / version / PROFILE_FILE).is_file():
        return releases / version, f"production release {version} ({PRODUCTION_FILE})"
    earlier = sorted((p for p in releases.glob("*") if (p / PROFILE_FILE).is_file()), key=_version_key)
    if earlier:
        return earlier[-1], f"previous release candidate {earlier[-1].name} (no production release yet)"
    return None, "no reference: no production release and no earlier release candidate, so nothing to drift from"


def current_profile(frame: pd.DataFrame) -> dict[str, Any]:
    return profile_frame(frame, [c for c in frame.columns if c != ORIGIN])


def reference_predictions(content: bytes, spec: FeatureSpec, frame: pd.DataFrame, rows: int) -> np.ndarray:
    """Scores of a TFLite model on (a sample of) a frame."""
    from pipelines.tflite import predict_tflite

    sample = frame.sample(min(rows, len(frame)), random_state=0) if len(frame) > rows else frame
    return predict_tflite(content, encode_features(sample, spec))


def release_profile(settings: Settings, model: bytes, spec: FeatureSpec) -> dict[str, Any]:
    """The profile a release carries so later runs can test drift against it (no rows kept)."""
    paths = ArtifactPaths(settings.root)
    frame = pd.read_parquet(paths.validated_dataset)
    proba = reference_predictions(model, spec, frame, settings.params.drift.sample_rows)
    return read_json(paths.data_profile) | {"predictions": np.quantile(proba, np.linspace(0, 1, 1000)).tolist()}


@records_metrics
def data_drift(settings: Settings, raise_on_drift: bool = True) -> StepResult:
    paths, config = ArtifactPaths(settings.root), settings.params.drift
    frame = pd.read_parquet(paths.validated_dataset)
    write_json(paths.data_profile, current_profile(frame))
    reference, why = find_reference(settings)
    shown = reference.relative_to(settings.root) if reference and reference.is_relative_to(settings.root) else reference
    report: dict[str, Any] = {"reference": str(shown) if shown else None, "reason": why,
                              "blocking": config.blocking, "drift": False, "drifted": [], "features": {}}
    if reference is not None:
        profile = read_json(reference / PROFILE_FILE)
        report |= compare(profile, frame, config)
        model = reference_model(reference)
        if "predictions" in profile and model is not None:
            spec = FeatureSpec.model_validate(read_json(reference / "feature_spec.json")["spec"])
            proba = reference_predictions(model.read_bytes(), spec, frame, config.sample_rows)
            report["predictions"] = prediction_drift(profile["predictions"], proba, config) | {"model": model.name}
            if report["predictions"]["drifted"]:
                report["drifted"].append("(reference model predictions)")
                report["drift"] = True
    write_json(paths.drift_report, report)
    psi = {name: r["psi"] for name, r in report["features"].items()}
    if "predictions" in report:
        psi["(predictions)"] = report["predictions"]["psi"]
    psi_chart(psi, config.psi_threshold, paths.drift_plot, f"Drift vs {Path(report['reference'] or '-').name}")
    if report["drift"] and config.blocking and raise_on_drift:
        raise PipelineError(drift_message(report))
    return StepResult(summary={"reference": report["reference"] or "none", "reason": why,
                               "drift": report["drift"], "drifted": ", ".join(report["drifted"]) or "none",
                               "path": str(paths.drift_report)},
                      tables={"drift": drift_table(report)}, plots={"PSI per feature": paths.drift_plot})


def drift_message(report: dict[str, Any]) -> str:
    worst = ", ".join(report["drifted"][:5])
    return f"drift: {len(report['drifted'])} feature(s) drifted against {report['reference']}: {worst}"


def drift_table(report: dict[str, Any]) -> str:
    if not report["features"]:
        return report["reason"]
    rows = ["| feature | PSI | test | statistic | p-value | drift |", "|---|---|---|---|---|---|"]
    items = list(report["features"].items()) + ([("(predictions)", report["predictions"])] if "predictions" in report else [])
    for name, r in items:
        rows.append(f"| {name} | {r['psi']:.4f} | {r['test']} | {r['statistic']:.4f} | {r['p_value']:.3g} "
                    f"| {'DRIFT' if r['drifted'] else 'ok'} |")
    return "\n".join(rows)
