"""Data steps: raw dataset, validated dataset, splits."""
from __future__ import annotations

import pandas as pd

from pipelines.config import Settings
from pipelines.data import load_dataset
from pipelines.hashing import dvc_md5
from pipelines.io import atomic_path, write_json
from pipelines.paths import ArtifactPaths
from pipelines.split import SPLITS, split_dataset
from pipelines.steps import StepResult, records_metrics
from pipelines.errors import PipelineError
from pipelines.expectations import build_suite, load_suite, save_suite
from pipelines.safe_text import md_cell
from pipelines.validate import ValidationFailed, validate_dataset
from pipelines.versions import recorded_md5


def source_files(settings: Settings) -> dict[str, str]:
    """Source files named in params -> their md5 (what dvc.lock records for the ingest deps)."""
    data = settings.params.data
    paths = [settings.resolve(data.source)] + ([settings.resolve(data.test_source)] if data.test_source else [])
    return {str(p.relative_to(settings.root)) if p.is_relative_to(settings.root) else str(p): recorded_md5(p)
            for p in paths if p.is_file()}


def _write_parquet(frame: pd.DataFrame, target) -> str:
    with atomic_path(target) as tmp:
        frame.to_parquet(tmp, index=False)
    return dvc_md5(target)


@records_metrics
def raw_dataset(settings: Settings) -> StepResult:
    data = settings.params.data
    test_source = settings.resolve(data.test_source) if data.test_source else None
    frame = load_dataset(data, settings.resolve(data.source), test_source)
    paths = ArtifactPaths(settings.root)
    md5 = _write_parquet(frame, paths.raw_dataset)
    return StepResult(
        summary={"rows": len(frame), "columns": len(frame.columns), "source_md5": source_files(settings),
                 "path": str(paths.raw_dataset)},
        data_version=md5,
    )


def build_expectations(settings: Settings) -> StepResult:
    """Write the expectation suite from the current raw dataset (run it on a data version you trust)."""
    paths = ArtifactPaths(settings.root)
    if not paths.raw_dataset.is_file():
        raise PipelineError(f"{paths.raw_dataset} not found; run the raw_dataset step first")
    suite = build_suite(pd.read_parquet(paths.raw_dataset), settings.params.data, settings.params.validate_,
                        dvc_md5(paths.raw_dataset))
    target = settings.resolve(settings.params.validate_.suite)
    save_suite(target, suite)
    return StepResult(summary={"expectations": len(suite["expectations"]), "path": str(target),
                               "built_from_data_version": suite["built_from_data_version"]})


@records_metrics
def validated_dataset(settings: Settings) -> StepResult:
    paths = ArtifactPaths(settings.root)
    suite_path = settings.resolve(settings.params.validate_.suite)
    if not suite_path.is_file():  # first run on new data: that version becomes the trusted baseline
        build_expectations(settings)
    frame = pd.read_parquet(paths.raw_dataset)
    try:
        clean, report = validate_dataset(frame, settings.params.data, settings.params.validate_, load_suite(suite_path))
    except ValidationFailed as failed:
        write_json(paths.validation_report, {"success": False, "expectations": failed.outcome})
        paths.validated_dataset.unlink(missing_ok=True)  # downstream must never read data that failed
        raise
    write_json(paths.validation_report, report | {"success": True})
    md5 = _write_parquet(clean, paths.validated_dataset)
    table = "| column | type | null fraction | distinct |\n|---|---|---|---|\n" + "\n".join(
        f"| {name} | {c['type']} | {c['null_fraction']:.4f} | {c['distinct']} |" for name, c in report["columns"].items()
    )
    return StepResult(
        summary={"rows": report["rows"], "raw_rows": report["raw_rows"], "positive_rate": report["positive_rate"],
                 "expectations_evaluated": report["expectations"]["evaluated"], "path": str(paths.validated_dataset)},
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
def dataset_splits(settings: Settings) -> StepResult:
    paths = ArtifactPaths(settings.root)
    frame = pd.read_parquet(paths.validated_dataset)
    parts = split_dataset(frame, settings.params.data, settings.params.split)
    with atomic_path(paths.dataset_splits) as tmp:
        tmp.mkdir()
        for name in SPLITS:
            parts[name].to_parquet(tmp / f"{name}.parquet", index=False)
    return StepResult(summary={f"{name}_rows": len(parts[name]) for name in SPLITS} | {"path": str(paths.dataset_splits)})
