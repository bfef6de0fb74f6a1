"""One definition of the fleet figures: the canary's MB guardrail and observed FinOps agree on the same telemetry,
and a model download counts once per device (a 500 KB model is not rolled back against a 1 MB budget)."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from pipelines.fleet import canary, figures, observed_finops, rollout, simulate
from tests.fleet.test_rollout import fleet_models_release


def _days(sim, n: int, percent: int):
    return [sim.day(f"2026-03-{d:02d}", percent)[0] for d in range(1, n + 1)]


def test_canary_and_observed_finops_agree_on_mb_calls_and_battery(fleet_models):
    settings, frame, models = fleet_models
    sim = simulate.build(settings, fleet_models_release(settings), devices=3000, seed=5, frame=frame, models=models)
    import pandas as pd

    telemetry = pd.concat(_days(sim, 7, 20))
    tests = canary.evaluate(canary.units(telemetry), "canary", "production",
                            settings.params.release.rollout.guardrails, settings.params)
    mb_test = next(t for t in tests if t.guardrail == "data_mb_per_device_month")
    month = observed_finops.observed(telemetry[telemetry["variant"] == "canary"], settings.params)[0]
    assert mb_test.value == pytest.approx(month["device_mb_per_month"], rel=1e-9)
    # the download is counted once per device: the figure is near the model size, not 30 times it
    size_mb = np.mean(list(models[0].model_bytes.values())) / 1e6
    assert mb_test.value < 2 * size_mb + 1
    canary_rows = telemetry[telemetry["variant"] == "canary"]
    assert month["offload_calls_per_device"] == pytest.approx(
        figures.calls_per_device_month(canary_rows["offload_calls"].sum(), len(canary_rows)))
    assert month["battery_share_per_day"] == pytest.approx(
        figures.battery_share_per_day(canary_rows["battery_mj"].sum(), len(canary_rows), settings.params))


def test_per_device_standard_error_covers_a_known_mixture():
    days = np.full(400, 7.0)
    downloads = np.where(np.arange(400) % 2 == 0, 500_000.0, 0.0)  # half the devices downloaded 0.5 MB
    value, se, n = figures.mb_per_device_month(downloads, np.zeros(400), days, 1.0)
    assert (value, n) == (pytest.approx(0.25), 400)
    assert se == pytest.approx(0.25 / np.sqrt(400), rel=0.01)  # std of a 0/0.5 coin is 0.25


def test_a_model_padded_to_500_kb_is_promoted_on_clean_telemetry_with_default_budgets(fleet_models):
    settings, frame, models = fleet_models
    padded = dataclasses.replace(models[0], model_bytes={p: 500_000 for p in models[0].model_bytes})
    assert settings.params.gates.budgets.max_device_mb_per_month == 1.0
    sim = simulate.build(settings, fleet_models_release(settings), devices=20_000, seed=4, frame=frame,
                         models=(padded, padded))
    outcome = rollout.play(sim, settings.params.release.rollout, settings.params, days=20)
    assert outcome.final == "promoted", [(look.decision, look.reasons[:2]) for look in outcome.looks[-2:]]
    mb = [t for look in outcome.looks for t in look.tests if t.guardrail == "data_mb_per_device_month"]
    assert all(t.status != "breach" for t in mb)
    at_canary = [t for look in outcome.looks if look.stage == "canary" for t in look.tests
                 if t.guardrail == "data_mb_per_device_month"]
    assert 0.45 < at_canary[-1].value < 0.7  # each canary device downloaded the 0.5 MB once (plus offload traffic)
