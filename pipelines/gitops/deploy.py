"""deploy/production.yaml: the desired production state. Merging a change to it is the deployment."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pipelines.config import RolloutConfig
from pipelines.errors import PipelineError
from pipelines.hashing import file_digest
from pipelines.release import MANIFEST, Manifest
from pipelines.signing import SIGNATURE

DEPLOY_FILE = "deploy/production.yaml"
SCHEMA = "mobile-mlops/deployment/v1"
HEADER = """\
# Desired production state (GitOps): changed only by release pull requests and rollbacks.
# After a merge, CI runs `mobile-mlops promote`: it verifies the release below and points the
# MLflow alias `production` at it. The app-distribution controller rolls it out stage by stage and
# halts (then rolls back) when a guardrail is breached. Written by `mobile-mlops release propose`.
"""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Previous(_Strict):
    version: str
    release: str


class ModelRef(_Strict):
    name: str
    version: str
    release: str  # the release folder, relative to the project root
    mlflow_run_id: str
    signer: str  # sha256 fingerprint of the public key the signature verifies with


class Deployment(_Strict):
    schema_: str = Field(SCHEMA, alias="schema")
    model: ModelRef
    artifacts: dict[str, str]  # every file of the release folder -> sha256 (manifest and signature too)
    rollout: RolloutConfig
    previous: Previous | None = None  # what `mobile-mlops rollback` restores


def desired_state(manifest: Manifest, folder: Path, release: str, rollout: RolloutConfig,
                  signer: str, previous: Deployment | None) -> Deployment:
    """The production.yaml that deploys the release in `folder` (committed at path `release`)."""
    artifacts = dict(manifest.files)
    for name in (MANIFEST, SIGNATURE):
        artifacts[name] = file_digest(folder / name)
    lineage = manifest.lineage
    return Deployment(
        model=ModelRef(name=lineage.model_name, version=lineage.model_version, release=release,
                       mlflow_run_id=lineage.mlflow_run_id, signer=signer),
        artifacts=dict(sorted(artifacts.items())), rollout=rollout,
        previous=Previous(version=previous.model.version, release=previous.model.release) if previous else None,
    )


def render(deployment: Deployment) -> str:
    body: dict[str, Any] = deployment.model_dump(by_alias=True, mode="json")
    return HEADER + yaml.safe_dump(body, sort_keys=False, width=120)


def parse(text: str | bytes, where: str) -> Deployment:
    """Validate a production.yaml; errors name the file and the key."""
    try:
        raw = yaml.safe_load(text)
        return Deployment.model_validate(raw)
    except yaml.YAMLError as exc:
        raise PipelineError(f"{where}: not valid YAML") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise PipelineError(f"{where}: key '{key}': {first['msg']}") from exc


def check_artifacts(deployment: Deployment, folder: Path, where: str) -> None:
    """The release folder on disk is exactly what production.yaml pins (names, version, every sha256)."""
    from pipelines.hashing import tree_sha256

    actual = tree_sha256(folder)
    release = deployment.model.release
    for name, digest in deployment.artifacts.items():
        if name not in actual:
            raise PipelineError(f"{where}: artifact {name} is missing from {release}")
        if actual[name] != digest:
            raise PipelineError(f"{where}: artifact {name} sha256 differs from {release}/{name}")
    for name in sorted(set(actual) - set(deployment.artifacts)):
        raise PipelineError(f"{where}: {release}/{name} is not pinned in artifacts")
