"""deploy/production.yaml, the desired production state, and the published releases of a model.

The one reader of that file: drift (its reference), FinOps (its cost delta) and GitOps (promote, rollback,
propose, lineage) all ask here. Writing it is GitOps' job (pipelines/release/gitops/deploy.py).
"""
from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pipelines.core.config import ReleaseConfig, RolloutConfig, Settings
from pipelines.core.errors import PipelineError
from pipelines.core.paths import PRODUCTION_FILE

SCHEMA = "mobile-mlops/deployment/v1"


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


class Variant(_Strict):
    name: str
    version: str  # the model version the arm runs
    percent: int = Field(ge=1, le=99)  # share of devices, assigned by device hash


class Experiment(_Strict):
    """An A/B comparison of two model versions, assigned by a salted hash of the device (fleet analysis)."""

    name: str
    variants: list[Variant] = Field(min_length=2, max_length=2)


class Deployment(_Strict):
    schema_: str = Field(SCHEMA, alias="schema")
    model: ModelRef
    artifacts: dict[str, str]  # every file of the release folder -> sha256 (manifest and signature too)
    rollout: RolloutConfig
    previous: Previous | None = None  # what `mobile-mlops rollback` restores (history[0])
    history: list[Previous] = Field(default_factory=list)  # earlier production releases, newest first
    stage: str | None = None  # the rollout stage reached (a promote decision advances it); None: the first
    experiment: Experiment | None = None  # an A/B test the fleet analysis evaluates


def earlier(deployment: Deployment) -> list[Previous]:
    """The releases production ran before this one, newest first (files from before `history`: `previous`)."""
    return list(deployment.history) or ([deployment.previous] if deployment.previous else [])


def stage_index(deployment: Deployment) -> int:
    """Position of the deployment's current rollout stage (0 when none is recorded)."""
    names = [s.name for s in deployment.rollout.stages]
    if deployment.stage is None:
        return 0
    if deployment.stage not in names:
        raise PipelineError(f"{PRODUCTION_FILE}: key 'stage': {deployment.stage!r} is not a rollout stage {names}")
    return names.index(deployment.stage)


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


def read_production(settings: Settings) -> Deployment | None:
    """The project's deploy/production.yaml, or None when nothing was ever deployed."""
    path = settings.resolve(PRODUCTION_FILE)
    return parse(path.read_bytes(), PRODUCTION_FILE) if path.is_file() else None


def version_key(path: Path) -> tuple:
    """Sort release folders by version number (1 < 2 < 10)."""
    return tuple(int(p) if p.isdigit() else 0 for p in path.name.replace("-", ".").split("."))


def model_releases(settings: Settings, release: ReleaseConfig, holding: str) -> list[Path]:
    """The model's published release folders that hold the file `holding`, oldest first."""
    folder = settings.resolve(release.directory) / release.model_name
    return sorted((p for p in folder.glob("*") if (p / holding).is_file()), key=version_key)


def production_or_latest(settings: Settings, holding: str) -> tuple[Path | None, str]:
    """The production release (if it holds `holding`), else the latest candidate that does, and why."""
    release = settings.params.release
    deployed = read_production(settings)
    if deployed is not None and deployed.model.name == release.model_name:
        folder = settings.resolve(deployed.model.release)
        if (folder / holding).is_file():
            return folder, f"production release {deployed.model.version} ({PRODUCTION_FILE})"
    earlier = model_releases(settings, release, holding)
    if earlier:
        return earlier[-1], f"previous release candidate {earlier[-1].name} (no production release yet)"
    return None, f"no production release and no earlier release candidate with {holding}"
