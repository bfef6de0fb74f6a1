"""quick_sqlite: write-ahead logging and unflushed commits for the Dagster home's databases only, while a run lasts."""
from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from pipelines.core.stores import quick_sqlite


def pragmas(path: Path) -> tuple[str, int]:
    engine = create_engine(f"sqlite:///{path}", poolclass=NullPool)  # as Dagster opens its stores
    with engine.connect() as connection:
        connection.execute(text("CREATE TABLE IF NOT EXISTS events (x)"))
        connection.execute(text("INSERT INTO events VALUES (1)"))
        connection.commit()
        mode = connection.execute(text("PRAGMA journal_mode")).scalar()
        synchronous = connection.execute(text("PRAGMA synchronous")).scalar()
    engine.dispose()
    return mode, synchronous


def test_only_the_home_databases_are_tuned_and_only_during_the_run(tmp_path: Path):
    home, other = tmp_path / "home", tmp_path / "mlflow"
    home.mkdir()
    other.mkdir()
    with quick_sqlite(home):
        assert pragmas(home / "event_log.db") == ("wal", 1)  # NORMAL
        assert pragmas(home / "event_log.db") == ("wal", 1)
        assert pragmas(other / "mlflow.db") == ("delete", 2)  # FULL: untouched
        assert (home / "event_log.db-wal").exists()  # the held connection keeps the log between writes
    assert pragmas(other / "mlflow.db") == ("delete", 2)
    assert pragmas(home / "event_log.db")[1] == 2  # the listener is gone; WAL stays the file's mode
    with sqlite3.connect(home / "event_log.db") as db:
        assert db.execute("SELECT count(*) FROM events").fetchone()[0] == 3  # every write is there
