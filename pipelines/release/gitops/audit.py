"""The committed-release audit CI runs (`mobile-mlops lineage check`): every committed release verifies
(hashes, signature) and its data md5 matches dvc.lock at the commit it was built from.

Each check returns a list of problems, one line each, naming the mismatch; empty means it holds.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from pipelines.core.errors import PipelineError
from pipelines.core.paths import PRODUCTION_FILE
from pipelines.release.dvc_records import read_records, without_records
from pipelines.release.folder import MANIFEST, verify_release
from pipelines.release.gitops.deploy import check_artifacts
from pipelines.release.gitops.git import list_files, rev, scratch, show
from pipelines.release_format.deployment import parse


def lock_md5(lock_text: bytes | str, path: str) -> str | None:
    """The md5 dvc.lock records for `path` in any stage's deps or outs."""
    lock = yaml.safe_load(lock_text) or {}
    for stage in (lock.get("stages") or {}).values():
        for entry in (stage.get("deps") or []) + (stage.get("outs") or []):
            if isinstance(entry, dict) and entry.get("path") == path:
                return entry.get("md5")
    return None


def committed_releases(repo: Path, revision: str, directory: str) -> list[str]:
    """Release folders (those with a manifest.json) committed under `directory`."""
    return sorted(p.rsplit("/", 1)[0] for p in list_files(repo, revision, directory) if p.endswith(f"/{MANIFEST}"))


def _export(repo: Path, revision: str, folder: str, target: Path) -> None:
    for path in list_files(repo, revision, folder):
        out = target / path.removeprefix(f"{folder}/")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(show(repo, revision, path) or b"")


def check_release(repo: Path, revision: str, folder: str, keys_folder: str, lock_path: str) -> list[str]:
    """One committed release: hashes and signature as committed, data md5 as dvc.lock had it at build time."""
    with scratch("lineage") as tmp:
        release, keys = Path(tmp) / "release", Path(tmp) / "keys"
        _export(repo, revision, folder, release)
        _export(repo, revision, keys_folder, keys)
        for name in read_records(release):  # a file kept in the DVC remote: as `dvc pull` fetched it here, if it did
            if (repo / folder / name).is_file():
                shutil.copy2(repo / folder / name, release / name)
        try:
            with without_records(release) as view:  # each such file must match its record, then as always
                manifest = verify_release(view, sorted(keys.glob("*.pub")))
        except PipelineError as exc:
            return [f"{folder}: {str(exc).replace(str(release), folder)}"]
    built_from = manifest.lineage.git_commit
    if not rev(repo, built_from):
        return [f"{folder}: lineage.git_commit {built_from[:12]} is not in this repository"]
    lock = show(repo, built_from, lock_path)
    if lock is None:
        return [f"{folder}: no {lock_path} at commit {built_from[:12]}"]
    problems = []
    for path, md5 in sorted(manifest.lineage.data_md5.items()):
        recorded = lock_md5(lock, path)
        if recorded is None:  # an accepted daily file: DVC tracks it by its own .dvc record, not in dvc.lock
            record = show(repo, built_from, lock_path.removesuffix("dvc.lock") + path + ".dvc")
            recorded = ((yaml.safe_load(record) or {}).get("outs") or [{}])[0].get("md5") if record else None
        if recorded != md5:
            problems.append(f"{folder}: data {path} md5 {md5} but {lock_path} at {built_from[:12]} records {recorded}")
    return problems


def check_committed(repo: Path, revision: str, prefix: str, directory: str, keys_folder: str) -> list[str]:
    """Every committed release, and the production.yaml pins against the release they name."""
    releases = committed_releases(repo, revision, prefix + directory)
    problems = [p for folder in releases for p in check_release(repo, revision, folder, prefix + keys_folder,
                                                                prefix + "dvc.lock")]
    raw = show(repo, revision, prefix + PRODUCTION_FILE)
    if raw is not None:
        try:
            deployment = parse(raw, prefix + PRODUCTION_FILE)
            folder = prefix + deployment.model.release
            if folder not in releases:
                return problems + [f"{PRODUCTION_FILE}: model.release {deployment.model.release} is not committed"]
            with scratch("lineage") as tmp:
                _export(repo, revision, folder, Path(tmp))
                check_artifacts(deployment, Path(tmp), PRODUCTION_FILE)
        except PipelineError as exc:
            problems.append(str(exc))
    return problems
