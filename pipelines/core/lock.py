"""One run at a time in a project: an advisory file lock (released by the OS when a run dies), and the cleanup
of temp folders a killed run left behind, which is safe while the lock is held."""
from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from pipelines.core.errors import PipelineError

LOCK_FILE = ".mobile-mlops.lock"


@contextlib.contextmanager
def project_lock(root: Path, wait: bool = False, say=print) -> Iterator[None]:
    """Hold the project's lock; another holder makes this wait (`wait`) or stop with one line naming it."""
    path = root / LOCK_FILE
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            if not wait:
                raise PipelineError(f"{path}: the project is busy: {holder} is running; "
                                    "wait for it, or pass --wait") from None
            say(f"waiting for the project lock ({holder})")
            fcntl.flock(handle, fcntl.LOCK_EX)
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} since {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)


def leftover_temp_folders(folders: Iterable[Path]) -> list[Path]:
    """Temp folders a killed run left beside its outputs (`.NAME.random` of atomic writes, `.N.tmp-PID` of a
    release being published)."""
    found: set[Path] = set()
    for folder in folders:
        if folder.is_dir():
            found |= {p for p in folder.glob(".*") if p.is_dir() and (".tmp-" in p.name or p.name.count(".") >= 2)
                      and p.name != ".dagster"}
    return sorted(found)


def remove_leftovers(folders: Iterable[Path]) -> list[Path]:
    """Remove what leftover_temp_folders finds; call only while holding the project lock."""
    removed = leftover_temp_folders(folders)
    for path in removed:
        shutil.rmtree(path, ignore_errors=True)
    return removed
