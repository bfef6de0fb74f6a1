"""The stage catalog is the one declaration of the graph: Dagster, dvc.yaml and the lineage check derive from it."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import yaml
from dagster import AssetKey

from assets.definitions import defs
from cli.checks import asset_parents, compare, graph_problems
from pipelines import catalog, code_versions, dvc_stages
from pipelines.core import paths
from pipelines.core.config import load_settings

REPO = Path(__file__).resolve().parents[1]
SETTINGS = load_settings(REPO / "params.yaml")
STAGES = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
PARAMS = yaml.safe_load((REPO / "params.yaml").read_text())


def test_committed_dvc_yaml_is_the_generated_one():
    assert dvc_stages.problems(SETTINGS) == []


def test_dagster_graph_dvc_yaml_and_catalog_are_one_graph():
    # the same comparison `mobile-mlops lineage check` runs in CI
    assert graph_problems(defs.resolve_asset_graph(), SETTINGS) == []
    dagster = asset_parents(defs.resolve_asset_graph())
    assert {n: catalog.parents(n) for n in catalog.STAGES} == {n: dagster[n] for n in catalog.STAGES}
    assert list(STAGES) == list(catalog.STAGES)


def test_a_declaration_that_disagrees_with_the_catalog_is_named(tmp_path: Path):
    expected = {n: catalog.parents(n) for n in catalog.STAGES}
    edited = {**STAGES, "model_card": {**STAGES["model_card"],
                                       "deps": [d for d in STAGES["model_card"]["deps"] if d != paths.IMPORTANCE_REPORT]}}
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": edited}))
    found = dvc_stages.stage_parents(tmp_path / "dvc.yaml")
    found = {n: ups | ({catalog.SOURCE} if catalog.SOURCE in expected[n] else set()) for n, ups in found.items()}
    assert compare("dvc.yaml", found, expected) == [
        f"dvc.yaml: model_card upstream {sorted(expected['model_card'] - {'feature_importance'})} "
        f"!= catalog {sorted(expected['model_card'])}"]
    dagster = {k: v for k, v in asset_parents(defs.resolve_asset_graph()).items()
               if k != catalog.SOURCE and k not in catalog.NOT_STAGES}
    del dagster["offload_policy"]
    assert compare("Dagster", dagster, expected) == ["Dagster: catalog stage offload_policy is missing"]


def test_post_release_assets_are_declared_and_outside_dvc_yaml():
    dagster = asset_parents(defs.resolve_asset_graph())
    assert set(catalog.POST_RELEASE) <= set(dagster)
    assert not set(catalog.POST_RELEASE) & (set(STAGES) | set(catalog.STAGES))
    assert all(dagster[name] <= set(catalog.POST_RELEASE) for name in catalog.POST_RELEASE)  # telemetry, not stages


def test_daily_partitions_are_outside_dvc_yaml_and_feed_raw_dataset_only_from_their_folder(small_project):
    from dagster import AssetKey

    from assets.build import build_definitions
    from pipelines.core.config import load_settings
    from pipelines.data.landing import split_source

    graph = defs.resolve_asset_graph()
    assert not set(catalog.INCOMING) & (set(STAGES) | set(catalog.STAGES))
    assert graph.get(AssetKey("daily_batch")).partitions_def is not None and \
        graph.get(AssetKey("daily_batch")).group_name == "data"
    assert AssetKey("daily_batch") not in graph.get(AssetKey("raw_dataset")).parent_keys  # default: the Adult file
    settings = load_settings(small_project / "params.yaml")
    split_source(settings, 3)
    dvc_stages.generate(settings)  # the project's dvc.yaml, which the lineage check compares too
    on_days = build_definitions(load_settings(settings.path, {"data.source": "data/incoming"})).resolve_asset_graph()
    assert AssetKey("daily_batch") in on_days.get(AssetKey("raw_dataset")).parent_keys
    assert graph_problems(on_days, settings) == []  # the lineage check accepts the edge


def test_every_params_key_a_stage_reads_exists():
    for name, stage in catalog.ASSETS.items():
        for dotted in stage.params:
            node = PARAMS
            for part in dotted.split("."):
                assert isinstance(node, dict) and part in node, f"stage {name}: params key {dotted} not in params.yaml"
                node = node[part]


def test_every_stage_has_a_step_function_in_its_package_that_records_metrics():
    for name, stage in catalog.STAGES.items():
        step = catalog.step_function(name)
        assert step.__module__ == f"pipelines.{stage.group}.steps", name
        assert hasattr(step, "__wrapped__"), f"step {name} is not decorated with @records_metrics"
        assert STAGES[name]["cmd"] == f"bin/stage {name}"


def test_every_artifact_path_is_written_by_exactly_one_stage():
    declared = {v for k, v in vars(paths).items() if k.isupper() and isinstance(v, str) and "/" in v
                and not k.endswith(("_DIR", "_FILE"))}
    written = [p for stage in catalog.ASSETS.values() for p in stage.writes]
    assert len(written) == len(set(written)), "two stages write one path"
    assert declared <= set(written), sorted(declared - set(written))


def test_code_versions_see_params_overrides():
    base = code_versions.stage_code_version("trained_model", SETTINGS)
    changed = load_settings(REPO / "params.yaml", {"train.epochs": 3})
    assert code_versions.stage_code_version("trained_model", changed) != base
    assert code_versions.stage_code_version("raw_dataset", changed) == code_versions.stage_code_version(
        "raw_dataset", SETTINGS)


def test_optional_test_source_leaves_its_dep_out(tmp_path: Path):
    raw = dict(PARAMS)
    raw["data"] = {**PARAMS["data"], "test_source": None}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    text = dvc_stages.render(load_settings(tmp_path / "params.yaml"))
    assert "${data.test_source}" not in text and "${data.source}" in text


def test_committed_metrics_files_are_flat_and_short():
    for path in sorted((REPO / paths.METRICS_DIR).glob("*.json")):
        values = json.loads(path.read_text())
        assert path.stem in catalog.STAGES, f"{path.name}: no stage of that name"
        assert 0 < len(values) <= 40, f"{path.name}: {len(values)} entries; `dvc metrics show` should stay readable"
        assert all(isinstance(v, (int, float, bool)) for v in values.values()), path.name


def test_top_level_plots_draw_from_stage_outputs():
    produced = catalog.producers()
    for definition in yaml.safe_load((REPO / "dvc.yaml").read_text()).get("plots", []):
        (title, props), = definition.items()
        for source in (props.get("y") or {}):
            assert source in produced, f"plot {title!r}: {source} is no stage's output"


def test_the_catalog_declares_every_asset_of_the_definitions():
    graph = defs.resolve_asset_graph()
    names = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert names == set(catalog.ASSETS) | {catalog.SOURCE}
    assert set(catalog.ASSETS) == set(catalog.STAGES) | set(catalog.NOT_STAGES)
    assert catalog.INCOMING == ("daily_batch",)
    assert catalog.POST_RELEASE == ("fleet_telemetry", "canary_analysis", "observed_finops", "production_drift")
    from cli.checks import spec_problems

    assert spec_problems(graph) == []  # group, description, partitioning and checks as the catalog says
    for name, entry in catalog.ASSETS.items():
        node = graph.get(AssetKey(name))
        assert node.code_version == code_versions.stage_code_version(name, SETTINGS), name
        assert (node.partitions_def is not None) == (entry.partitions is not None), name
        step = catalog.step_function(name)
        assert step.__module__ == f"pipelines.{entry.group}.steps", name


def test_the_lineage_check_names_an_asset_whose_group_differs_from_the_catalog(monkeypatch):
    from cli.checks import spec_problems

    moved = {**catalog.ASSETS, "canary_analysis": replace(catalog.ASSETS["canary_analysis"], group="release")}
    monkeypatch.setattr(catalog, "ASSETS", moved)
    assert spec_problems(defs.resolve_asset_graph()) == [
        "Dagster: asset canary_analysis group 'fleet' != catalog 'release'"]


def test_each_gate_lives_with_its_stage_and_writes_a_verdict_dvc_yaml_lists():
    gated = {name: [g.name for g in s.gates] for name, s in catalog.ASSETS.items() if s.gates}
    assert gated == {
        "validated_dataset": ["expectations"], "data_drift": ["drift_gate"], "trained_model": ["fairness_gate"],
        "model_evaluation": ["accuracy_gate"], "tflite_model": ["agreement_gate"],
        "footprint_report": ["footprint_gate"], "fairness_report": ["fairness_gate"], "finops_report": ["budget_gate"],
        "canary_analysis": ["guardrails"], "observed_finops": ["observed_budget"],
        "production_drift": ["no_production_drift"]}
    for name in gated:
        for gate in catalog.ASSETS[name].gates:
            function = catalog.gate_function(name, gate)
            assert function.__module__ == f"pipelines.{catalog.ASSETS[name].group}.gates" and function.__doc__
    for name, stage in catalog.STAGES.items():
        outs = [next(iter(o)) if isinstance(o, dict) else o for o in STAGES[name].get("outs", [])]
        assert (paths.verdict_file(name) in outs) == bool(stage.gates), name
    # the release reads every verdict upstream of it, and dvc.yaml lists them as its deps
    assert catalog.verdicts_read("release_candidate") == [n for n, s in catalog.STAGES.items() if s.gates]
    assert {paths.verdict_file(n) for n in catalog.verdicts_read("release_candidate")} <= \
        set(STAGES["release_candidate"]["deps"])
    assert "gates" not in catalog.STAGES["release_candidate"].params  # it no longer judges


def test_the_stage_command_runs_stages_only(capsys):
    from cli.main import main

    assert main(["stage", "daily_batch"]) == 1
    assert capsys.readouterr().err.startswith("error: unknown stage 'daily_batch' (stages: raw_dataset, ")
