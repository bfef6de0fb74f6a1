"""Each stage imports only what it uses. TensorFlow, coremltools, Great Expectations, MLflow, scikit-learn, SciPy
and matplotlib each cost from half a second to several seconds of start-up in every DVC stage process, so they are
imported inside the steps that need them. Each stage runs here in a process of its own, as `dvc repro` runs it
(`mobile-mlops stage NAME`), and the test reads sys.modules when it ends."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.catalog import GROUPS, STAGES

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("tensorflow", "keras", "coremltools", "great_expectations", "mlflow", "sklearn", "scipy", "matplotlib")
FRAMEWORKS = {"tensorflow", "keras", "coremltools"}  # a model's framework: only training and conversion need one

# Data-only stages, run for real: stage -> the heavy libraries it may import (the rest of HEAVY it must not).
DATA_STAGES = {
    "raw_dataset": set(),
    "validated_dataset": {"great_expectations", "scipy"},  # Great Expectations imports scipy.stats itself
    "data_drift": {"matplotlib"},  # the PSI plot; scipy only with a reference release to compare with
    "dataset_splits": {"sklearn", "scipy"},  # scikit-learn imports SciPy
}
# Stages after training that read reports and models as files: stage -> what they must not import.
LATER_STAGES = {
    "model_evaluation": FRAMEWORKS | {"great_expectations"},  # trained_model saved the Keras probabilities
    "offload_policy": FRAMEWORKS | {"great_expectations"},
    "fairness_tradeoff": FRAMEWORKS | {"great_expectations"},
    "fairness_report": FRAMEWORKS | {"great_expectations"},  # the TFLite variants run in LiteRT
    "feature_importance": FRAMEWORKS | {"great_expectations"},
    "footprint_report": FRAMEWORKS | {"great_expectations"},
    "model_card": FRAMEWORKS | {"great_expectations", "mlflow"},
    "finops_report": FRAMEWORKS | {"great_expectations"},  # it logs its cost metrics to the MLflow run
    "release_candidate": FRAMEWORKS | {"great_expectations"},  # it links the MLflow run and model version
}
# Importing any group's steps module (what `mobile-mlops stage` does before the step runs) imports none of these.
AT_IMPORT = {"tensorflow", "keras", "coremltools", "great_expectations", "mlflow", "matplotlib"}

STAGE_CHILD = """
import sys
from cli.main import main
code = main(["stage", sys.argv[1], "--params", sys.argv[2]])
print("imported:" + ",".join(m for m in sys.argv[3].split(",") if m in sys.modules))
sys.exit(code)
"""
IMPORT_CHILD = """
import sys
from pipelines.catalog import STAGES, step_function
step_function(next(name for name, stage in STAGES.items() if stage.group == sys.argv[1]))
print("imported:" + ",".join(m for m in sys.argv[2].split(",") if m in sys.modules))
"""


def _child(code: str, *args: str, cwd: Path = REPO) -> set[str]:
    """Run `code` in a fresh interpreter on this checkout; the heavy modules it had imported when it ended."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          check=False, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    line = done.stdout.strip().splitlines()[-1]
    assert line.startswith("imported:"), done.stdout[-2000:]
    return {m for m in line.removeprefix("imported:").split(",") if m}


def run_stage(name: str, params: Path) -> set[str]:
    """`mobile-mlops stage NAME` in a process of its own; the heavy modules it imported."""
    return _child(STAGE_CHILD, name, str(params), ",".join(HEAVY), cwd=params.parent)


def test_the_tables_name_real_stages():
    assert set(DATA_STAGES) == {name for name, stage in STAGES.items() if stage.group == "data"}
    assert set(LATER_STAGES) <= set(STAGES)


@pytest.mark.parametrize("group", [g for g in GROUPS if any(s.group == g for s in STAGES.values())])
def test_step_modules_import_no_heavy_library(group: str):
    imported = _child(IMPORT_CHILD, group, ",".join(sorted(AT_IMPORT)))
    assert not imported, f"importing pipelines.{group}.steps imports {sorted(imported)}: import them in the steps"


def test_data_stages_import_only_what_they_use(small_project: Path):
    """Each data-only stage in its own process, in pipeline order, as `dvc repro` runs them; no TensorFlow."""
    params = small_project / "params.yaml"
    for name, uses in DATA_STAGES.items():
        imported = run_stage(name, params)
        assert not imported & FRAMEWORKS, f"{name} imported {sorted(imported & FRAMEWORKS)}"
        assert imported <= uses, f"{name} imported {sorted(imported - uses)}, which it does not use"


@pytest.mark.slow
def test_later_stages_import_no_model_framework(small_project: Path):
    """The stages after training that only read files: each alone, after a run of the whole pipeline."""
    params = small_project / "params.yaml"
    code = ("import sys\nfrom pipelines.catalog import STAGES, step_function\nfrom pipelines.core.config import "
            "load_settings\nsettings = load_settings(sys.argv[1])\nfor name in STAGES:\n    step_function(name)(settings)\n"
            "print('imported:')")
    _child(code, str(params), cwd=small_project)
    for name, forbidden in LATER_STAGES.items():
        imported = run_stage(name, params)
        assert not imported & forbidden, f"{name} imported {sorted(imported & forbidden)}"
