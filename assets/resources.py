"""Resources: the parsed params (run config may point at another file or override keys)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import yaml
from dagster import ConfigurableResource

from pipelines.config import ProjectConfig, Settings, load_settings

PARAMS_ENV = "MOBILE_MLOPS_PARAMS"


def project_config() -> ProjectConfig:
    """params `project`, read when the Definitions are built, before any run."""
    path = Path(os.environ.get(PARAMS_ENV, "params.yaml"))
    try:
        raw = yaml.safe_load(path.read_text()) or {}
        return ProjectConfig.model_validate(raw.get("project") or {})
    except (OSError, ValueError, AttributeError, yaml.YAMLError):
        return ProjectConfig()  # a broken params file is reported, with its key, when a run loads it


def project_owners() -> list[str]:
    """Asset owners: params project.owner."""
    return [project_config().owner]


def project_tags() -> dict[str, str]:
    """Asset tags: the FinOps tag set of params `project` (the owner is shown as `owners`)."""
    return {k: v for k, v in project_config().tags().items() if k != "owner"}


OWNERS = project_owners()


class SettingsResource(ConfigurableResource):
    """params.yaml (or MOBILE_MLOPS_PARAMS), with optional dotted-key overrides as JSON."""

    params_path: str = ""
    overrides_json: str = "{}"

    def load(self) -> Settings:
        path = self.params_path or os.environ.get(PARAMS_ENV, "params.yaml")
        return load_settings(path, json.loads(self.overrides_json))
