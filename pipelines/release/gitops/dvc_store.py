"""Large release files to the project's DVC remote (release.dvc_files_over_bytes), their `.dvc` records to git.

DVC writes the records itself: the base branch is checked out in a scratch git worktree (the user's checkout is
left alone), the large files are copied into the release folder there, `dvc add` records them and `dvc push` sends
them to the project's default remote. The records and DVC's .gitignore lines are what the release branch commits
instead of the files; a clone of the branch gets the bytes back with `dvc pull`.
"""
from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path

from pipelines.core.errors import PipelineError
from pipelines.release.dvc_records import IGNORE, SUFFIX
from pipelines.release.gitops.git import git

KEY = "release.dvc_files_over_bytes"


def large_files(folder: Path, names: Iterable[str], over_bytes: int | None) -> list[str]:
    """The manifest-listed files larger than `over_bytes`, sorted; none when the option is off (None)."""
    if over_bytes is None:
        return []
    return sorted(name for name in names if (folder / name).stat().st_size > over_bytes)


def dvc_command(root: Path) -> str:
    """The `dvc` command: on PATH, else the project's .venv-dvc (`make dvc`); DVC is a tool, never imported."""
    local = root / ".venv-dvc" / "bin" / "dvc"
    found = shutil.which("dvc") or (str(local) if local.is_file() else None)
    if not found:
        raise PipelineError(f"{KEY}: the dvc command is not installed (`make dvc` puts it in .venv-dvc)")
    return found


def dvc(dvc_bin: str, cwd: Path, *args: str, check: bool = True) -> str:
    """Run DVC in `cwd`; stdout. A failure is one line with DVC's own reason."""
    done = subprocess.run([dvc_bin, *args], cwd=cwd, capture_output=True, text=True, timeout=3600)
    if check and done.returncode != 0:
        reason = next((line for line in (done.stderr + done.stdout).splitlines() if line.strip()), "")
        raise PipelineError(f"dvc {args[0]} failed in {cwd}: {reason.removeprefix('ERROR: ') or done.returncode}")
    return done.stdout.strip() if done.returncode == 0 else ""


def default_remote(dvc_bin: str, root: Path) -> tuple[str, str]:
    """The project's default DVC remote (name, URL as DVC resolves it); one line when there is none."""
    name = dvc(dvc_bin, root, "remote", "default", check=False)
    if not name:
        raise PipelineError(f"{KEY}: no default DVC remote in {root / '.dvc'}; `dvc remote add -d NAME URL` and "
                            "commit .dvc/config (docs/deployment.md)")
    return name, dvc(dvc_bin, root, "config", f"remote.{name}.url")


def push_large(root: Path, repo: Path, base: str, base_branch: str, project_rel: str, release_rel: str,
               folder: Path, names: list[str], scratch_dir: Path) -> dict[str, Path]:
    """Push `names` (files of `folder`) to the default DVC remote; return what the branch commits instead of them:
    repo path -> local file, for each `.dvc` record and DVC's .gitignore, as DVC wrote them."""
    if not (root / ".dvc").is_dir():
        raise PipelineError(f"{KEY}: {root} is not a DVC project (no .dvc/); `dvc init`, then `dvc remote add -d "
                            "NAME URL` and commit .dvc/config (docs/deployment.md)")
    dvc_bin = dvc_command(root)
    remote, url = default_remote(dvc_bin, root)
    worktree = scratch_dir / "worktree"
    git(repo, "worktree", "add", "--quiet", "--detach", str(worktree), base)
    try:
        project = worktree / project_rel
        committed = dvc(dvc_bin, project, "remote", "default", "--project", check=False)
        if committed != remote:
            raise PipelineError(f"{KEY}: .dvc/config on {base_branch} names no default remote {remote!r}, so a clone "
                                "of the release branch could not `dvc pull`; commit .dvc/config first")
        records = [f"{release_rel}/{name}{SUFFIX}" for name in names]
        ignored = git(project, "check-ignore", "--no-index", *records, check=False).splitlines()
        if ignored:  # DVC reads no git-ignored .dvc file: a clone's `dvc pull` would skip the release's records
            rule = git(project, "check-ignore", "-v", "--no-index", ignored[0], check=False).split("\t")[0]
            raise PipelineError(f"{KEY}: {ignored[0]} would be git-ignored on {base_branch} ({rule}), and DVC "
                                "reads no git-ignored .dvc file; un-ignore the records in .gitignore "
                                "(docs/deployment.md)")
        local = root / ".dvc" / "config.local"  # credentials a remote may need stay out of git
        if local.is_file():
            shutil.copy2(local, project / ".dvc" / "config.local")
        # the URL as resolved in the project: a relative local path would otherwise resolve inside the worktree
        dvc(dvc_bin, project, "remote", "modify", "--local", remote, "url", url)
        release = project / release_rel
        for name in names:
            (release / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(folder / name, release / name)
        dvc(dvc_bin, project, "add", *(f"{release_rel}/{name}" for name in names))
        dvc(dvc_bin, project, "push", "-r", remote, *records)
        kept = scratch_dir / "records"
        written: dict[str, Path] = {}
        for rel in sorted({*(f"{name}{SUFFIX}" for name in names),
                           *(str(Path(name).parent / IGNORE) for name in names)}):
            if not (release / rel).is_file():
                continue  # DVC writes no .gitignore line for a file .gitignore already ignores
            copy = kept / rel
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(release / rel, copy)
            written[f"{project_rel}{release_rel}/{rel}"] = copy
        return written
    finally:
        git(repo, "worktree", "remove", "--force", str(worktree), check=False)
