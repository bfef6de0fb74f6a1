"""Resources: the parsed params (run config may point at another file or override keys)."""
from __future__ import annotations

import json
import os

from dagster import ConfigurableResource

from pipelines.config import Settings, load_settings

PARAMS_ENV = "MOBILE_MLOPS_PARAMS"


class SettingsResource(ConfigurableResource):
    """params.yaml (or MOBILE_MLOPS_PARAMS), with optional dotted-key overrides as JSON."""

    params_path: str = ""
    overrides_json: str = "{}"

    def load(self) -> Settings:
        path = self.params_path or os.environ.get(PARAMS_ENV, "params.yaml")
        return load_settings(path, json.loads(self.overrides_json))
