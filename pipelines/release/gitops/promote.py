"""Promotion (CI, after a release PR merges) and rollback (a commit restoring the previous production.yaml)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipelines.core.config import Settings
from pipelines.core.errors import PipelineError
from pipelines.core.git_state import git_state
from pipelines.core.io import atomic_path
from pipelines.core.paths import PRODUCTION_FILE
from pipelines.release.dvc_records import without_records
from pipelines.release.folder import MANIFEST, load_manifest, verify_release
from pipelines.release.gitops.deploy import check_artifacts, desired_state, render, with_history
from pipelines.release.gitops.git import (
    commit_files,
    current_branch,
    git,
    git_bytes,
    identity_env,
    repo_root,
    rev,
    scratch,
    show,
)
from pipelines.release.gitops.propose import project_prefix
from pipelines.release.gitops.providers import MARKER, PullRequest, provider_for
from pipelines.release.signing import fingerprint, signature_hint, trusted_keys, verify_folder
from pipelines.release_format.deployment import (
    Deployment,
    Previous,
    earlier,
    model_releases,
    parse,
    read_production,
    version_key,
)
from pipelines.training.tracking import PRODUCTION_ALIAS, set_alias


@dataclass
class Promotion:
    model: str
    version: str
    previous: str | None  # the version the alias pointed at before (None: first promotion or dry run)


def read_deployment(settings: Settings) -> Deployment:
    deployed = read_production(settings)
    if deployed is None:
        raise PipelineError(f"{settings.resolve(PRODUCTION_FILE)}: not found; nothing is deployed yet")
    return deployed


def verify_deployment(settings: Settings, deployment: Deployment) -> Path:
    """The release production.yaml names: hashes and signature (committed keys only), pins and identity."""
    folder = settings.resolve(deployment.model.release)
    if not folder.is_dir():
        raise PipelineError(f"{PRODUCTION_FILE}: model.release {deployment.model.release} is not a folder")
    with without_records(folder) as view:  # files kept in the DVC remote must be fetched (dvc pull) and match
        manifest = verify_release(view, trusted_keys(settings, include_local=False))
        lineage, model = manifest.lineage, deployment.model
        for key, pinned, actual in (("name", model.name, lineage.model_name),
                                    ("version", model.version, lineage.model_version),
                                    ("mlflow_run_id", model.mlflow_run_id, lineage.mlflow_run_id),
                                    ("signer", model.signer, signature_hint(folder))):
            if pinned != actual:
                raise PipelineError(f"{PRODUCTION_FILE}: model.{key} is {pinned!r} but the release has {actual!r}")
        check_artifacts(deployment, view, PRODUCTION_FILE)
    return folder


def promote(settings: Settings, dry_run: bool = False) -> Promotion:
    """Verify the release deploy/production.yaml names, then point the MLflow alias `production` at it."""
    deployment = read_deployment(settings)
    verify_deployment(settings, deployment)
    if dry_run:
        return Promotion(deployment.model.name, deployment.model.version, None)
    tags = {"deployed_commit": str(git_state(settings.root)["git_commit"]), "deploy_file": PRODUCTION_FILE}
    previous = set_alias(settings, deployment.model.name, PRODUCTION_ALIAS, deployment.model.version, tags)
    return Promotion(deployment.model.name, deployment.model.version, previous)


@dataclass
class Rollback:
    model: str
    from_version: str
    to_version: str
    commit: str
    branch: str
    pull_request: PullRequest | None  # set when proposed as a pull request instead of committed


def _state_of(repo: Path, path: str, version: str) -> bytes | None:
    """production.yaml as it was the last time `version` was production on this branch (None: never)."""
    for commit in git(repo, "log", "--format=%H", "HEAD", "--", path).split():
        raw = show(repo, commit, path)
        if raw and parse(raw, f"{path} at {commit[:12]}").model.version == version:
            return raw
    return None


def _fresh_state(settings: Settings, current: Deployment, version: str) -> Deployment:
    """A production.yaml for a published release that was never production here (the whole fleet: last stage)."""
    config = settings.params.release
    for folder in reversed(model_releases(settings, config, MANIFEST)):
        if load_manifest(folder).lineage.model_version != version:
            continue
        manifest = verify_release(folder)
        key = verify_folder(folder, trusted_keys(settings, include_local=False))
        release = folder.resolve().relative_to(settings.root.resolve()).as_posix()
        state = desired_state(manifest, folder, release, current.rollout, fingerprint(key), None)
        return state.model_copy(update={"stage": current.rollout.stages[-1].name})
    raise PipelineError(f"{PRODUCTION_FILE}: version {version} was never production on this branch and no "
                        f"published release under {config.directory}/{config.model_name} holds it")


def _history_after(current: Deployment, target: str) -> list[Previous]:
    """What production remembers once `target` is restored: the releases older than it."""
    history = earlier(current)
    versions = [p.version for p in history]
    if target in versions:
        return history[versions.index(target) + 1:]
    seen = [Previous(version=current.model.version, release=current.model.release), *history]
    key = version_key(Path(target))
    return [p for p in seen if version_key(Path(p.version)) < key]


def rollback(settings: Settings, to: str | None = None, as_pull_request: bool = False, note: str = "") -> Rollback:
    """Restore the previous production.yaml in a commit (or a PR) and move the alias back.

    Committed directly, the current branch gets the commit and the alias moves now (the emergency
    path). As a pull request, the alias moves when CI runs `promote` after the merge.
    """
    repo = repo_root(settings.root)
    path = project_prefix(settings, repo) + PRODUCTION_FILE
    current = read_deployment(settings)
    if git(repo, "status", "--porcelain", "--", path):
        raise PipelineError(f"{path}: has uncommitted changes; commit or discard them first")
    history = earlier(current)
    target = to or (history[0].version if history else None)
    if not target:
        raise PipelineError(f"{PRODUCTION_FILE}: no previous release recorded; pass --to VERSION")
    if target == current.model.version:
        raise PipelineError(f"{PRODUCTION_FILE}: {current.model.name} v{target} is already production")
    old = _state_of(repo, path, target)
    restored = parse(old, f"{path} (v{target})") if old else _fresh_state(settings, current, target)
    restored = with_history(restored, _history_after(current, target))
    verify_deployment(settings, restored)
    raw = render(restored).encode()
    name = current.model.name
    message = (f"Roll back {name} to v{target} (from v{current.model.version})\n\n"
               + (f"Restores {PRODUCTION_FILE} as it was when v{target} was production.\n" if old else
                  f"Points {PRODUCTION_FILE} at release {restored.model.release} (never production here) for the "
                  f"whole fleet.\n")
               + (f"\n{note.rstrip()}\n" if note else ""))
    branch = current_branch(repo) or "HEAD"
    if as_pull_request:
        branch = f"rollback/{name}-{current.model.version}-to-{target}"
        with scratch("rollback") as tmp:
            (Path(tmp) / "production.yaml").write_bytes(raw)
            commit, _ = commit_files(repo, branch, rev(repo, "HEAD") or "HEAD", {path: Path(tmp) / "production.yaml"},
                                     message)
        config = settings.params.release
        pull = provider_for(config.provider, config.github, config.remote).publish(
            repo, branch, current_branch(repo) or "main", message.splitlines()[0], message, f"{MARKER}\n{message}")
        return Rollback(name, current.model.version, target, commit, branch, pull)
    with atomic_path(settings.resolve(PRODUCTION_FILE)) as tmp_file:
        tmp_file.write_bytes(raw)
    git(repo, "commit", "-q", "--only", "-m", message, "--", path, env=identity_env(repo))
    commit = (git_bytes(repo, "rev-parse", "HEAD") or b"").decode().strip()
    tags = {"deployed_commit": commit, "rolled_back_from": current.model.version}
    set_alias(settings, name, PRODUCTION_ALIAS, target, tags)
    return Rollback(name, current.model.version, target, commit, branch, None)
