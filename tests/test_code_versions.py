"""A stage's code version (and its DVC code deps) covers the modules its step function imports, transitively: an
edit changes the code version of exactly the stages that can run the edited file. Each test edits a real file in
a copy of the project and compares code versions before and after."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from pipelines import catalog, code_versions
from pipelines.core.config import load_settings

REPO = Path(__file__).resolve().parents[1]
DVC_STAGES = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]

SETTINGS = load_settings(REPO / "params.yaml")


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    """The project's code and params in a temp folder, to edit a module without touching the repo."""
    shutil.copytree(REPO / "pipelines", tmp_path / "pipelines", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(REPO / "params.yaml", tmp_path / "params.yaml")
    return tmp_path


def _versions(root: Path) -> dict[str, str]:
    settings = load_settings(root / "params.yaml")
    return {name: code_versions.stage_code_version(name, settings, root) for name in catalog.STAGES}


def _edited(root: Path, *modules: str) -> set[str]:
    """The stages whose code version changes when a line is added to each of `modules` (paths under root)."""
    before = _versions(root)
    for module in modules:
        path = root / module
        path.write_text(path.read_text() + "\n# one changed line\n")
    after = _versions(root)
    return {name for name in catalog.STAGES if before[name] != after[name]}


def _covering(module: str) -> set[str]:
    """The stages whose committed dvc.yaml code deps list `module`."""
    return {name for name, stage in DVC_STAGES.items() if module in stage["deps"]}


def test_editing_a_fleet_module_changes_no_data_or_training_stage(project_copy: Path):
    fleet = sorted(str(p.relative_to(project_copy)) for p in (project_copy / "pipelines" / "fleet").rglob("*.py"))
    assert len(fleet) > 5
    changed = _edited(project_copy, *fleet)
    assert not {n for n in changed if catalog.STAGES[n].group in ("data", "training")}
    assert not {n for module in fleet for n in _covering(module) if catalog.STAGES[n].group in ("data", "training")}


def test_editing_split_changes_dataset_splits_and_its_downstream_only(project_copy: Path):
    changed = _edited(project_copy, "pipelines/data/split.py")
    assert "dataset_splits" in changed
    assert changed <= catalog.downstream({"dataset_splits"})
    assert not changed & {"raw_dataset", "validated_dataset", "data_drift"}
    assert {"trained_model", "model_evaluation"} <= changed  # they read the splits with load_split
    assert _covering("pipelines/data/split.py") == changed  # `dvc status` names the same stages


def test_editing_a_step_module_changes_the_stages_it_holds_and_those_whose_code_imports_it(project_copy: Path):
    changed = _edited(project_copy, "pipelines/governance/steps.py")
    assert changed == {n for n, s in catalog.STAGES.items() if s.group == "governance"} == {
        "fairness_tradeoff", "fairness_report", "feature_importance", "model_card"}
    assert _covering("pipelines/governance/steps.py") == changed


def test_a_helper_only_one_step_function_imports_changes_that_stage_alone(project_copy: Path):
    changed = _edited(project_copy, "pipelines/mobile/coreml_reference.py")  # imported inside coreml_model
    assert changed == {"coreml_model"}
    assert _covering("pipelines/mobile/coreml_reference.py") == changed


def test_editing_core_config_changes_every_stage(project_copy: Path):
    assert _edited(project_copy, "pipelines/core/config.py") == set(catalog.STAGES)


def test_dvc_code_deps_are_the_files_the_code_version_hashes():
    for name in catalog.STAGES:
        deps = [d for d in DVC_STAGES[name]["deps"] if d.startswith("pipelines/")]
        assert deps == code_versions.code_deps(name), name
        assert deps == [f.relative_to(REPO).as_posix() for f in code_versions.stage_files(name)], name
        assert f"pipelines/{catalog.STAGES[name].group}/steps.py" in deps


def test_partitioned_and_post_release_assets_version_the_code_their_steps_run(project_copy: Path):
    def version() -> tuple[str, str]:
        return (code_versions.stage_code_version("daily_batch", SETTINGS, root=project_copy),
                code_versions.stage_code_version("fleet_telemetry", SETTINGS, root=project_copy))

    batch, telemetry = version()
    canary = project_copy / "pipelines" / "fleet" / "canary.py"
    canary.write_text(canary.read_text() + "\n# one changed line\n")
    assert version() == (batch, telemetry)  # fleet_telemetry does not run the canary analysis
    store = project_copy / "pipelines" / "fleet" / "store.py"
    store.write_text(store.read_text() + "\n# one changed line\n")
    assert version()[0] == batch and version()[1] != telemetry


def test_an_unknown_step_function_is_named(project_copy: Path):
    with pytest.raises(KeyError, match="no function nothing"):
        code_versions.functions_files(("pipelines.data.steps.nothing",), root=project_copy)
