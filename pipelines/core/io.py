"""Atomic writes: a failed step never leaves a half-written artifact."""
from __future__ import annotations

import contextlib
import csv
import errno
import io
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pipelines.core.errors import PipelineError
from pipelines.core.safe_text import csv_cell

STORAGE_ERRORS = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is used up",
                  errno.EROFS: "the file system is read-only", errno.EACCES: "permission denied"}


def storage_problem(exc: BaseException) -> str | None:
    """What a failed write says in one line, when the cause is the storage (full, read-only, no permission)."""
    if isinstance(exc, shutil.Error):  # copytree collects every failed file: one line for all of them
        failures = exc.args[0] if exc.args and isinstance(exc.args[0], list) else []
        reasons = {(re.search(r"\] ([^:]+)", str(reason)) or re.search(r"(.*)", str(reason))).group(1)  # type: ignore[union-attr]
                   for *_, reason in failures}
        return f"{len(failures)} file(s) could not be copied ({', '.join(sorted(reasons))[:80]})"
    if isinstance(exc, OSError) and exc.errno in STORAGE_ERRORS:
        return STORAGE_ERRORS[exc.errno]
    return None


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temp path beside `target`; rename it into place only on success. A write that fails for lack of
    space or permission is one line naming the target, and leaves nothing behind."""
    tmp: Path | None = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-{os.getpid()}-", dir=target.parent))  # lock.TEMP_NAME
        yield tmp / target.name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
        os.replace(tmp / target.name, target)
    except (OSError, shutil.Error) as exc:
        problem = storage_problem(exc)
        if problem is None:
            raise
        raise PipelineError(f"{target}: cannot write it: {problem}") from exc
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def write_private(path: Path, content: bytes) -> None:
    """Write a secret (a private key, a keyset) readable by its owner only from the first byte, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json(target: Path, payload: Any) -> None:
    """Write JSON atomically with stable formatting (diff-friendly, DVC metrics-friendly)."""
    with atomic_path(target) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())


def write_csv(target: Path, rows: list[dict[str, Any]]) -> None:
    """Rows as CSV, atomically (DVC plots files); a text cell never starts a spreadsheet formula."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else [], lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: csv_cell(v) if isinstance(v, str) else v for k, v in row.items()} for row in rows)
    with atomic_path(target) as tmp:
        tmp.write_text(buffer.getvalue())
