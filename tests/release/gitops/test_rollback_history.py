"""Rollbacks that always act: a history deep enough for rollbacks in a row, and --to for the first release."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pipelines.core.errors import PipelineError
from pipelines.core.paths import PRODUCTION_FILE
from pipelines.fleet import actions
from pipelines.release.gitops.promote import promote, rollback
from pipelines.training.tracking import PRODUCTION_ALIAS, alias_version

from .conftest import MODEL, build_release, git, make_project, register_and_release, settings_of


def _state(project: Path) -> dict:
    return yaml.safe_load((project / PRODUCTION_FILE).read_text())


def test_two_rollbacks_in_a_row_walk_back_through_the_history(two_releases: Path):
    settings = settings_of(two_releases)
    promote(settings)
    assert register_and_release(two_releases, 0.87) == "3"
    state = _state(two_releases)
    assert [p["version"] for p in state["history"]] == ["2", "1"] and state["previous"]["version"] == "2"
    first = rollback(settings)
    assert (first.from_version, first.to_version) == ("3", "2")
    assert [p["version"] for p in _state(two_releases)["history"]] == ["1"]
    second = rollback(settings)
    assert (second.from_version, second.to_version) == ("2", "1")
    assert _state(two_releases)["model"]["version"] == "1" and _state(two_releases)["previous"] is None
    assert alias_version(settings, MODEL, PRODUCTION_ALIAS) == "1"
    assert git(two_releases, "status", "--porcelain") == ""
    with pytest.raises(PipelineError, match=r"^deploy/production.yaml: no previous release recorded; pass --to VERSION$"):
        rollback(settings)


@pytest.fixture
def first_deployment(tmp_path: Path) -> Path:
    """Release 1 published but never deployed; release 2 is the first production.yaml (previous: null)."""
    from pipelines.training.tracking import log_training_run

    project = make_project(tmp_path / "project")
    stand_in = tmp_path / "model-stand-in"
    stand_in.mkdir()
    (stand_in / "note.txt").write_text("model stand-in\n")
    record = log_training_run(settings_of(project), {"loss": [0.5]}, stand_in, {"git_commit": "test"})
    build_release(project, record["model_version"], accuracy=0.84, run_id=record["run_id"])
    assert register_and_release(project, 0.86, trust_key=True) == "2"
    assert _state(project)["previous"] is None
    return project


def test_the_first_release_rolls_back_with_to(first_deployment: Path):
    settings = settings_of(first_deployment)
    with pytest.raises(PipelineError, match=r"^deploy/production.yaml: no previous release recorded; pass --to VERSION$"):
        actions.act(settings, "rollback", "| table |", ["crash_rate: breached"])
    done = actions.act(settings, "rollback", "| table |", ["crash_rate: breached"], to="1")
    assert (done.kind, done.to, done.branch) == ("rollback", "1", f"rollback/{MODEL}-2-to-1")
    restored = yaml.safe_load(git(first_deployment, "show", f"{done.branch}:{PRODUCTION_FILE}"))
    assert restored["model"]["version"] == "1" and restored["model"]["release"] == f"releases/{MODEL}/1"
    assert restored["stage"] == settings.params.release.rollout.stages[-1].name  # the whole fleet
    assert "never production here" in git(first_deployment, "log", "-1", "--format=%B", done.branch)


def test_to_an_unknown_version_is_one_line(first_deployment: Path):
    with pytest.raises(PipelineError, match=r"^deploy/production.yaml: version 9 was never production on this "
                                            r"branch and no published release under releases/adult-income holds it$"):
        rollback(settings_of(first_deployment), to="9")
