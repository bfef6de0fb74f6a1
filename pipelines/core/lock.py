"""One run at a time in a project: an advisory file lock (released by the OS when a run dies), and the cleanup
of temp folders a killed run left behind, which is safe while the lock is held."""
from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from pipelines.core.errors import PipelineError

LOCK_FILE = ".mobile-mlops.lock"


_held: set[Path] = set()  # projects whose lock this process holds (a step inside `run` does not take it again)
TEMP_NAME = re.compile(r"\.(?P<name>.+)\.tmp-(?P<pid>\d+)(?:-[A-Za-z0-9_]+)?")  # the project's own temp folders


@contextlib.contextmanager
def project_lock(root: Path, wait: bool = False, say=print) -> Iterator[None]:
    """Hold the project's lock; another holder makes this wait (`wait`) or stop with one line naming it. The OS
    drops the lock of a process that dies, so a stale lock never blocks; a process holding it already goes on."""
    key = Path(root).resolve()
    if key in _held:
        yield
        return
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
        _held.add(key)
        try:
            yield
        finally:
            _held.discard(key)
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)


def alive(pid: int) -> bool:
    """Whether a process with this id exists (one we may not signal exists too)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return pid < 2**22 if isinstance(pid, int) else False  # another user's process; an absurd id is none
    return True


def process_started_at(pid: int) -> float | None:
    """When a process started (Unix time, from /proc); None where /proc does not tell."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = next(float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime "))
        ticks = int(stat.rsplit(")", 1)[1].split()[19])  # field 22, after the command name in parentheses
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def leftover_temp_folders(folders: Iterable[Path], within: Iterable[Path] = ()) -> list[Path]:
    """Temp folders a killed run left beside its outputs: named `.NAME.tmp-PID[-random]` (atomic writes, a
    release being published) with PID gone. Nothing else, no symbolic link, nothing outside `within` (when
    given) is ever listed."""
    roots = [Path(r).resolve() for r in within]
    found: set[Path] = set()
    for folder in folders:
        if folder.is_symlink() or not folder.is_dir():
            continue
        real = folder.resolve()
        if roots and not any(real.is_relative_to(r) for r in roots):
            continue
        for path in real.iterdir():
            match = TEMP_NAME.fullmatch(path.name)
            if match and path.is_dir() and not path.is_symlink() and not alive(int(match["pid"])):
                found.add(path)
    return sorted(found)


def remove_leftovers(folders: Iterable[Path], within: Iterable[Path] = ()) -> list[Path]:
    """Remove what leftover_temp_folders finds; call only while holding the project lock."""
    removed = leftover_temp_folders(folders, within)
    for path in removed:
        shutil.rmtree(path, ignore_errors=True)
    return removed
