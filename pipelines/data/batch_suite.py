"""Great Expectations over batches, judged as one validation of all rows: the suite runs on each batch; row-wise
expectations sum their per-batch counts and are judged once (their `mostly` on the whole data), and whole-data
expectations (row count, distinct values, duplicate rows) are judged on merged figures. Every verdict and count is
exact; only the example values come from the batches that had them."""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipelines.data.expectations import _expected, _key


def row_hashes(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """A 64-bit hash of each row's values in `columns`: duplicates across batches are equal hashes."""
    present = [c for c in columns if c in frame.columns]
    return pd.util.hash_pandas_object(frame[present], index=False).to_numpy()


def duplicated_rows(hashes: list[np.ndarray]) -> int:
    """Rows whose values occur more than once in the whole data (every copy counts, as `duplicated(keep=False)`)."""
    if not hashes:
        return 0
    _, counts = np.unique(np.concatenate(hashes), return_counts=True)
    return int(counts[counts > 1].sum())


class DuplicateCounter:
    """`duplicated_rows` over batches without holding every row's hash: each batch's hashes are appended to one of
    PARTITIONS temporary files by their top byte, and each file is counted alone (equal hashes share a file, so the
    sum is the same count). Memory: one partition's hashes, about 1/256 of the rows' 8 bytes each."""

    PARTITIONS = 256

    def __init__(self) -> None:
        self._folder = tempfile.TemporaryDirectory(prefix="mobile-mlops-duplicates-")
        self._used: set[int] = set()

    def _file(self, part: int) -> Path:
        return Path(self._folder.name) / f"{part:03d}.u64"

    def add(self, hashes: np.ndarray) -> None:
        hashes = np.asarray(hashes, np.uint64)
        parts = (hashes >> np.uint64(56)).astype(np.int64)
        order = np.argsort(parts, kind="stable")
        bounds = np.searchsorted(parts[order], np.arange(self.PARTITIONS + 1))
        for part in np.flatnonzero(np.diff(bounds)):
            with open(self._file(int(part)), "ab") as handle:
                handle.write(hashes[order[bounds[part]:bounds[part + 1]]].tobytes())
            self._used.add(int(part))

    def count(self) -> int:
        """Rows whose values occur more than once in every batch added; the temporary files are then removed."""
        try:
            return sum(duplicated_rows([np.fromfile(self._file(p), np.uint64)]) for p in sorted(self._used))
        finally:
            self._folder.cleanup()


def _judge(unexpected: int, total: int, kwargs: dict[str, Any]) -> tuple[bool, float]:
    percent = 100 * unexpected / total if total else 0.0
    mostly = kwargs.get("mostly")
    if mostly is None:
        return unexpected == 0, percent
    # GX's own comparison, so a share exactly at `mostly` is judged as GX judges it (1 - percent / 100 is not)
    return total == 0 or (total - unexpected) / total >= mostly, percent


def _bounds(value: float, kwargs: dict[str, Any]) -> bool:
    low, high = kwargs.get("min_value"), kwargs.get("max_value")
    return (low is None or value >= low) and (high is None or value <= high)


def _failure(first: dict[str, Any], records: list[dict[str, Any]], **figures: Any) -> dict[str, Any]:
    """The failure as a single validation reports it: the first failing batch's, with the whole data's counts."""
    base = next((r["failure"] for r in records if r["failure"]), None) or {
        "expectation": first["type"], "column": first["kwargs"].get("column"),
        "columns": first["kwargs"].get("column_list"), "observed": None, "rows": None, "unexpected_count": None,
        "unexpected_percent": None, "allowed_percent": None, "expected": _expected(first["type"], first["kwargs"]),
        "examples": [], "error": None}
    examples = list(dict.fromkeys(e for r in records if r["failure"] for e in r["failure"]["examples"]))[:5]
    return base | {"examples": examples} | figures


def merge_validations(validations: list[dict[str, Any]], rows: int, distinct: dict[str, int | None],
                      duplicates: int) -> dict[str, Any]:
    """One validation record set from per-batch ones (`batch_records`); `rows`, `distinct` (per column, None when
    capped) and `duplicates` (duplicated_rows over the compound expectation's columns) are the whole data's."""
    if len(validations) == 1:
        return validations[0]
    grouped: dict[tuple, list[dict[str, Any]]] = {}
    for validation in validations:
        for record in validation["records"]:
            grouped.setdefault(_key(record["type"], record["kwargs"]), []).append(record)
    merged = []
    for records in grouped.values():
        first = records[0]
        kind, kwargs = first["type"], first["kwargs"]
        figures: dict[str, Any] = {}
        if kind == "expect_table_row_count_to_be_between":
            ok = _bounds(rows, kwargs)
            figures = {"observed": rows}
        elif kind == "expect_column_unique_value_count_to_be_between":
            count = distinct.get(kwargs["column"])
            ok = count is not None and _bounds(count, kwargs)
            figures = {"observed": count}
        elif kind == "expect_compound_columns_to_be_unique":
            ok, percent = _judge(duplicates, rows, kwargs)
            figures = {"rows": rows, "unexpected_count": duplicates, "unexpected_percent": percent}
        elif all(r["unexpected_count"] is not None for r in records):
            unexpected = sum(r["unexpected_count"] for r in records)
            elements = sum(r["element_count"] or 0 for r in records)
            missing = sum(r["missing_count"] or 0 for r in records)
            ok, percent = _judge(unexpected, elements - missing, kwargs)
            figures = {"rows": elements, "unexpected_count": unexpected, "unexpected_percent": percent}
        else:  # column exists, type list: the same answer in every batch unless one fails
            ok = all(r["success"] for r in records)
            counted = [r["failure"] for r in records if r["failure"] and r["failure"]["unexpected_count"] is not None]
            if counted:  # a numeric column read as text: its non-numbers counted in every batch
                unexpected = sum(f["unexpected_count"] for f in counted)
                figures = {"rows": rows, "unexpected_count": unexpected, "unexpected_percent": 100 * unexpected / rows}
        merged.append(first | {"success": ok, "failure": None if ok else _failure(first, records, **figures)})
    return {"records": merged, "skipped": validations[0]["skipped"]}
