"""The fairness check reads the fairness report and params, and says which model, grouping and group failed."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from assets.checks import gate_checks
from assets.resources import SettingsResource
from pipelines.catalog import judge
from pipelines.core.config import load_settings
from pipelines.core.io import write_json
from pipelines.core.paths import ArtifactPaths
from pipelines.governance.fairness import evaluate_models


def _project(root: Path, keras: np.ndarray) -> SettingsResource:
    params = {"data": {"source": "none.csv", "label": "y", "positive_label": "1", "sensitive_features": ["sex"]},
              "fairness": {"bootstrap": 20},
              "gates": {"fairness": {"max_demographic_parity_difference": 0.1, "min_group_size": 30}}}
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    settings = load_settings(root / "params.yaml")
    sex = pd.DataFrame({"sex": ["F"] * 100 + ["M"] * 100 + ["X"] * 5})
    y = np.tile([0, 1], 103)[:205]
    report = evaluate_models(y, {"keras": keras, "int8": keras}, sex, settings.params.fairness, 0.5,
                             settings.params.gates.fairness.min_group_size)
    write_json(ArtifactPaths(root).fairness_report, report)
    return SettingsResource(params_path=str(root / "params.yaml"))


def fairness_gate(settings):
    """The fairness_report stage's verdict, as its step wrapper writes it, and the Dagster check built from it."""
    judge("fairness_report", settings)
    (check,) = gate_checks("fairness_report", settings.root)
    return check


def test_check_fails_naming_the_groups_and_lists_the_flagged_ones(tmp_path: Path):
    biased = np.array([0.1] * 100 + [0.9] * 105)
    result = fairness_gate(_project(tmp_path, biased).load())
    assert not result.passed
    assert result.description.startswith("sex: demographic parity difference 1.0000 (keras CI [1.0000, 1.0000]) "
                                          "exceeds gates.fairness.max_demographic_parity_difference = ")
    detail = result.metadata["detail"].value  # every model's own line; the description is one compact line
    assert "keras sex: demographic parity difference 1.0000 (selection rate M 1.000 vs F 0.000" in detail
    assert "sex=X (5)" in result.metadata["flagged groups"].value
    assert "| max_demographic_parity_difference[int8/sex] |" in result.metadata["every model"].value
    assert "| fair_variants[tflite] | 0.0000 | 1.0000 | FAIL |" in result.metadata["gates"].value


def test_check_passes_and_still_reports_small_groups(tmp_path: Path):
    result = fairness_gate(_project(tmp_path, np.full(205, 0.2)).load())
    assert result.passed
    assert result.description.startswith("all gates passed; 1 group(s) under 30 test rows")


def test_an_unfair_variant_is_excluded_and_the_gate_passes_while_another_is_fair(tmp_path: Path):
    fair, biased = np.full(205, 0.2), np.array([0.1] * 100 + [0.9] * 105)
    settings = _project(tmp_path, fair).load()
    sex = pd.DataFrame({"sex": ["F"] * 100 + ["M"] * 100 + ["X"] * 5})
    report = evaluate_models(np.tile([0, 1], 103)[:205], {"keras": fair, "int8": biased, "float16": fair}, sex,
                             settings.params.fairness, 0.5, 30)
    write_json(ArtifactPaths(tmp_path).fairness_report, report)
    result = fairness_gate(settings)
    assert result.passed
    assert "tflite: 1 of 2 variants meet gates.fairness; not releasable: int8" in result.description
    assert "| max_demographic_parity_difference[int8/sex] | 1.0000 | 0.1000 | FAIL |" in \
        result.metadata["every model"].value
