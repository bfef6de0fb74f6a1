"""Hybrid offload: the delta grid on a hand-checked example, and how the delta is chosen."""
from __future__ import annotations

import numpy as np
import pytest

from pipelines.core.config import OffloadConfig
from pipelines.core.errors import PipelineError
from pipelines.finops.offload import app_config, choose_delta, offload_grid

# Five rows. The device is wrong on rows 1 and 2 (both near the threshold); the cloud is right on all.
DEVICE = np.array([0.90, 0.55, 0.45, 0.20, 0.62])
CLOUD = np.array([0.95, 0.30, 0.70, 0.10, 0.80])
TRUTH = np.array([1, 0, 1, 0, 1])


def test_grid_known_answer():
    grid = {r["delta"]: r for r in offload_grid(DEVICE, CLOUD, TRUTH, 0.5, [0.1, 0.0, 0.06, 0.2], 1000)}
    assert list(grid) == [0.0, 0.06, 0.1, 0.2]
    assert grid[0.0]["offload_rate"] == 0 and grid[0.0]["hybrid_accuracy"] == pytest.approx(3 / 5)
    # |p - 0.5| = 0.40, 0.05, 0.05, 0.30, 0.12: delta 0.06 and 0.1 offload rows 1 and 2, delta 0.2 also row 4
    assert grid[0.06]["offload_rate"] == pytest.approx(2 / 5) and grid[0.06]["hybrid_accuracy"] == 1.0
    assert grid[0.1] == grid[0.06] | {"delta": 0.1}
    assert grid[0.2]["offload_rate"] == pytest.approx(3 / 5) and grid[0.2]["hybrid_accuracy"] == 1.0
    assert grid[0.2]["requests_per_1k"] == pytest.approx(600) and grid[0.2]["cloud_requests_per_day"] == pytest.approx(600)


def test_smallest_delta_reaching_the_target_is_chosen():
    grid = offload_grid(DEVICE, CLOUD, TRUTH, 0.5, [0.0, 0.06, 0.1, 0.2], 1000)
    chosen = choose_delta(grid, OffloadConfig(), cloud_accuracy=1.0)  # default target: the cloud's accuracy
    assert chosen["delta"] == 0.06 and chosen["target_met"] and chosen["accuracy_target"] == 1.0
    assert choose_delta(grid, OffloadConfig(accuracy_target=0.5), 1.0)["delta"] == 0.0


def test_fixed_delta_wins_and_unreached_targets_are_flagged():
    grid = offload_grid(DEVICE, CLOUD, TRUTH, 0.5, [0.0, 0.06, 0.2], 1000)
    fixed = choose_delta(grid, OffloadConfig(delta=0.2), 1.0)
    assert fixed["delta"] == 0.2 and fixed["how"] == "fixed by offload.delta"
    with pytest.raises(PipelineError, match="offload.delta: 0.3 was not evaluated"):
        choose_delta(grid, OffloadConfig(delta=0.3), 1.0)
    short = offload_grid(DEVICE, CLOUD, TRUTH, 0.5, [0.0, 0.01], 1000)
    best = choose_delta(short, OffloadConfig(), 1.0)
    assert best["delta"] == 0.0 and best["target_met"] is False  # tie at 0.6: the smaller delta


def test_app_config_says_what_the_app_does():
    grid = offload_grid(DEVICE, CLOUD, TRUTH, 0.5, [0.06], 1000)
    config = app_config(choose_delta(grid, OffloadConfig(), 1.0), 0.5, "model_int8.tflite", {"name": "m", "version": "3"})
    assert config["device_model"] == "model_int8.tflite" and config["delta"] == 0.06 and config["threshold"] == 0.5
    assert "abs(p - threshold) < delta" in config["rule"]
    assert config["expected"]["offload_rate"] == pytest.approx(0.4)
