"""Fleet fixtures: one real small release per session (the whole pipeline on 1,500 + 600 Adult rows)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.conftest import write_small_project


@dataclass
class Built:
    root: Path
    release: Path


@pytest.fixture(scope="session")
def fleet_release(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """A project with a real signed release (TFLite model, footprint, offload policy, cost.json, profile)."""
    from dagster import DagsterInstance

    from assets.build import materialize_all
    from pipelines.core.config import load_settings

    root = tmp_path_factory.mktemp("fleet") / "project"
    root.mkdir()
    params = write_small_project(root)
    # a trained model, not the two-epoch wiring check: the guardrails judge its real group gap
    text = yaml.safe_load(params.read_text())
    text["train"]["epochs"] = "auto"
    params.write_text(yaml.safe_dump(text, sort_keys=False))
    result = materialize_all(load_settings(root / "params.yaml"), instance=DagsterInstance.ephemeral(),
                             raise_on_error=False)
    assert result.success
    release = next((root / "releases" / "adult-income").iterdir())
    return Built(root, release)


@pytest.fixture(scope="session")
def fleet_models(fleet_release: Built):
    """The release scored once (LiteRT on the held-out rows), shared by the seed sweeps."""
    from pipelines.core.config import load_settings
    from pipelines.fleet import simulate

    settings = load_settings(fleet_release.root / "params.yaml")
    frame = simulate.held_out(settings)
    model = simulate.load_model(settings, fleet_release.release, frame)
    return settings, frame, (model, model)
