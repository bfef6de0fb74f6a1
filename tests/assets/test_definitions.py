"""The one Definitions object loads, with the graph, groups and checks users rely on."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from dagster import AssetKey

from assets.definitions import defs
from pipelines.catalog import NOT_STAGES, POST_RELEASE


def test_graph_keeps_the_rules_the_release_relies_on():
    """The edges themselves are declared once, in the catalog (tests/test_catalog.py compares); these are the rules
    they must keep: every gated asset is upstream of the release, and the cost report follows every other step."""
    graph = defs.resolve_asset_graph()
    upstream = {key.to_user_string() for key in graph.get(AssetKey("release_candidate")).parent_keys}
    ancestors = set(upstream)
    for name in list(upstream):
        ancestors |= {k.to_user_string() for k in graph.get(AssetKey(name)).parent_keys}
    gated = {key.asset_key.to_user_string() for key in graph.asset_check_keys} - set(POST_RELEASE)  # after release
    assert gated <= ancestors | upstream, gated - ancestors
    steps = [k.to_user_string() for k in graph.toposorted_asset_keys if graph.get(k).is_materializable
             and k.to_user_string() not in NOT_STAGES]
    before = steps[:steps.index("finops_report")]
    finops = {key.to_user_string() for key in graph.get(AssetKey("finops_report")).parent_keys}
    assert set(before) <= finops  # the cost report sums the measured compute of every step before it
    assert {"dataset_splits", "data_drift"} <= {k.to_user_string() for k in graph.get(AssetKey("trained_model")).parent_keys}


def test_every_materializable_asset_has_description_group_and_code_version():
    graph = defs.resolve_asset_graph()
    for key in graph.materializable_asset_keys:
        node = graph.get(key)
        assert node.description, key
        assert node.group_name in {"data", "training", "mobile", "finops", "governance", "release", "fleet"}, key
        assert node.code_version, key


def test_every_asset_has_an_owner_from_params():
    from cli.checks import asset_problems
    from pipelines.core.config import load_settings

    graph = defs.resolve_asset_graph()
    assert asset_problems(graph) == []  # the same rule `mobile-mlops lineage check` enforces in CI
    owner = load_settings(Path(__file__).resolve().parents[2] / "params.yaml").params.project.owner
    assert all(graph.get(key).owners == [owner] for key in graph.get_all_asset_keys())


def test_gates_are_blocking_checks():
    graph = defs.resolve_asset_graph()
    checks = {key.name: graph.get_check_spec(key) for key in graph.asset_check_keys}
    assert {"accuracy_gate", "agreement_gate", "expectations", "footprint_gate", "fairness_gate"} <= set(checks)
    assert all(spec.blocking for spec in checks.values())


def test_definitions_and_cli_help_load_without_heavy_imports():
    code = (
        "import sys, assets.definitions;"
        "heavy = [m for m in ('tensorflow', 'coremltools', 'mlflow') if m in sys.modules];"
        "print(','.join(heavy))"
    )
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "", f"heavy modules imported at load: {done.stdout}"
    assert time.perf_counter() - started < 30  # generous bound; the real figure is in the note


def test_groups_tags_and_kinds_for_the_ui():
    graph = defs.resolve_asset_graph()
    groups = {graph.get(k).group_name for k in graph.get_all_asset_keys()}
    assert {"data", "training", "mobile", "finops", "governance", "release", "fleet"} <= groups
    for key in graph.get_all_asset_keys():
        tags = graph.get(key).tags
        assert {"project", "cost_center", "environment"} <= set(tags), key  # params `project` FinOps tags
    assert "dagster/kind/keras" in graph.get(AssetKey("trained_model")).tags
    assert {k.to_user_string() for k in graph.get_all_asset_keys() if graph.get(k).group_name == "fleet"} == \
        set(POST_RELEASE)
    assert graph.get(AssetKey("fleet_telemetry")).partitions_def is not None  # one partition per telemetry day
