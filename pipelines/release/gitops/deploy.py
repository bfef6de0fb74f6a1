"""Writing deploy/production.yaml (the desired production state; merging a change to it is the deployment)
and checking a release folder against it."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from pipelines.core.config import RolloutConfig
from pipelines.core.errors import PipelineError
from pipelines.core.hashing import file_digest
from pipelines.release.attest import KINDS as ATTESTATIONS
from pipelines.release.folder import MANIFEST, Manifest
from pipelines.release.signing import SIGNATURE
from pipelines.release_format.deployment import Deployment, ModelRef, Previous, earlier

HEADER = """\
# Desired production state (GitOps): changed only by release pull requests and rollbacks.
# After a merge, CI runs `mobile-mlops promote`: it verifies the release below and points the
# MLflow alias `production` at it. The app-distribution controller rolls it out stage by stage and
# halts (then rolls back) when a guardrail is breached. Written by `mobile-mlops release propose`.
"""
HISTORY_DEPTH = 10  # earlier releases production.yaml remembers: rollbacks in a row walk back through them


def desired_state(manifest: Manifest, folder: Path, release: str, rollout: RolloutConfig,
                  signer: str, previous: Deployment | None) -> Deployment:
    """The production.yaml that deploys the release in `folder` (committed at path `release`)."""
    artifacts = dict(manifest.files)
    for name in (MANIFEST, SIGNATURE, *ATTESTATIONS):  # what the manifest cannot list: it, and what names it
        if name in (MANIFEST, SIGNATURE) or (folder / name).is_file():
            artifacts[name] = file_digest(folder / name)
    lineage = manifest.lineage
    history = ([Previous(version=previous.model.version, release=previous.model.release)] + [
        p for p in earlier(previous) if p.version != lineage.model_version] if previous else [])
    return with_history(Deployment(
        model=ModelRef(name=lineage.model_name, version=lineage.model_version, release=release,
                       mlflow_run_id=lineage.mlflow_run_id, signer=signer),
        artifacts=dict(sorted(artifacts.items())), rollout=rollout), history)


def with_history(deployment: Deployment, history: list[Previous]) -> Deployment:
    """The deployment remembering `history` (newest first, at most HISTORY_DEPTH; previous = the newest)."""
    kept = history[:HISTORY_DEPTH]
    return deployment.model_copy(update={"history": kept, "previous": kept[0] if kept else None})


def render(deployment: Deployment) -> str:
    body: dict[str, Any] = deployment.model_dump(by_alias=True, mode="json")
    if not body.get("history"):
        body.pop("history", None)
    for optional in ("stage", "experiment"):  # written only once a fleet decision or an A/B test sets them
        if body.get(optional) is None:
            body.pop(optional, None)
    return HEADER + yaml.safe_dump(body, sort_keys=False, width=120)


def check_artifacts(deployment: Deployment, folder: Path, where: str) -> None:
    """The release folder on disk is exactly what production.yaml pins (names, version, every sha256)."""
    from pipelines.core.hashing import tree_sha256

    actual = tree_sha256(folder)
    release = deployment.model.release
    for name, digest in deployment.artifacts.items():
        if name not in actual:
            raise PipelineError(f"{where}: artifact {name} is missing from {release}")
        if actual[name] != digest:
            raise PipelineError(f"{where}: artifact {name} sha256 differs from {release}/{name}")
    for name in sorted(set(actual) - set(deployment.artifacts)):
        raise PipelineError(f"{where}: {release}/{name} is not pinned in artifacts")
