"""Quiet by default: only the pipeline's progress lines and summary reach the terminal (`--verbose` shows all)."""
from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

DAGSTER_YAML = """\
# Written by mobile-mlops: no usage telemetry, no first-run dialog in the UI, and one queued run at a time
# (UI, schedule and sensor runs of this project write the same files; `mobile-mlops run` takes a file lock).
telemetry:
  enabled: false
nux:
  enabled: false
concurrency:
  runs:
    max_concurrent_runs: 1
# A run whose launch never started is failed after start_timeout_seconds; one running longer than
# max_runtime_seconds is failed too. A run whose process died is failed at the next start or tick
# (assets/stale_runs.py): the local run launcher cannot report a worker's health to the monitor.
run_monitoring:
  enabled: true
  start_timeout_seconds: 180
  max_runtime_seconds: 86400
  poll_interval_seconds: 60
# Every run's events in one SQLite file ($DAGSTER_HOME/event_log.db), not a new database per run: a run's
# ~100 event writes cost a third as much (docs/benchmarks.md). PostgreSQL replaces it in production.
event_log_storage:
  module: dagster._core.storage.event_log
  class: ConsolidatedSqliteEventLogStorage
  config:
    base_dir:
      env: DAGSTER_HOME
"""


def quiet_libraries() -> None:
    """TensorFlow/absl logging, coremltools progress bars and library warnings off, before they are imported."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's C++ log lines
    os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TQDM_DISABLE", "1")  # coremltools' conversion progress bars
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    warnings.filterwarnings("ignore")
    for name in ("coremltools", "absl", "tensorflow", "mlflow", "alembic", "dagster", "h5py", "numexpr"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _on_fd2(stream) -> bool:
    try:
        return stream.fileno() == 2
    except (AttributeError, OSError, ValueError):
        return False


@dataclass
class LibraryLog:
    path: Path
    keep: bool = False  # set by the caller: keep the file (a failed command)

    def note(self) -> str:
        """What a failure line adds when libraries wrote something: where to read it."""
        try:
            written = self.path.stat().st_size > 0
        except OSError:
            return ""
        return f" (library log: {self.path})" if written else ""


LOG_FOLDER = Path(".mobile-mlops") / "logs"  # in the project, git-ignored: every failed command's library log
KEEP_LOGS = 20  # the newest kept; older ones are removed when a command keeps a new one


def rotate(folder: Path, keep: int = KEEP_LOGS) -> None:
    """Keep the `keep` newest logs of `folder`."""
    logs = sorted(folder.glob("*.log"), key=lambda p: (p.stat().st_mtime, p.name), reverse=True)
    for old in logs[keep:]:
        old.unlink(missing_ok=True)


@contextlib.contextmanager
def library_output_to_log(project: Path | None = None) -> Iterator[LibraryLog]:
    """Send file descriptor 2 to a log file while Python's sys.stderr stays on the terminal.

    TensorFlow, LiteRT and the MLIR quantizer log from C++ straight to fd 2 (absl's pre-init warning, oneDNN
    notices, `fully_quantize: ...`), past every Python switch; this keeps them off the terminal. The log is
    deleted unless the caller sets `keep` (a failed command) or the command raises.
    """
    folder = (project or Path.cwd()) / LOG_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    handle, name = tempfile.mkstemp(prefix=f"{stamp}-{os.getpid()}-", suffix=".log", dir=folder)
    log = LibraryLog(Path(name))
    sys.stderr.flush()
    saved = os.dup(2)
    terminal = os.fdopen(os.dup(saved), "w", buffering=1, encoding="utf-8", errors="replace")
    os.dup2(handle, 2)
    os.close(handle)
    previous = sys.stderr
    if _on_fd2(previous):  # else sys.stderr is already captured in memory (pytest's capsys): leave it
        sys.stderr = terminal
    succeeded = False
    try:
        yield log
        succeeded = True
    finally:
        terminal.flush()
        os.dup2(saved, 2)
        os.close(saved)
        sys.stderr = previous
        terminal.close()
        empty = not log.path.is_file() or log.path.stat().st_size == 0
        if (succeeded and not log.keep) or empty:
            log.path.unlink(missing_ok=True)
        else:
            rotate(folder)


def dagster_home(home: Path) -> Path:
    """A Dagster home with telemetry and the community dialog off, run monitoring on (a user's dagster.yaml is left
    alone)."""
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    current = config.read_text() if config.is_file() else ""
    if not current.strip() or (current.startswith(DAGSTER_YAML.splitlines()[0]) and current != DAGSTER_YAML):
        config.write_text(DAGSTER_YAML)  # ours from an earlier version: brought up to date; a user's is kept
    return home


if __name__ == "__main__":  # `python -m cli.quiet DAGSTER_HOME`: the Makefile's `make ui` and `make run` use it
    import sys

    dagster_home(Path(sys.argv[1]))
