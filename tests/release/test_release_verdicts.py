"""The release reads the gated stages' verdicts instead of judging again: a stopping or missing verdict refuses."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pipelines.catalog import verdicts_read
from pipelines.core.config import load_settings
from pipelines.core.errors import PipelineError
from pipelines.core.gates import GateResult
from pipelines.core.verdict import Outcome, write_verdict
from pipelines.release.steps import release_candidate


@pytest.fixture
def settings(tmp_path: Path):
    params = {"data": {"source": "none.csv", "label": "y", "positive_label": "1", "sensitive_features": ["sex"]}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    loaded = load_settings(tmp_path / "params.yaml")
    for stage in verdicts_read("release_candidate"):
        write_verdict(stage, {"gate": Outcome([GateResult("ok", True, 1.0, 0.0, "fine")])}, loaded)
    return loaded


def test_a_verdict_that_stopped_its_stage_stops_the_release_with_the_same_line(settings):
    line = "gate accuracy_gate failed on model_evaluation: test accuracy 0.8000 is below gates.keras.min_accuracy"
    failed = Outcome([GateResult("min_accuracy", False, 0.8, 0.99, "x")], description=line.split(": ", 1)[1])
    verdict = write_verdict("model_evaluation", {"accuracy_gate": failed}, settings)
    assert verdict["message"] == line
    with pytest.raises(PipelineError, match=f"^{line}$"):
        release_candidate(settings)
    assert not (settings.root / "build").exists() and not (settings.root / "releases").exists()


def test_a_failed_warning_only_gate_does_not_stop_the_release_before_its_files(settings):
    warning = Outcome([GateResult("max_monthly_usd", False, 250.0, 100.0, "over")], blocking=False)
    write_verdict("finops_report", {"budget_gate": warning}, settings)
    with pytest.raises(FileNotFoundError):  # past the verdicts: it goes on to read the reports (absent here)
        release_candidate(settings)


def test_a_missing_verdict_is_one_line_naming_the_stage_to_run(settings):
    (settings.root / "reports/gates/fairness_report.json").unlink()
    with pytest.raises(PipelineError, match="^reports/gates/fairness_report.json: not found; run the fairness_report "
                                            "stage first$"):
        release_candidate(settings)
