"""FinOps in the Definitions: tags and owners on every asset, the budget check blocking or warning per params."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from dagster import AssetCheckSeverity, AssetKey

from assets.checks import gate_checks
from assets.definitions import defs
from assets.resources import SettingsResource
from pipelines.catalog import judge
from pipelines.core.config import load_settings

REPO = Path(__file__).resolve().parents[2]


def test_every_asset_carries_the_finops_tags_and_owner_from_params():
    project = load_settings(REPO / "params.yaml").params.project
    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.owners == [project.owner], key
        assert {k: node.tags.get(k) for k in ("project", "cost_center", "environment")} == {
            "project": project.name, "cost_center": project.cost_center, "environment": project.environment}, key


def test_finops_report_feeds_the_release_and_its_budget_check_blocks():
    graph = defs.resolve_asset_graph()
    assert AssetKey("finops_report") in graph.get(AssetKey("release_candidate")).parent_keys
    assert graph.get(AssetKey("finops_report")).group_name == "finops"
    spec = next(graph.get_check_spec(k) for k in graph.asset_check_keys if k.name == "budget_gate")
    assert spec.blocking and spec.asset_key == AssetKey("finops_report")


@pytest.mark.parametrize("blocking, severity", [(True, AssetCheckSeverity.ERROR), (False, AssetCheckSeverity.WARN)])
def test_over_budget_check_fails_with_the_severity_params_ask_for(tmp_path: Path, blocking, severity):
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params.setdefault("gates", {}).setdefault("budgets", {})["blocking"] = blocking
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    (tmp_path / "reports").mkdir()
    release = {"monthly_usd": 250.0, "platforms": {"android": {"device_mb_per_month": 0.1, "model_bytes": 10_000}}}
    (tmp_path / "reports" / "cost.json").write_text(json.dumps({"release": release}))
    settings = SettingsResource(params_path=str(tmp_path / "params.yaml")).load()
    verdict = judge("finops_report", settings)
    (result,) = gate_checks("finops_report", tmp_path)
    assert not result.passed and result.severity == severity
    assert verdict["stops"] is blocking and verdict["checks"][0]["blocking"] is blocking
    if not blocking:
        assert result.description.endswith(" (warning: gates.budgets.blocking is false)")
    assert "monthly cost $250.00 exceeds gates.budgets.max_monthly_usd = $100.00 by $150.00" in result.description
