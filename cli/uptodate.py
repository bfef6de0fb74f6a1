"""The quick answer of `mobile-mlops run` when nothing changed, before Dagster is imported.

After a run that left nothing stale, the Dagster home keeps a fingerprint of what decides staleness: every
stage's code version (its code and the params values it reads, pipelines/code_versions.py), the source data's
DVC md5s and the stage catalog. The next run computes the same fingerprint; when it matches and every stage's
outputs are on disk, the project is up to date without opening Dagster (a second or two instead of the five or
more that importing Dagster and resolving staleness take). Anything else goes through Dagster's own staleness.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from pipelines.catalog import STAGES, missing_outputs
from pipelines.code_versions import stage_code_version
from pipelines.core.config import Settings
from pipelines.core.io import write_json
from pipelines.data.sources import source_files

RECORD = "mobile-mlops-up-to-date.json"
CATALOG = Path(__file__).resolve().parents[1] / "pipelines" / "catalog.py"


def home_of(settings: Settings) -> Path:
    """The Dagster home `mobile-mlops run` uses (DAGSTER_HOME, else .dagster in the project)."""
    return Path(os.environ.get("DAGSTER_HOME") or settings.root / ".dagster")


def fingerprint(settings: Settings) -> str:
    """sha256 of every stage's code version, the source md5s and the catalog."""
    parts = {"stages": {name: stage_code_version(name, settings) for name in STAGES},
             "source": source_files(settings), "catalog": hashlib.sha256(CATALOG.read_bytes()).hexdigest()}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def up_to_date(settings: Settings) -> bool:
    """The last run's fingerprint matches and no stage's output is missing."""
    record = home_of(settings) / RECORD
    if not record.is_file() or missing_outputs(settings):
        return False
    try:
        return json.loads(record.read_text()).get("fingerprint") == fingerprint(settings)
    except (OSError, ValueError):
        return False  # unreadable: ask Dagster


def remember(settings: Settings, value: str) -> None:
    """Record the fingerprint of a run that left nothing stale."""
    write_json(home_of(settings) / RECORD, {"fingerprint": value})


def forget(settings: Settings) -> None:
    """Drop the record (a run is about to change what it describes)."""
    (home_of(settings) / RECORD).unlink(missing_ok=True)
