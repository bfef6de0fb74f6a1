"""The FinOps cost model against hand-computed answers, budgets as gates, the run's compute."""
from __future__ import annotations

import pytest

from pipelines.core.compute import compute_cost_usd
from pipelines.core.config import BudgetGates, FinopsConfig
from pipelines.core.errors import PipelineError
from pipelines.core.gates import require_all
from pipelines.core.step import StepResult, measured
from pipelines.finops.cost import (
    budget_gates,
    cost_delta,
    deployment_cost,
    normalized,
    release_gates,
    request_cost_usd,
    run_compute,
)

# 1,000 devices, half on Android; 2 updates/month; 10 inferences/device/day; a 730-hour (30.41667-day) month.
FINOPS = FinopsConfig.model_validate({
    "fleet": {"monthly_active_devices": 1000, "updates_per_month": 2, "inferences_per_device_per_day": 10,
              "cellular_share": 0.5, "platform_share": {"android": 1, "ios": 1},
              "connectivity_share": {"wifi": 0.5, "cellular": 0.5, "offline": 0}},
    "prices": {"cdn_egress_per_gb": 0.1, "serverless_per_million_requests": 0.2, "serverless_per_gb_second": 0.00001,
               "compute_vcpu_hour": 0.036, "electricity_per_kwh": 0.2},
    "endpoint": {"memory_gb": 1.0, "duration_ms": 100, "payload_bytes": 1000},
})
BUDGETS = BudgetGates(max_monthly_usd=100, max_device_mb_per_month=1.0, max_model_bytes=1_048_576)


def test_one_platform_month_by_hand():
    # 1 MB model, 10% of inferences offloaded, 2 mJ per inference on device
    row = deployment_cost("android", 1_000_000, 2.0, 0.1, 1.0, FINOPS)
    assert row["devices"] == 500
    assert row["download_gb"] == pytest.approx(1.0)  # 1 MB x 2 updates x 500 devices
    assert row["download_usd"] == pytest.approx(0.10)
    # 500 devices x 10/day x 30.41667 days x 0.1 = 15,208.33 requests
    assert row["cloud_requests"] == pytest.approx(15208.333, rel=1e-6)
    # 0.0152083 M x $0.2 + 15,208.33 x 1 GB x 0.1 s x $0.00001 = 0.0030417 + 0.0152083
    assert row["cloud_usd"] == pytest.approx(0.01825, rel=1e-6)
    # 2 MB downloads + 30.41667 requests x 1,000 bytes; cellular: half of each
    assert row["device_mb_per_month"] == pytest.approx(2.0304167, rel=1e-6)
    assert row["cellular_mb_per_device"] == pytest.approx(1.0152083, rel=1e-6)
    # 2 mJ x 10 x 30.41667 = 0.60833 J per device; x 500 / 3.6e6 J per kWh
    assert row["energy_j_per_device"] == pytest.approx(0.6083333, rel=1e-6)
    assert row["fleet_kwh"] == pytest.approx(8.449074e-5, rel=1e-5)
    assert row["owners_energy_usd"] == pytest.approx(1.689815e-5, rel=1e-5)
    assert row["total_usd"] == pytest.approx(0.11825, rel=1e-6)  # energy is the owners', not in our total


def test_request_cost_and_compute_price_by_hand():
    assert request_cost_usd(1_000_000, FINOPS) == pytest.approx(0.2 + 1_000_000 * 0.1 * 0.00001)  # $1.20
    assert compute_cost_usd(3600, 0.04048) == pytest.approx(0.04048)
    run = run_compute({"a": {"cpu_seconds": 1800.0}, "b": {"cpu_seconds": 1800.0}, "c": None}, 0.036)
    assert run["cpu_seconds"] == 3600 and run["cost_usd"] == pytest.approx(0.036) and run["missing"] == ["c"]


def test_shares_are_normalized_and_missing_keys_are_named():
    assert normalized(["low", "high"], None, "k") == {"low": 0.5, "high": 0.5}
    assert normalized(["low", "high"], {"low": 3, "high": 1}, "k") == {"low": 0.75, "high": 0.25}
    with pytest.raises(PipelineError, match="finops.fleet.tier_share: no share for high"):
        normalized(["low", "high"], {"low": 1}, "finops.fleet.tier_share")


OVER = {"monthly_usd": 150.0, "platforms": {"android": {"device_mb_per_month": 3.0, "model_bytes": 2_000_000}}}


def test_over_budget_blocks_the_release_naming_the_budget_and_the_amount_over():
    gates = budget_gates(OVER, BUDGETS)
    assert [g.passed for g in gates] == [False, False, False]
    assert gates[0].detail == "monthly cost $150.00 exceeds gates.budgets.max_monthly_usd = $100.00 by $50.00 (50% over)"
    assert "exceeds gates.budgets.max_model_bytes = 1,048,576 bytes by 951,424 bytes" in gates[2].detail
    blocking, warnings = release_gates(OVER, BUDGETS)
    assert warnings == []
    with pytest.raises(PipelineError, match=r"gate budget max_monthly_usd failed: .* by \$50.00"):
        require_all(blocking)


def test_warning_mode_reports_but_does_not_block():
    warn = BUDGETS.model_copy(update={"blocking": False})
    blocking, warnings = release_gates(OVER, warn)
    assert blocking == [] and len(warnings) == 3
    require_all(blocking)  # nothing to stop the release


def test_within_budget_and_unset_budgets():
    fine = {"monthly_usd": 1.0, "platforms": {"ios": {"device_mb_per_month": 0.5, "model_bytes": 1000}}}
    assert all(g.passed for g in budget_gates(fine, BUDGETS))
    unset = BUDGETS.model_copy(update={"max_monthly_usd": None, "max_device_mb_per_month": None,
                                       "max_model_bytes": None})
    assert budget_gates(OVER, unset) == []


def test_cost_delta_against_production():
    new = {"serving_usd": 3.0, "platforms": {"android": {"device_mb_per_month": 0.02}}}
    old = {"serving_usd": 2.5, "platforms": {"android": {"device_mb_per_month": 0.05}}}
    delta = cost_delta(new, old, "production release 6")
    assert delta["serving_usd"]["delta"] == pytest.approx(0.5)
    assert delta["device_mb_per_month"]["android"]["delta"] == pytest.approx(-0.03)
    assert cost_delta(new, None, "none")["available"] is False


def test_measured_step_reports_cpu_seconds_and_cost():
    class Settings:
        class params:
            finops = FINOPS

    def busy(settings) -> StepResult:
        return StepResult(summary={"n": sum(i * i for i in range(300_000))})

    result = measured(busy, Settings())
    assert result.summary["cpu_seconds"] > 0
    assert result.summary["compute_cost_usd"] == pytest.approx(result.summary["cpu_seconds"] / 3600 * 0.036, rel=1e-3,
                                                               abs=1e-8)
