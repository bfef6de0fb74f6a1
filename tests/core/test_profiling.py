"""`run --profile`: each step's profile, its import time and hot spots, on one page."""
from __future__ import annotations

import sys
import time
from pathlib import Path

from pipelines.core.profiling import profiled, step_profile, write_report


def _busy() -> int:
    import xml.dom.minidom  # noqa: F401  (a first import the profile must count)

    deadline = time.process_time() + 0.2
    total = 0
    while time.process_time() < deadline:
        total += sum(i * i for i in range(1000))
    return total


def test_a_profiled_step_reports_wall_cpu_imports_and_its_hot_function(tmp_path: Path):
    for name in [m for m in sys.modules if m == "xml" or m.startswith("xml.")]:
        sys.modules.pop(name)
    assert profiled("busy_step", tmp_path, _busy) > 0
    figures = step_profile(tmp_path / "busy_step.prof")
    assert figures["cpu_s"] >= 0.2 and figures["wall_s"] >= figures["import_s"] > 0
    assert any("_busy" in where for _, where in figures["top"])
    report = write_report(tmp_path, ["absent_step", "busy_step"]).read_text()
    assert "| busy_step |" in report and "## busy_step" in report and "absent_step" not in report


def test_a_step_that_holds_200_mib_shows_it_as_its_peak_not_the_runs(tmp_path: Path):
    import numpy as np

    def hold() -> int:
        block = np.ones(200 * 2**20 // 8)  # 200 MiB, touched, then freed when the step ends
        return int(block[-1])

    profiled("big_step", tmp_path, hold)
    profiled("small_step", tmp_path, lambda: 1)
    big, small = step_profile(tmp_path / "big_step.prof"), step_profile(tmp_path / "small_step.prof")
    assert big["peak_rss_mib"] - big["rss_before_mib"] >= 190
    assert small["peak_rss_mib"] - small["rss_before_mib"] < 50  # the mark was reset: not the big step's peak
    assert "| big_step |" in write_report(tmp_path, ["big_step", "small_step"]).read_text()
