"""`mobile-mlops bench --quick` runs every benchmark at a tiny size and writes well-formed JSON."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.run import main

pytestmark = pytest.mark.slow


def test_quick_bench_writes_every_section(tmp_path: Path):
    out = main(quick=True, root=tmp_path)
    result = json.loads(out.read_text())
    assert result["mode"] == "quick"
    assert {"cpu", "cores", "memory_gib", "versions"} <= set(result["machine"])
    assert result["end_to_end"]["wall_s"] > 0 and result["end_to_end"]["steps_s"]
    over = result["overhead"]
    assert set(over["median_s"]) >= {"plain", "dagster"} and "dagster/plain" in over["ratios"]
    assert all(len(runs) == 3 for runs in over["runs"].values() if runs)  # each way three times, interleaved
    assert all(over["min_s"][k] <= over["median_s"][k] <= over["max_s"][k] for k in over["median_s"])
    noop = result["noop"]
    assert noop["stale"] == [] and noop["trainings_executed"] == 0 and noop["training_cpu_s"] == 0.0
    sizes = result["scale"]["sizes"]
    assert [s["rows"] for s in sizes] == [500, 2000]
    assert all(s["max_rss_mb"] > 0 and s["wall_s"] > 0 for s in sizes) and "time_growth" in sizes[1]
    assert "tflite" in result["variants"]
    assert not (tmp_path / "docs" / "benchmarks.md").exists()  # quick runs never overwrite the page
