"""The canary loop on a real release: each injected fault is rolled back within the canary stage, a clean
release is promoted through every stage, false rollbacks stay rare, the debiased gap covers the truth."""
from __future__ import annotations

import time

import numpy as np
import pytest

from pipelines.fleet import ldp, rollout, simulate
from pipelines.fleet.canary import units

FAULTS = {"latency": 3.0, "crash": 25.0, "data": 8.0, "fairness": 0.35, "accuracy": 0.12}
DEVICES = 20_000


def _play(fleet_models, seed: int, faults: dict | None = None, devices: int = DEVICES, days: int = 20,
          **kwargs):
    settings, frame, models = fleet_models
    sim = simulate.build(settings, fleet_models_release(settings), devices=devices, seed=seed, faults=faults,
                         frame=frame, models=models)
    return sim, rollout.play(sim, settings.params.release.rollout, settings.params, days=days, **kwargs)


def fleet_models_release(settings):
    return next((settings.root / "releases" / "adult-income").iterdir())


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_each_injected_fault_is_rolled_back_within_the_canary_stage(fleet_models, fault):
    _, outcome = _play(fleet_models, seed=3, faults={fault: FAULTS[fault]})
    assert outcome.final == "rollback", [look.decision for look in outcome.looks]
    assert outcome.stage_reached == "canary"
    breached = {t.guardrail for t in outcome.looks[-1].tests if t.status == "breach"}
    expected = {"latency": "latency", "crash": "crash_rate", "data": "data_mb_per_device_month",
                "fairness": "selection_rate_gap", "accuracy": "accuracy_drop"}[fault]
    assert expected in breached


def test_a_clean_release_is_promoted_through_every_stage(fleet_models):
    _, outcome = _play(fleet_models, seed=4)
    assert outcome.final == "promoted"
    stages = [look.stage for look in outcome.looks if look.decision == "promote"]
    assert stages == ["canary", "early"] and outcome.stage_reached == "full"
    assert all(look.decision != "rollback" for look in outcome.looks)


def _gap_covered(fleet_models, seed: int) -> bool:
    settings, frame, models = fleet_models
    sim = simulate.build(settings, fleet_models_release(settings), devices=5000, seed=seed, frame=frame,
                         models=models)
    day, _ = sim.day("2026-01-01", 100)
    u = units(day).loc["canary"]
    config = settings.params.fleet
    result = ldp.group_rates(u["predicted_positive"].to_numpy(float), u["inferences"].to_numpy(float),
                             u["group_rr"].to_numpy(), config.epsilon, len(config.groups))
    truth = simulate.true_gap(sim, day)
    return bool(result["low"] <= truth <= result["high"])


def test_debiased_gap_covers_the_simulators_true_gap_at_the_default_epsilon(fleet_models):
    covered = [_gap_covered(fleet_models, seed) for seed in range(20)]
    assert np.mean(covered) >= 0.9


@pytest.mark.slow
def test_false_rollback_rate_over_50_clean_seeds_and_gap_coverage(fleet_models):
    finals = [_play(fleet_models, seed=100 + s)[1].final for s in range(50)]
    covered = [_gap_covered(fleet_models, seed) for seed in range(200, 250)]
    print(f"50 clean seeds: {finals.count('rollback')} rolled back, {finals.count('promoted')} promoted; "
          f"debiased gap interval covered the true gap in {sum(covered)}/50 seeds")
    assert finals.count("rollback") / 50 <= 0.05
    assert finals.count("promoted") / 50 >= 0.9  # and the clean release does get through, within 20 days
    assert np.mean(covered) >= 0.9


@pytest.mark.slow
def test_a_100k_device_30_day_rollout_is_analysed_in_under_two_minutes(fleet_models, tmp_path):
    settings, frame, models = fleet_models
    sim = simulate.build(settings, fleet_models_release(settings), devices=100_000, seed=7, frame=frame,
                         models=models)
    rollout_config = settings.params.release.rollout.model_copy(update={"stages": [
        s.model_copy(update={"min_hours": 24 * 15}) for s in settings.params.release.rollout.stages]})
    began = time.perf_counter()
    outcome = rollout.play(sim, rollout_config, settings.params, days=30, directory=tmp_path / "telemetry")
    total = time.perf_counter() - began
    stored_began = time.perf_counter()
    _decision, _, _, _ = rollout.analyse_day(tmp_path / "telemetry", "2026-01-30", rollout_config, settings.params,
                                             2, 2)
    stored = time.perf_counter() - stored_began
    print(f"100k devices x {outcome.days} days: simulation {outcome.seconds_simulation:.1f} s, daily analyses "
          f"{outcome.seconds_analysis:.1f} s, one analysis of all stored days {stored:.1f} s, total {total:.1f} s")
    assert outcome.days == 30 and outcome.final == "promoted"  # 15 days canary, 15 days early
    assert outcome.seconds_analysis < 120 and stored < 120


@pytest.mark.parametrize(("faults", "decision"), [({}, "promote"), ({"fairness": 0.35}, "rollback")])
def test_the_same_analysis_compares_two_ab_arms(fleet_models, faults, decision):
    from pipelines.fleet import canary

    settings, frame, models = fleet_models
    sim = simulate.build(settings, fleet_models_release(settings), devices=8000, seed=21, frame=frame,
                         models=models, faults=faults, experiment=("threshold-test", "A", "B"))
    total = None
    for day in ("2026-02-01", "2026-02-02", "2026-02-03"):
        records, _ = sim.day(day, 50)
        assert set(records["variant"]) == {"A", "B"}
        total = canary.add_units(total, records)
    tests = canary.evaluate(total, "B", "A", settings.params.release.rollout.guardrails, settings.params)
    assert canary.decide(tests, True, True)[0] == decision
    assert 0.4 < len(total.loc["B"]) / len(total) < 0.6  # 50% assigned by device hash
