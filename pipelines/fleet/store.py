"""Daily-partitioned Parquet telemetry: one file per accepted batch and day, written atomically.

Layout under fleet.directory:
  day=YYYY-MM-DD/<batch>.parquet           accepted device-day records
  quarantine/day=YYYY-MM-DD/<batch>.parquet records with impossible values, and why (never analysed)
  features/day=YYYY-MM-DD/<batch>.json     summed input-bucket counts of the batch (per-device counts are not kept)
  batches/<batch>                          the replay ledger: written last, after every file of the batch

Each file is written to a temp name and renamed (os.replace) into place, so a reader never sees half a file
and a server stopped mid-write leaves no partial batch. File names derive from the batch id, so a batch
retried after a crash before its ledger entry rewrites the same files instead of duplicating rows.
The analyses query the shards in place (`shards` -> pipelines/fleet/query.py); `read_days` loads rows, for small
reads (one day, tests).
"""
from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

import pandas as pd

from pipelines.core.errors import PipelineError
from pipelines.fleet.query import Shards, check
from pipelines.fleet.schema import COLUMNS, typed

DAY = re.compile(r"^day=(\d{4}-\d{2}-\d{2})$")


def _replace(target: Path, write) -> None:  # write(path) fills the temp file
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    os.close(handle)
    try:
        write(Path(name))
        with open(name, "rb") as written:
            os.fsync(written.fileno())
        os.replace(name, target)
    finally:
        if os.path.exists(name):
            os.unlink(name)


def seen(directory: Path, batch_id: str) -> bool:
    return (directory / "batches" / batch_id).exists()


def write_batch(directory: Path, batch_id: str, accepted: pd.DataFrame, quarantined: pd.DataFrame | None = None,
                features: dict[str, dict[str, list[int]]] | None = None) -> None:
    """Append one batch: its rows per day partition, its quarantined rows, its feature sums, then the ledger."""
    for folder, frame in (("", accepted), ("quarantine/", quarantined)):
        if frame is None or frame.empty:
            continue
        for day, rows in frame.groupby("day", sort=True):
            _replace(directory / f"{folder}day={day}" / f"{batch_id}.parquet",
                     lambda p, r=rows: r.reset_index(drop=True).to_parquet(p, index=False))
    for day, sums in (features or {}).items():
        _replace(directory / "features" / f"day={day}" / f"{batch_id}.json",
                 lambda p, s=sums: p.write_text(json.dumps(s, sort_keys=True)))
    _replace(directory / "batches" / batch_id, lambda p: p.write_text(""))


def days(directory: Path, folder: str = "") -> list[str]:
    """The day partitions present, oldest first."""
    root = directory / folder if folder else directory
    return sorted(m.group(1) for p in root.glob("day=*") if (m := DAY.match(p.name)) and p.is_dir())


def files(directory: Path, until: str | None = None, only: str | None = None, folder: str = "") -> list[Path]:
    """The Parquet shards of the days up to `until` (or of day `only`), oldest day first."""
    wanted = [d for d in days(directory, folder) if (only is None or d == only) and (until is None or d <= until)]
    root = directory / folder if folder else directory
    return [f for d in wanted for f in sorted((root / f"day={d}").glob("*.parquet"))]


def shards(directory: Path, until: str | None = None, exclude_quarantined: bool = False) -> Shards:
    """The accepted shards up to `until`, checked, to query in place (pipelines/fleet/query.py)."""
    found = files(directory, until=until)
    check(found)
    return Shards(tuple(found), frozenset(quarantined_devices(directory, until)) if exclude_quarantined else
                  frozenset())


def read_days(directory: Path, until: str | None = None, only: str | None = None, folder: str = "") -> pd.DataFrame:
    """Every stored row of the days up to `until` (or of day `only`), as one frame (small reads: one day, tests)."""
    found = files(directory, until=until, only=only, folder=folder)
    if not found:
        return typed(pd.DataFrame({c: [] for c in COLUMNS})) if not folder else pd.DataFrame()
    check(found)
    try:
        return pd.concat([pd.read_parquet(f) for f in found], ignore_index=True)
    except (OSError, ValueError) as exc:
        raise PipelineError(f"{directory}: cannot read telemetry ({str(exc).splitlines()[0]})") from exc


def quarantined_devices(directory: Path, until: str | None = None) -> set[str]:
    """Device ids with any quarantined record: they are left out of every analysis."""
    frame = read_days(directory, until=until, folder="quarantine")
    return set(frame["device_id"]) if not frame.empty else set()


def feature_counts(directory: Path, until: str | None = None) -> dict[str, list[int]]:
    """Summed input-bucket counts over the days up to `until`."""
    total: dict[str, list[int]] = {}
    for day in days(directory, "features"):
        if until is not None and day > until:
            continue
        for path in sorted((directory / "features" / f"day={day}").glob("*.json")):
            for name, counts in json.loads(path.read_text()).items():
                have = total.setdefault(name, [0] * len(counts))
                total[name] = [a + b for a, b in zip(have + [0] * (len(counts) - len(have)), counts, strict=False)]
    return total
