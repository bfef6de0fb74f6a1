"""dvc.yaml mirrors the Dagster graph: same steps, same files, params keys that exist."""
from __future__ import annotations

import importlib
from pathlib import Path

import yaml

from assets.definitions import defs
from assets.lineage import graph_problems
from pipelines import paths
from pipelines.steps import registry

REPO = Path(__file__).resolve().parents[1]
STAGES = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
PARAMS = yaml.safe_load((REPO / "params.yaml").read_text())


def _outs(stage: dict) -> list[str]:
    return [next(iter(o)) if isinstance(o, dict) else o for o in stage.get("outs", [])]


def _metrics(stage: dict) -> list[str]:
    listed = stage.get("metrics", []) + stage.get("plots", [])
    return [next(iter(o)) if isinstance(o, dict) else o for o in listed]


def test_every_listed_params_key_exists_in_params_yaml():
    for name, stage in STAGES.items():
        for dotted in stage.get("params", []):
            node = PARAMS
            for part in dotted.split("."):
                assert isinstance(node, dict) and part in node, f"stage {name}: params key {dotted} not in params.yaml"
                node = node[part]


def test_every_stage_command_runs_a_registered_step_whose_module_imports():
    steps = registry()
    for name, stage in STAGES.items():
        assert stage["cmd"] == f"bin/stage {name}"
        assert name in steps, name
        importlib.import_module(steps[name].__module__)
    assert list(STAGES) == list(steps)


def test_stage_outputs_are_the_declared_artifact_paths():
    declared = {v for k, v in vars(paths).items() if k.isupper() and isinstance(v, str)}
    produced = {p for stage in STAGES.values() for p in _outs(stage) + _metrics(stage)}
    assert produced == declared


def test_stage_graph_matches_asset_graph():
    # the same comparison `mobile-mlops lineage check` runs in CI
    assert graph_problems(defs.resolve_asset_graph(), REPO / "dvc.yaml") == []


def test_stage_code_deps_exist():
    for name, stage in STAGES.items():
        for dep in stage["deps"]:
            if dep.startswith("pipelines/"):
                assert (REPO / dep).is_file(), f"stage {name}: {dep} missing"
