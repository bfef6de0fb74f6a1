"""Plain git through subprocess, and commits to other branches that leave the user's checkout alone.

`commit_files` builds the commit with a temporary index (read-tree, hash-object, update-index,
write-tree, commit-tree, update-ref), so the working tree, the real index and HEAD never change.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from pipelines.core.errors import PipelineError

ZERO = "0" * 40
FALLBACK_NAME, FALLBACK_EMAIL = "mobile-mlops", "mobile-mlops@localhost"


SCRATCH = re.compile(r"mobile-mlops-([a-z]+)-(\d+)-")  # mobile-mlops-<kind>-<pid>-<random>


def scratch(kind: str) -> tempfile.TemporaryDirectory:
    """A temp folder named with this process's pid, so a later command can tell it is left over."""
    return tempfile.TemporaryDirectory(prefix=f"mobile-mlops-{kind}-{os.getpid()}-")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_scratch(base: Path | None = None) -> list[Path]:
    """Remove this user's GitOps temp folders whose process is gone (a killed propose, promote or rollback)."""
    removed = []
    for path in Path(base or tempfile.gettempdir()).glob("mobile-mlops-*"):
        match = SCRATCH.match(path.name)
        if match and path.is_dir() and path.stat().st_uid == os.getuid() and not _alive(int(match.group(2))):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def git(repo: Path, *args: str, stdin: bytes | None = None, env: dict[str, str] | None = None,
        check: bool = True) -> str:
    """Run git in `repo`; stdout as text. A failure is a one-line PipelineError with git's own reason."""
    done = subprocess.run(["git", *args], cwd=repo, input=stdin, capture_output=True, timeout=300,
                          env={**os.environ, "GIT_TERMINAL_PROMPT": "0", **(env or {})})
    if check and done.returncode != 0:
        reason = next((line for line in done.stderr.decode(errors="replace").splitlines() if line.strip()), "")
        raise PipelineError(f"git {args[0]} failed in {repo}: {reason or f'exit {done.returncode}'}")
    return done.stdout.decode(errors="replace").strip()


def git_bytes(repo: Path, *args: str, env: dict[str, str] | None = None) -> bytes | None:
    """Raw stdout of a git command, or None when it fails (e.g. a path absent at a revision)."""
    done = subprocess.run(["git", *args], cwd=repo, capture_output=True, timeout=300, env={**os.environ, **(env or {})})
    return done.stdout if done.returncode == 0 else None


def repo_root(path: Path) -> Path:
    """The top folder of the git repository holding `path`."""
    top = git_bytes(Path(path), "rev-parse", "--show-toplevel")
    if not top:
        raise PipelineError(f"{path}: not inside a git repository")
    return Path(top.decode().strip())


def rev(repo: Path, ref: str) -> str | None:
    """The commit a ref names, or None."""
    out = git_bytes(repo, "rev-parse", "--verify", "-q", f"{ref}^{{commit}}")
    return out.decode().strip() if out else None


def current_branch(repo: Path) -> str | None:
    out = git_bytes(repo, "symbolic-ref", "--short", "-q", "HEAD")
    return out.decode().strip() if out else None


def show(repo: Path, revision: str, path: str) -> bytes | None:
    """A file's exact bytes at a revision (no filters), or None when absent."""
    return git_bytes(repo, "cat-file", "blob", f"{revision}:{path}")


def list_files(repo: Path, revision: str, folder: str) -> list[str]:
    """Every file path below `folder` at a revision."""
    out = git_bytes(repo, "ls-tree", "-r", "--name-only", "-z", revision, "--", folder)
    return [p for p in (out or b"").decode().split("\0") if p]


def identity_env(repo: Path) -> dict[str, str]:
    """Author/committer for commits made by the tool: the user's git identity, else a fallback."""
    if git_bytes(repo, "config", "user.email") and git_bytes(repo, "config", "user.name"):
        return {}
    return {"GIT_AUTHOR_NAME": FALLBACK_NAME, "GIT_AUTHOR_EMAIL": FALLBACK_EMAIL,
            "GIT_COMMITTER_NAME": FALLBACK_NAME, "GIT_COMMITTER_EMAIL": FALLBACK_EMAIL}


def commit_files(repo: Path, branch: str, parent: str, files: dict[str, Path], message: str,
                 replace: tuple[str, ...] = ()) -> tuple[str, bool]:
    """Commit `files` (repo path -> local file) on top of `parent` as refs/heads/`branch`.

    Paths below each `replace` folder are dropped first, so the folder ends up exactly as given.
    Returns (commit, changed); when the tree would not change, no commit is made.
    """
    with scratch("index") as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        git(repo, "read-tree", parent, env=env)
        for folder in replace:
            stale = git_bytes(repo, "ls-files", "-z", "--", folder, env=env)
            if stale:
                git(repo, "update-index", "--force-remove", "-z", "--stdin", stdin=stale, env=env)
        names = sorted(files)
        blobs = git(repo, "hash-object", "-w", "--no-filters", "--stdin-paths",
                    stdin="".join(f"{files[n]}\n" for n in names).encode()).split() if names else []
        entries = "".join(f"100644 {blob}\t{name}\n" for name, blob in zip(names, blobs, strict=True))
        git(repo, "update-index", "--index-info", stdin=entries.encode(), env=env)
        tree = git(repo, "write-tree", env=env)
    if tree == git(repo, "rev-parse", f"{parent}^{{tree}}"):
        return parent, False
    commit = git(repo, "commit-tree", tree, "-p", parent, "-F", "-", stdin=message.encode(), env=identity_env(repo))
    current = rev(repo, f"refs/heads/{branch}")
    git(repo, "update-ref", "-m", "mobile-mlops", f"refs/heads/{branch}", commit, current or ZERO)
    return commit, True

