"""Federated training traffic as a FinOps figure: cellular MB per device per round, by hand."""
from __future__ import annotations

import pytest

from pipelines.core.config import FinopsConfig
from pipelines.finops.cost import federated_training


def test_cellular_mb_per_device_round_by_hand():
    facts = {"method": "federated", "rounds": 20, "devices": 10, "sampled_per_round": 5,
             "traffic": {"mb_per_device_round": 0.06, "mean_bytes_up_per_device_round": 30_000.0,
                         "mean_bytes_down_per_device_round": 30_000.0}}
    finops = FinopsConfig.model_validate({"fleet": {"cellular_share": 0.3, "updates_per_month": 2}})
    figure = federated_training(facts, finops)
    assert figure["cellular_mb_per_device_round"] == pytest.approx(0.06 * 0.3)
    assert figure["expected_rounds_per_device"] == pytest.approx(10)  # half the devices each of 20 rounds
    assert figure["mb_per_device_per_training_run"] == pytest.approx(0.6)
    assert figure["cellular_mb_per_device_per_month"] == pytest.approx(0.6 * 0.3 * 2)
    assert federated_training({"method": "dp_sgd"}, finops) is None and federated_training(None, finops) is None
