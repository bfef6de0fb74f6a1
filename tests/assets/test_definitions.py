"""The one Definitions object loads, with the graph, groups and checks users rely on."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from dagster import AssetKey

from assets.definitions import defs

EXPECTED_EDGES = {
    "raw_dataset": {"source_data"},
    "validated_dataset": {"raw_dataset"},
    "data_drift": {"validated_dataset"},
    "dataset_splits": {"validated_dataset"},
    "trained_model": {"dataset_splits", "data_drift"},
    "model_evaluation": {"dataset_splits", "trained_model"},
    "tflite_model": {"dataset_splits", "trained_model", "model_evaluation"},
    "coreml_model": {"dataset_splits", "trained_model", "model_evaluation"},
    "footprint_report": {"trained_model", "tflite_model", "coreml_model"},
    "offload_policy": {"dataset_splits", "trained_model", "tflite_model"},
    "fairness_tradeoff": {"dataset_splits", "trained_model"},
    "fairness_report": {"dataset_splits", "trained_model", "tflite_model"},
    "feature_importance": {"dataset_splits", "trained_model", "tflite_model"},
    "model_card": {"raw_dataset", "validated_dataset", "dataset_splits", "trained_model", "fairness_report",
                   "fairness_tradeoff", "feature_importance", "footprint_report"},
    "release_candidate": {"raw_dataset", "validated_dataset", "data_drift", "trained_model", "model_evaluation", "tflite_model",
                          "coreml_model", "footprint_report", "offload_policy", "fairness_report", "fairness_tradeoff",
                          "model_card", "finops_report"},
    # the cost report sums the measured compute of every step before it
    "finops_report": {"raw_dataset", "validated_dataset", "data_drift", "dataset_splits", "trained_model",
                      "model_evaluation", "tflite_model", "coreml_model", "footprint_report", "offload_policy",
                      "fairness_tradeoff", "fairness_report", "feature_importance", "model_card"},
}


def test_graph_has_expected_dependencies():
    graph = defs.resolve_asset_graph()
    for asset, parents in EXPECTED_EDGES.items():
        found = {key.to_user_string() for key in graph.get(AssetKey(asset)).parent_keys}
        assert found == parents, asset


def test_every_materializable_asset_has_description_group_and_code_version():
    graph = defs.resolve_asset_graph()
    for key in graph.materializable_asset_keys:
        node = graph.get(key)
        assert node.description, key
        assert node.group_name in {"data", "training", "mobile", "finops", "governance", "release"}, key
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
    assert {"data", "training", "mobile", "finops", "governance", "release"} <= groups
    for key in graph.get_all_asset_keys():
        tags = graph.get(key).tags
        assert {"project", "cost_center", "environment"} <= set(tags), key  # params `project` FinOps tags
    assert "dagster/kind/keras" in graph.get(AssetKey("trained_model")).tags
