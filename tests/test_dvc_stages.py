"""dvc.yaml mirrors the Dagster graph: same steps, same files, params keys that exist."""
from __future__ import annotations

import importlib
import json
from pathlib import Path

import yaml

from assets.definitions import defs
from cli.checks import graph_problems
from pipelines.core import paths
from pipelines.core.step import registry

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


def _entries(stage: dict, kind: str) -> dict[str, dict]:
    return {next(iter(o)) if isinstance(o, dict) else o: (next(iter(o.values())) or {}) if isinstance(o, dict) else {}
            for o in stage.get(kind, [])}


def test_each_stage_reports_one_compact_metrics_file_written_by_its_step():
    steps = registry()
    for name, stage in STAGES.items():
        metrics = _entries(stage, "metrics")
        assert list(metrics) == [f"reports/metrics/{name}.json"], f"{name}: metrics {list(metrics)}"
        assert metrics[f"reports/metrics/{name}.json"].get("cache") is False, name  # committed, diffable in git
        assert hasattr(steps[name], "__wrapped__"), f"step {name} is not decorated with @records_metrics"


def test_committed_metrics_files_are_flat_and_short():
    for path in sorted((REPO / "reports" / "metrics").glob("*.json")):
        values = json.loads(path.read_text())
        assert path.stem in STAGES, f"{path.name}: no stage of that name"
        assert 0 < len(values) <= 40, f"{path.name}: {len(values)} entries; `dvc metrics show` should stay readable"
        assert all(isinstance(v, (int, float, bool)) for v in values.values()), path.name


def test_plots_are_stage_outputs_and_top_level_plots_draw_from_them():
    produced = {p for stage in STAGES.values() for p in _outs(stage) + _metrics(stage)}
    for name, stage in STAGES.items():
        for plot, props in _entries(stage, "plots").items():
            assert plot.endswith((".png", ".csv", ".json")) and props.get("cache") is False, f"{name}: {plot}"
    top = yaml.safe_load((REPO / "dvc.yaml").read_text()).get("plots", [])
    assert top, "dvc.yaml has no top-level plots"
    for definition in top:
        (title, props), = definition.items()
        for source in (props.get("y") or {}):
            assert source in produced, f"plot {title!r}: {source} is no stage's output"
