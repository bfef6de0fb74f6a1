"""The source data's version: the files params data.* name and their DVC md5s (no pandas: `mobile-mlops run` asks
this before it decides whether anything needs loading)."""
from __future__ import annotations

from pipelines.core.config import Settings
from pipelines.core.errors import PipelineError
from pipelines.core.hashing import recorded_md5


def source_files(settings: Settings) -> dict[str, str]:
    """Source files named in params -> their md5 (what dvc.lock records for the ingest deps)."""
    data = settings.params.data
    source = settings.resolve(data.source)
    if source.is_dir():  # a folder of daily files: each accepted day, by the md5 of its .dvc record
        from pipelines.data.partitions import accepted_files

        try:
            sources = accepted_files(source)
        except PipelineError:  # nothing accepted yet, or a changed day: raw_dataset says which; no version here
            sources = []
    else:
        sources = [source]
    paths = sources + ([settings.resolve(data.test_source)] if data.test_source else [])
    return {str(p.relative_to(settings.root)) if p.is_relative_to(settings.root) else str(p): recorded_md5(p)  # type: ignore[misc]
            for p in paths if p.is_file()}
