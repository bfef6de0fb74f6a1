"""Incoming data as daily partitions: one file a day in a landing folder, accepted once it validates.

An upstream system drops `YYYY-MM-DD.parquet` (or `.csv`, in data.source's format) into data.incoming.folder.
Accepting a day (the `daily_batch` partition) validates its rows, measures drift against the reference and
writes the DVC record beside it (`YYYY-MM-DD.parquet.dvc`, the md5 DVC itself writes): the record is what marks a
day accepted, so a folder `data.source` reads only the days that passed, and `dvc commit`/`dvc push` version them.
"""
from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path

import yaml

from pipelines.core.config import DataConfig, Settings
from pipelines.core.errors import PipelineError
from pipelines.core.hashing import dvc_md5, recorded_md5
from pipelines.core.io import atomic_path

DAY = re.compile(r"^(\d{4}-\d{2}-\d{2})\.(parquet|csv|csv\.gz)$")
SUFFIXES = (".parquet", ".csv", ".csv.gz")
IGNORED = "".join(f"/*{suffix}\n" for suffix in SUFFIXES)


def incoming_folder(settings: Settings) -> Path:
    """The landing folder params name (data.incoming.folder)."""
    return settings.resolve(settings.params.data.incoming.folder)


def parse_day(key: str, what: str = "daily partition") -> date:
    """A partition key (YYYY-MM-DD) as a date; anything else is one line naming it."""
    try:
        day = date.fromisoformat(key)
    except (ValueError, TypeError) as exc:
        raise PipelineError(f"{what} {_shown_key(key)} is not a YYYY-MM-DD date ({exc})") from exc
    if day.isoformat() != key:  # 3.11 also reads 20260101 and 2026-W01-1: a day names files, one spelling only
        raise PipelineError(f"{what} {_shown_key(key)} is not a YYYY-MM-DD date (write it as {day.isoformat()})")
    return day


def _shown_key(key: object) -> str:
    text = repr(str(key))
    return text if len(text) <= 40 else text[:39] + "…"


def day_file(folder: Path, day: str) -> Path:
    """The one landing file of a day; a missing or doubled day is one line naming the folder."""
    parse_day(day)
    found = [folder / f"{day}{suffix}" for suffix in SUFFIXES if (folder / f"{day}{suffix}").is_file()]
    if not found:
        raise PipelineError(f"data.incoming.folder: no file for {day} in {folder} (expected {day}.parquet or .csv)")
    if len(found) > 1:
        raise PipelineError(f"data.incoming.folder: {day} has {len(found)} files in {folder}: "
                            f"{', '.join(p.name for p in found)} (keep one)")
    return found[0]


def landed_days(folder: Path) -> list[str]:
    """Days with a landing file in the folder, sorted."""
    if not folder.is_dir():
        return []
    return sorted({m.group(1) for p in folder.iterdir() if (m := DAY.match(p.name)) and p.is_file()})


def record_path(path: Path) -> Path:
    return path.with_name(path.name + ".dvc")


def write_record(path: Path) -> str:
    """The `.dvc` file `dvc add` writes for one file (md5, size, path), and a .gitignore line for the file."""
    md5 = dvc_md5(path)
    record = {"outs": [{"md5": md5, "size": path.stat().st_size, "hash": "md5", "path": path.name}]}
    with atomic_path(record_path(path)) as tmp:
        tmp.write_text(yaml.safe_dump(record, sort_keys=False))
    ignore = path.parent / ".gitignore"
    if not ignore.is_file():  # as `dvc add` does: git keeps the records, DVC the data (same text from any writer)
        with atomic_path(ignore) as tmp:
            tmp.write_text(IGNORED)
    return md5


def drop_record(path: Path) -> None:
    """A day that failed is no longer accepted (its earlier record, if any, goes)."""
    record_path(path).unlink(missing_ok=True)


def accepted_files(folder: Path) -> list[Path]:
    """The accepted days' files, oldest first; a file changed since it was accepted is one line naming it."""
    accepted = []
    for day in landed_days(folder):
        path = day_file(folder, day)
        if not record_path(path).is_file():
            continue  # landed but not accepted (yet, or it failed): training never reads it
        if recorded_md5(path) != dvc_md5(path):
            raise PipelineError(f"data.source: {path.name} changed after it was accepted (its md5 differs from "
                                f"{record_path(path).name}); materialize daily_batch {day} again")
        accepted.append(path)
    if not accepted:
        raise PipelineError(f"data.source: {folder} has no accepted daily file (materialize daily_batch partitions "
                            "first)")
    return accepted


def day_keys(start: date, days: int) -> list[str]:
    """`days` consecutive partition keys from `start`."""
    if days < 1:
        raise PipelineError(f"--days {days}: need at least one day")
    return [(start + timedelta(days=i)).isoformat() for i in range(days)]


def is_incoming(config: DataConfig, settings: Settings) -> bool:
    """Whether data.source is a folder of daily files (training reads the accepted days)."""
    return settings.resolve(config.source).is_dir()
