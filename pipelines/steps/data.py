"""Data steps: raw dataset, validated dataset, splits."""
from __future__ import annotations

import pandas as pd

from pipelines.config import Settings
from pipelines.data import load_dataset
from pipelines.hashing import dvc_md5
from pipelines.io import atomic_path, write_json
from pipelines.paths import ArtifactPaths
from pipelines.split import SPLITS, split_dataset
from pipelines.steps import StepResult
from pipelines.validate import validate_dataset


def source_files(settings: Settings) -> dict[str, str]:
    """Source files named in params -> their md5 (what dvc.lock records for the ingest deps)."""
    data = settings.params.data
    paths = [settings.resolve(data.source)] + ([settings.resolve(data.test_source)] if data.test_source else [])
    return {str(p.relative_to(settings.root)) if p.is_relative_to(settings.root) else str(p): dvc_md5(p)
            for p in paths if p.is_file()}


def _write_parquet(frame: pd.DataFrame, target) -> str:
    with atomic_path(target) as tmp:
        frame.to_parquet(tmp, index=False)
    return dvc_md5(target)


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


def validated_dataset(settings: Settings) -> StepResult:
    paths = ArtifactPaths(settings.root)
    frame = pd.read_parquet(paths.raw_dataset)
    report = validate_dataset(frame, settings.params.data, settings.params.validate_)
    write_json(paths.validation_report, report)
    md5 = _write_parquet(frame, paths.validated_dataset)
    table = "| column | type | null fraction | distinct |\n|---|---|---|---|\n" + "\n".join(
        f"| {name} | {c['type']} | {c['null_fraction']:.4f} | {c['distinct']} |" for name, c in report["columns"].items()
    )
    return StepResult(
        summary={"rows": report["rows"], "positive_rate": report["positive_rate"], "path": str(paths.validated_dataset)},
        tables={"columns": table},
        data_version=md5,
    )


def dataset_splits(settings: Settings) -> StepResult:
    paths = ArtifactPaths(settings.root)
    frame = pd.read_parquet(paths.validated_dataset)
    parts = split_dataset(frame, settings.params.data, settings.params.split)
    with atomic_path(paths.dataset_splits) as tmp:
        tmp.mkdir()
        for name in SPLITS:
            parts[name].to_parquet(tmp / f"{name}.parquet", index=False)
    return StepResult(summary={f"{name}_rows": len(parts[name]) for name in SPLITS} | {"path": str(paths.dataset_splits)})
