"""Local SQLite stores (the MLflow store, the Dagster home): a corrupt one is one line naming it and the fix."""
from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
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


@contextlib.contextmanager
def quick_sqlite(folder: Path) -> Iterator[None]:
    """While a run writes to the SQLite stores under `folder` (the Dagster home): write-ahead logging, commits
    without a disk flush each (still safe from corruption; a power cut may lose the last events), and one
    connection held open per database.

    Dagster opens and closes a connection for every event it stores (~100 a run), and each commit flushed the
    disk while each close of the only connection checkpointed the log: that was most of what Dagster added
    to a run. Other databases (MLflow's) are left alone."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    root, keepers = str(folder.resolve()) + os.sep, {}

    def tune(connection, _record) -> None:
        if not isinstance(connection, sqlite3.Connection):
            return
        path = next((row[2] for row in connection.execute("PRAGMA database_list") if row[1] == "main"), "")
        if not path.startswith(root):
            return
        if path not in keepers:
            connection.execute("PRAGMA journal_mode=WAL")
            keepers[path] = sqlite3.connect(path, check_same_thread=False)
            keepers[path].execute("SELECT count(*) FROM sqlite_master").fetchall()  # joins the log: it stays
        connection.execute("PRAGMA synchronous=NORMAL")

    event.listen(Engine, "connect", tune)
    try:
        yield
    finally:
        event.remove(Engine, "connect", tune)
        for keeper in keepers.values():
            keeper.close()
