"""Local SQLite stores (the MLflow store, the Dagster home): a corrupt one is one line naming it and the fix."""
from __future__ import annotations

import sqlite3
from pathlib import Path

from pipelines.core.errors import PipelineError


def check_sqlite(path: Path, what: str) -> None:
    """Raise naming `path` when it exists but is not a readable SQLite database (quick_check fails)."""
    if not path.is_file() or path.stat().st_size == 0:
        return
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            verdict = db.execute("PRAGMA quick_check").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        verdict = str(exc)
    if verdict != "ok":
        raise PipelineError(f"{path}: the {what} is corrupt ({str(verdict)[:80]}); move it aside "
                            f"(mv {path.name} {path.name}.corrupt) and run again")
