"""Where a model came from: data hashes, code commit, params hash."""
from __future__ import annotations

import subprocess
from collections.abc import Iterable
from pathlib import Path


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def git_state(root: Path, outputs: Iterable[str] = ()) -> dict[str, object]:
    """HEAD commit of the code and whether tracked files differ from it.

    `outputs` (paths relative to root) are what the pipeline itself writes: reports with timings, metrics,
    dvc.lock. A change there is a run, not a change to what produced the model, so it does not count as dirty.
    """
    commit = _git(root, "rev-parse", "HEAD")
    excluded = [f":(exclude){path}" for path in outputs]
    dirty = _git(root, "status", "--porcelain", "--untracked-files=no", "--", ".", *excluded)
    return {"git_commit": commit or "unknown", "git_dirty": bool(dirty) if dirty is not None else None}
