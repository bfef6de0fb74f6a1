"""Drift: PSI arithmetic, KS / chi-squared verdicts, reference lookup, blocking vs warning."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from pipelines.catalog import step_function
from pipelines.core.config import DriftConfig, RolloutConfig, load_settings
from pipelines.core.errors import PipelineError
from pipelines.core.paths import RELEASE_PROFILE_FILE as PROFILE_FILE
from pipelines.data.drift import compare, prediction_drift, profile_frame, psi
from pipelines.data.reference import find_reference
from pipelines.data.steps import data_drift
from pipelines.release.gitops.deploy import render
from pipelines.release_format.deployment import Deployment, ModelRef

CONFIG = DriftConfig()


def frame(n: int, shift: float = 0.0, seed: int = 0, women: float = 0.5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "age": rng.normal(40 + shift, 10, n),
        "sex": pd.array(np.where(rng.random(n) < women, "Female", "Male"), dtype="string"),
    })


def test_psi_known_answer():
    expected, actual = np.array([0.5, 0.5]), np.array([0.25, 0.75])
    answer = (0.25 - 0.5) * math.log(0.25 / 0.5) + (0.75 - 0.5) * math.log(0.75 / 0.5)
    assert psi(expected, actual) == pytest.approx(answer)
    assert psi(expected, expected) == 0.0


def test_same_distribution_does_not_drift():
    reference = profile_frame(frame(5000, seed=1), ["age", "sex"])
    result = compare(reference, frame(5000, seed=2), CONFIG)
    assert not result["drift"], result
    assert result["features"]["age"]["test"] == "ks" and result["features"]["sex"]["test"] == "chi2"
    assert result["features"]["age"]["psi"] < 0.05


def test_shifted_numeric_and_categorical_drift():
    reference = profile_frame(frame(5000, seed=1), ["age", "sex"])
    result = compare(reference, frame(5000, shift=15, seed=2, women=0.9), CONFIG)
    assert result["drift"] and set(result["drifted"]) == {"age", "sex"}
    assert result["features"]["age"]["p_value"] < 1e-6
    assert result["features"]["sex"]["psi"] > CONFIG.psi_threshold


def test_unseen_category_and_missing_column_are_reported():
    reference = profile_frame(frame(2000, seed=1), ["age", "sex"])
    new = frame(2000, seed=2)
    new["sex"] = pd.array(["Other"] * 2000, dtype="string")
    result = compare(reference, new.drop(columns=["age"]), CONFIG)
    assert result["features"]["sex"]["unseen"] == ["Other"]
    assert result["features"]["age"]["test"] == "missing" and result["features"]["age"]["drifted"]


def test_tiny_significant_shift_needs_an_effect_to_count():
    reference = profile_frame(frame(200_000, seed=1), ["age"])
    result = compare(reference, frame(200_000, shift=1.5, seed=2), DriftConfig(sample_rows=200_000))
    age = result["features"]["age"]
    assert age["p_value"] < CONFIG.p_value and age["psi"] < CONFIG.min_effect and not age["drifted"]


def test_prediction_drift():
    rng = np.random.default_rng(0)
    reference = np.quantile(rng.beta(2, 5, 5000), np.linspace(0, 1, 1000)).tolist()
    assert not prediction_drift(reference, rng.beta(2, 5, 5000), CONFIG)["drifted"]
    assert prediction_drift(reference, rng.beta(5, 2, 5000), CONFIG)["drifted"]


def _project(tmp_path: Path, drift: dict | None = None) -> Path:
    params = {"data": {"source": "d.csv", "label": "income", "positive_label": ">50K", "sensitive_features": ["sex"]},
              "drift": drift or {}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    (tmp_path / "data/prepared").mkdir(parents=True)
    frame(3000, seed=3).to_parquet(tmp_path / "data/prepared/validated.parquet")
    return tmp_path


def _release(project: Path, version: str, data: pd.DataFrame) -> Path:
    folder = project / "releases/adult-income" / version
    folder.mkdir(parents=True)
    (folder / PROFILE_FILE).write_text(json.dumps(profile_frame(data, ["age", "sex"])))
    return folder


def test_reference_lookup_order(tmp_path: Path):
    project = _project(tmp_path)
    settings = load_settings(project / "params.yaml")
    assert find_reference(settings)[0] is None
    _release(project, "2", frame(100))
    _release(project, "10", frame(100))
    folder, why = find_reference(settings)
    assert folder.name == "10" and "previous release candidate" in why  # numeric, not text, order
    (project / "deploy").mkdir()
    deployed = Deployment(model=ModelRef(name="adult-income", version="2", release="releases/adult-income/2",
                                         mlflow_run_id="run", signer="key"), artifacts={}, rollout=RolloutConfig())
    (project / "deploy/production.yaml").write_text(render(deployed))
    folder, why = find_reference(settings)
    assert folder.name == "2" and why.startswith("production release 2")


def test_no_reference_passes_and_says_why(tmp_path: Path):
    result = data_drift(load_settings(_project(tmp_path) / "params.yaml"))
    assert result.summary["drift"] is False and result.summary["reason"].startswith("no reference")
    assert (tmp_path / "reports/drift.png").stat().st_size > 1000


def test_drift_blocks_or_warns_per_params(tmp_path: Path):
    project = _project(tmp_path)
    _release(project, "1", frame(3000, shift=20, seed=4))
    with pytest.raises(PipelineError, match=r"^gate drift_gate failed on data_drift: drift: 1 feature\(s\) drifted "
                                            r"against .*releases/adult-income/1: age"):
        step_function("data_drift")(load_settings(project / "params.yaml"))  # the step, then its gate
    report = json.loads((project / "reports/drift.json").read_text())
    assert report["drifted"] == ["age"] and report["features"]["age"]["drifted"]
    warn = load_settings(project / "params.yaml", {"drift.blocking": False})
    assert step_function("data_drift")(warn).summary["drift"] is True  # reported, not raised
    with pytest.raises(PipelineError, match="drift.reference: .* has no reference_profile.json"):
        data_drift(load_settings(project / "params.yaml", {"drift.reference": "elsewhere"}))


def test_a_release_with_another_feature_schema_is_no_reference(tmp_path: Path):
    project = _project(tmp_path)
    folder = project / "releases/adult-income/1"
    folder.mkdir(parents=True)
    other = frame(3000, seed=4).rename(columns={"age": "years"})  # another feature schema
    (folder / PROFILE_FILE).write_text(json.dumps(profile_frame(other, ["years", "sex"])))
    result = data_drift(load_settings(project / "params.yaml"))
    assert result.summary["drift"] is False and result.summary["reference"] == "none"
    assert result.summary["reason"] == ("no comparable reference: 1 has another feature schema "
                                        "(missing today: years; new today: age)")
