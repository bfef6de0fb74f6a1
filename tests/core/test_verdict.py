"""The step wrapper judges a stage's gates right after its step and writes the verdict file downstream stages read."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from pipelines.core.config import load_settings
from pipelines.core.errors import PipelineError
from pipelines.core.gates import GateResult
from pipelines.core.step import StepResult
from pipelines.core.verdict import (
    GateFailed,
    Outcome,
    gated,
    read_verdict,
    require_passed,
    results,
)


@pytest.fixture
def settings(tmp_path: Path):
    params = {"data": {"source": "none.csv", "label": "y", "positive_label": "1", "sensitive_features": ["sex"]}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    return load_settings(tmp_path / "params.yaml")


def _step(settings) -> StepResult:
    return StepResult(summary={"rows": 3})


def _accuracy(figure: float, limit: float = 0.9):
    def gate(settings) -> Outcome:
        passed = figure >= limit
        return Outcome([GateResult("min_accuracy", passed, figure, limit,
                                   f"test accuracy {figure:.4f} {'meets' if passed else 'is below'} {limit:.4f}")])
    return gate


def _warn(settings) -> Outcome:
    return Outcome([GateResult("max_usd", False, 250.0, 100.0, "cost $250 over $100")], blocking=False,
                   description="cost $250 over $100 (warning)", tables={"t": "| a |"}, facts={"count": 2})


def test_the_verdict_file_holds_every_gate_with_figure_limit_detail_passed_and_blocking(settings):
    result = gated("model_evaluation", _step, [("accuracy_gate", _accuracy(0.95), False),
                                               ("budget_gate", _warn, False)])(settings)
    assert result.summary == {"rows": 3}  # a warning stops nothing
    written = json.loads((settings.root / "reports/gates/model_evaluation.json").read_text())
    assert written == {
        "schema": 1, "stage": "model_evaluation", "passed": False, "stops": False, "message": None,
        "checks": [
            {"name": "accuracy_gate", "passed": True, "blocking": True, "description": "all gates passed",
             "gates": [{"name": "min_accuracy", "figure": 0.95, "limit": 0.9, "detail": "test accuracy 0.9500 meets "
                        "0.9000", "passed": True, "blocking": True}], "tables": {}, "facts": {}, "plots": {}},
            {"name": "budget_gate", "passed": False, "blocking": False, "description": "cost $250 over $100 (warning)",
             "gates": [{"name": "max_usd", "figure": 250.0, "limit": 100.0, "detail": "cost $250 over $100",
                        "passed": False, "blocking": False}], "tables": {"t": "| a |"}, "facts": {"count": 2},
             "plots": {}}]}
    verdict = read_verdict(settings.root, "model_evaluation")
    assert [g.name for g in results(verdict, blocking=True)] == ["min_accuracy"]
    assert [g.name for g in results(verdict, blocking=False)] == ["max_usd"]
    require_passed([verdict])


def test_a_failed_blocking_gate_stops_after_the_step_with_one_line(settings):
    with pytest.raises(GateFailed) as stopped:
        gated("model_evaluation", _step, [("accuracy_gate", _accuracy(0.8), False)])(settings)
    line = "gate accuracy_gate failed on model_evaluation: test accuracy 0.8000 is below 0.9000"
    assert str(stopped.value) == line and isinstance(stopped.value, PipelineError)
    assert stopped.value.result.summary == {"rows": 3}  # the step ran: Dagster records it with its failed check
    verdict = read_verdict(settings.root, "model_evaluation")
    assert verdict["stops"] and verdict["message"] == line and not verdict["checks"][0]["gates"][0]["passed"]
    with pytest.raises(PipelineError, match=f"^{line}$"):  # downstream reads the same line
        require_passed([verdict])


def test_a_failed_step_leaves_no_verdict_unless_a_gate_judges_the_failure(settings):
    gated("model_evaluation", _step, [("accuracy_gate", _accuracy(0.95), False)])(settings)

    def broken(settings) -> StepResult:
        raise PipelineError("data.source: file not found")

    with pytest.raises(PipelineError, match="^data.source: file not found$"):
        gated("model_evaluation", broken, [("accuracy_gate", _accuracy(0.95), False)])(settings)
    with pytest.raises(PipelineError, match=r"^reports/gates/model_evaluation.json: not found; run the "
                                            r"model_evaluation stage first$"):
        read_verdict(settings.root, "model_evaluation")  # the earlier verdict is gone with the failed run
    with pytest.raises(GateFailed, match="^gate expectations failed on validated_dataset: test accuracy 0.1000"):
        gated("validated_dataset", broken, [("expectations", _accuracy(0.1), True)])(settings)
    assert read_verdict(settings.root, "validated_dataset")["stops"]

    def unreadable(settings) -> Outcome:
        raise PipelineError("reports/validation.json: not found")

    with pytest.raises(PipelineError, match="^data.source: file not found$"):  # the step's own error, not the gate's
        gated("validated_dataset", broken, [("expectations", unreadable, True)])(settings)


def test_a_verdict_of_another_stage_or_format_is_refused(settings):
    gated("model_evaluation", _step, [("accuracy_gate", _accuracy(0.95), False)])(settings)
    path = settings.root / "reports/gates/model_evaluation.json"
    path.rename(settings.root / "reports/gates/tflite_model.json")
    with pytest.raises(PipelineError, match="^reports/gates/tflite_model.json: not a verdict of stage tflite_model"):
        read_verdict(settings.root, "tflite_model")


def test_a_stage_without_gates_runs_its_step_unchanged(settings):
    assert gated("raw_dataset", _step, []) is _step
