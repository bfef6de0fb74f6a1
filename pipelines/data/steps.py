"""Data steps: the raw dataset, the validated dataset, drift against the reference release, the splits, and the
accepted daily partitions of incoming data."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from pipelines.core.config import Settings
from pipelines.core.errors import PipelineError
from pipelines.core.hashing import dvc_md5
from pipelines.core.io import read_json, write_json
from pipelines.core.paths import (
    FEATURE_SPEC_FILE,
    RELEASE_PROFILE_FILE,
    ArtifactPaths,
    suite_path,
)
from pipelines.core.safe_text import md_cell
from pipelines.core.step import StepResult, records_metrics
from pipelines.data import spark_jobs
from pipelines.data.drift import compare, prediction_drift, schema_difference
from pipelines.data.expectations import load_suite, save_suite
from pipelines.data.features import FeatureSpec
from pipelines.data.load import load_dataset
from pipelines.data.partitions import day_file, drop_record, incoming_folder, write_record
from pipelines.data.plots import psi_chart
from pipelines.data.reference import current_profile, find_reference, reference_predictions
from pipelines.data.sources import source_files
from pipelines.data.split import SPLITS
from pipelines.data.split_size import sized_split
from pipelines.data.stream import (
    build_suite_stream,
    profile_stream,
    sample_rows,
    split_stream,
    validate_stream,
    write_raw,
)
from pipelines.data.validate import ValidationFailed, validate_dataset
from pipelines.release_format.keyset import load_keyset
from pipelines.release_format.reference import reference_model_bytes


@records_metrics
def raw_dataset(settings: Settings) -> StepResult:
    data = settings.params.data
    test_source = settings.resolve(data.test_source) if data.test_source else None
    paths = ArtifactPaths(settings.root)
    categories = settings.params.validate_.max_categories
    written = (spark_jobs.write_raw(settings, paths.raw_dataset, categories) if settings.params.engine == "spark"
               else write_raw(data, settings.resolve(data.source), test_source,  # a folder: its accepted days
                              paths.raw_dataset, max_categories=categories))
    return StepResult(
        summary={"rows": written["rows"], "columns": written["columns"], "source_md5": source_files(settings),
                 "path": str(paths.raw_dataset)},
        data_version=dvc_md5(paths.raw_dataset),
    )


def _shown(settings: Settings, path: Path) -> str:
    return str(path.relative_to(settings.root)) if path.is_relative_to(settings.root) else str(path)


def build_expectations(settings: Settings) -> StepResult:
    """Write the expectation suite from the current raw dataset (run it on a data version you trust)."""
    paths = ArtifactPaths(settings.root)
    if not paths.raw_dataset.is_file():
        raise PipelineError(f"{paths.raw_dataset} not found; run the raw_dataset step first")
    suite = build_suite_stream(paths.raw_dataset, settings.params.data, settings.params.validate_,
                               dvc_md5(paths.raw_dataset))
    target = suite_path(settings)
    save_suite(target, suite)
    return StepResult(summary={"expectations": len(suite["expectations"]), "path": str(target),
                               "built_from_data_version": suite["built_from_data_version"]})


@records_metrics
def validated_dataset(settings: Settings) -> StepResult:
    paths = ArtifactPaths(settings.root)
    suite = suite_path(settings)
    built = not suite.is_file()
    if built:  # a model's first run: this data version becomes its trusted baseline
        build_expectations(settings)
    paths.validation_report.unlink(missing_ok=True)  # its expectations gate judges only what this run writes
    paths.validated_dataset.unlink(missing_ok=True)  # downstream must never read data that failed
    try:
        report = (spark_jobs.validate(settings, paths.raw_dataset, paths.validated_dataset, load_suite(suite))
                  if settings.params.engine == "spark" else
                  validate_stream(paths.raw_dataset, paths.validated_dataset, settings.params.data,
                                  settings.params.validate_, load_suite(suite)))
    except ValidationFailed as failed:
        write_json(paths.validation_report, {"success": False, "expectations": failed.outcome})
        raise
    write_json(paths.validation_report, report | {"success": True})
    md5 = dvc_md5(paths.validated_dataset)
    table = "| column | type | null fraction | distinct |\n|---|---|---|---|\n" + "\n".join(
        f"| {md_cell(name)} | {c['type']} | {c['null_fraction']:.4f} | {c['distinct']}"
        f"{'+' if c.get('distinct_capped') else ''} "
        "|" for name, c in report["columns"].items()
    )
    return StepResult(
        summary={"rows": report["rows"], "raw_rows": report["raw_rows"], "positive_rate": report["positive_rate"],
                 "expectations_evaluated": report["expectations"]["evaluated"], "path": str(paths.validated_dataset),
                 "suite": _shown(settings, suite) + (" (built from this data on the model's first run: review and "
                                                     "commit it)" if built else "")},
        tables={"columns": table, "expectations": expectations_table(report["expectations"])},
        data_version=md5,
    )


def expectations_table(outcome: dict) -> str:
    """Failed expectations with example values, escaped for Markdown (values are untrusted)."""
    if not outcome["failed"]:
        return f"All {outcome['evaluated']} expectations passed."
    rows = ["| column | expectation | unexpected | examples |", "|---|---|---|---|"]
    for f in outcome["failed"]:
        where = f["column"] or (f"(rows: {len(f['columns'])} columns)" if f.get("columns") else "(table)")
        count = "" if f["unexpected_count"] is None else f"{f['unexpected_count']} of {f.get('rows') or '?'}"
        if count and f.get("allowed_percent") is not None:
            count += f" ({f['unexpected_percent']:.1f}%, allowed {f['allowed_percent']:.1f}%)"
        examples = ", ".join(md_cell(e, 40) for e in f["examples"][:3]) or md_cell(
            f.get("error") or f.get("expected") or f["observed"])
        rows.append(f"| {md_cell(where)} | {f['expectation']} | {count} | {examples} |")
    return "\n".join(rows)


@records_metrics
def data_drift(settings: Settings) -> StepResult:
    paths, config = ArtifactPaths(settings.root), settings.params.drift
    if settings.params.release.encryption == "tink":
        load_keyset(settings, create=True)  # this run's release will need it: a missing keyset stops before training
    today = (spark_jobs.drift_profile(settings, paths.validated_dataset) if settings.params.engine == "spark"
             else profile_stream(paths.validated_dataset, settings.params.data.batch_rows))
    write_json(paths.data_profile, today)
    # the tests below sample drift.sample_rows rows: a bounded sample of larger data is read, never all of it
    frame = sample_rows(paths.validated_dataset, settings.params.data.batch_rows, settings.params.data.batch_rows)
    reference, why = find_reference(settings)
    if reference is not None:  # another feature schema is no reference (another model has its own folder)
        differs = schema_difference(read_json(reference / RELEASE_PROFILE_FILE), today)
        if differs:
            why = f"no comparable reference: {reference.name} has another feature schema ({differs})"
            reference = None
    shown = reference.relative_to(settings.root) if reference and reference.is_relative_to(settings.root) else reference
    report: dict[str, Any] = {"reference": str(shown) if shown else None, "reason": why,
                              "blocking": config.blocking, "drift": False, "drifted": [], "features": {}}
    if reference is not None:
        profile = read_json(reference / RELEASE_PROFILE_FILE)
        report |= compare(profile, frame, config)
        model = reference_model_bytes(settings, reference) if "predictions" in profile else None
        if model is not None:
            spec = FeatureSpec.model_validate(read_json(reference / FEATURE_SPEC_FILE)["spec"])
            proba = reference_predictions(model[1], spec, frame, config.sample_rows)
            report["predictions"] = prediction_drift(profile["predictions"], proba, config) | {"model": model[0]}
            if report["predictions"]["drifted"]:
                report["drifted"].append("(reference model predictions)")
                report["drift"] = True
    write_json(paths.drift_report, report)
    psi = {name: r["psi"] for name, r in report["features"].items()}
    if "predictions" in report:
        psi["(predictions)"] = report["predictions"]["psi"]
    psi_chart(psi, config.psi_threshold, paths.drift_plot, f"Drift vs {Path(report['reference'] or '-').name}")
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
    items = list(report["features"].items()) + (
        [("(predictions)", report["predictions"])] if "predictions" in report else [])
    for name, r in items:
        rows.append(f"| {md_cell(name)} | {r['psi']:.4f} | {r['test']} | {r['statistic']:.4f} | {r['p_value']:.3g} "
                    f"| {'DRIFT' if r['drifted'] else 'ok'} |")
    return "\n".join(rows)


@records_metrics
def dataset_splits(settings: Settings) -> StepResult:
    paths = ArtifactPaths(settings.root)
    config, sizing, tables = sized_split(settings.params, paths.validated_dataset)
    sizes = (spark_jobs.write_splits(settings, paths.validated_dataset, paths.dataset_splits, config)
             if settings.params.engine == "spark" else
             split_stream(paths.validated_dataset, paths.dataset_splits, settings.params.data, config))
    return StepResult(summary={f"{name}_rows": sizes[name] for name in SPLITS} | sizing
                      | {"path": str(paths.dataset_splits)}, tables=tables)


def daily_batch(settings: Settings, day: str) -> StepResult:
    """Accept one day of incoming data: validate its rows (suite + invariants), measure drift against the
    reference, then write its DVC record. A bad day raises one line naming its file; other days are untouched."""
    data, paths = settings.params.data, ArtifactPaths(settings.root)
    path = day_file(incoming_folder(settings), day)
    suite = suite_path(settings)
    try:
        frame = load_dataset(data, path, key="incoming.folder")
        clean, report = validate_dataset(frame, data, settings.params.validate_,
                                         load_suite(suite) if suite.is_file() else None)
    except PipelineError as exc:
        drop_record(path)  # a day that fails is not accepted, even if an earlier version of it was
        raise PipelineError(f"daily_batch {day} ({_shown(settings, path)}): {exc}") from exc
    reference, why = find_reference(settings)
    source = reference / RELEASE_PROFILE_FILE if reference is not None else paths.data_profile
    if reference is None and source.is_file():
        why = "no release yet: the profile of the data last trained on"
    profile = read_json(source) if source.is_file() else None
    drift: dict[str, Any] = {"drift": False, "drifted": [], "features": {}}
    if profile is not None and (differs := schema_difference(profile, current_profile(clean))):
        profile, why = None, f"no comparable reference: another feature schema ({differs})"
    if profile is not None:
        drift = compare(profile, clean, settings.params.drift)
    md5 = write_record(path)
    return StepResult(
        summary={"day": day, "path": _shown(settings, path), "md5": md5, "rows": report["rows"],
                 "raw_rows": report["raw_rows"], "positive_rate": report["positive_rate"],
                 "expectations_evaluated": report["expectations"]["evaluated"],
                 "suite": _shown(settings, suite) if suite.is_file() else "none (invariants only)",
                 "reference": _shown(settings, source) if profile is not None else "none", "reason": why,
                 "drift": drift["drift"], "drifted": ", ".join(drift["drifted"]) or "none"},
        tables={"drift_table": drift_table({**drift, "reason": why})}, data_version=md5)
