"""What a report reads about one release (manifest and JSON reports), from a folder or from git."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines.core.hashing import tree_files
from pipelines.release.folder import MANIFEST
from pipelines.release.gitops.git import list_files, show


@dataclass
class ReleaseView:
    """One release as the report sees it; `reports` maps each top-level *.json file to its content."""

    path: str  # the folder relative to the repository, e.g. releases/adult-income/8
    manifest: dict[str, Any]
    reports: dict[str, Any]
    sizes: dict[str, int] = field(default_factory=dict)  # file -> bytes

    @property
    def version(self) -> str:
        return str(self.manifest.get("lineage", {}).get("model_version", "?"))

    @property
    def metrics(self) -> dict[str, Any]:
        return self.manifest.get("metrics", {}) or {}


def _parse(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None  # a report we cannot read is rendered as not available, not a crash


def view_from_folder(folder: Path, path: str) -> ReleaseView:
    """Read a release folder on disk."""
    names = [p.as_posix() for p in tree_files(folder)]
    reports = {n: _parse((folder / n).read_bytes()) for n in names if n.endswith(".json") and "/" not in n}
    manifest = reports.pop(MANIFEST, None) or {}
    return ReleaseView(path, manifest, reports, {n: (folder / n).stat().st_size for n in names})


def view_from_git(repo: Path, revision: str, path: str) -> ReleaseView | None:
    """Read a release folder as committed at `revision`; None when it is not there."""
    names = [n.removeprefix(f"{path}/") for n in list_files(repo, revision, path)]
    if MANIFEST not in names:
        return None
    reports = {n: _parse(show(repo, revision, f"{path}/{n}") or b"") for n in names
               if n.endswith(".json") and "/" not in n}
    manifest = reports.pop(MANIFEST, None) or {}
    return ReleaseView(path, manifest, reports)
