"""Resources: the parsed params, read through the one loader (pipelines.core.config.load_settings)."""
from __future__ import annotations

import json

from dagster import ConfigurableResource

from pipelines.core.config import Settings, load_settings


class SettingsResource(ConfigurableResource):
    """A params file and dotted-key overrides (JSON); every step loads its settings from these."""

    params_path: str
    overrides_json: str = "{}"

    @classmethod
    def of(cls, settings: Settings) -> SettingsResource:
        return cls(params_path=str(settings.path), overrides_json=json.dumps(settings.overrides))

    def load(self) -> Settings:
        return load_settings(self.params_path, json.loads(self.overrides_json))
