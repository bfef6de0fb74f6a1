"""Promotion after merge and rollback by revert, on a real git repo with a real SQLite MLflow store."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pipelines.core.errors import PipelineError
from pipelines.core.paths import PRODUCTION_FILE
from pipelines.release.gitops.promote import promote, rollback
from pipelines.training.tracking import PRODUCTION_ALIAS, alias_version, tracking_uri

from .conftest import MODEL, git, settings_of


def test_promote_sets_the_production_alias_and_reports_the_previous(two_releases: Path):
    settings = settings_of(two_releases)
    assert alias_version(settings, MODEL, PRODUCTION_ALIAS) == "1"
    done = promote(settings)
    assert (done.version, done.previous) == ("2", "1")
    assert alias_version(settings, MODEL, PRODUCTION_ALIAS) == "2"


def test_rollback_commits_the_previous_production_yaml_and_moves_the_alias_back(two_releases: Path):
    settings = settings_of(two_releases)
    promote(settings)
    v1_state = git(two_releases, "show", f"main~1:{PRODUCTION_FILE}")  # main~1: the merge that deployed v1
    before = git(two_releases, "rev-parse", "HEAD")
    done = rollback(settings)
    assert (done.from_version, done.to_version, done.branch) == ("2", "1", "main")
    assert git(two_releases, "rev-parse", "HEAD^") == before
    assert git(two_releases, "log", "-1", "--format=%s") == f"Roll back {MODEL} to v1 (from v2)"
    assert git(two_releases, "show", "--name-only", "--format=", "HEAD") == PRODUCTION_FILE
    assert (two_releases / PRODUCTION_FILE).read_text().strip() == v1_state
    assert git(two_releases, "status", "--porcelain") == ""
    assert alias_version(settings, MODEL, PRODUCTION_ALIAS) == "1"
    promote(settings)  # CI after the push: production.yaml and the alias agree
    assert alias_version(settings, MODEL, PRODUCTION_ALIAS) == "1"
    with pytest.raises(PipelineError, match="no previous release recorded; pass --to VERSION"):
        rollback(settings)
    assert rollback(settings, to="2").to_version == "2"  # forward again, explicitly
    assert alias_version(settings, MODEL, PRODUCTION_ALIAS) == "2"


def test_rollback_as_pull_request_leaves_main_and_alias(two_releases: Path):
    settings = settings_of(two_releases)
    promote(settings)
    head = git(two_releases, "rev-parse", "HEAD")
    done = rollback(settings, as_pull_request=True)
    assert done.branch == f"rollback/{MODEL}-2-to-1" and done.pull_request is not None
    assert git(two_releases, "rev-parse", "HEAD") == head
    assert git(two_releases, "rev-parse", f"{done.branch}^") == head
    assert "version: '1'" in git(two_releases, "show", f"{done.branch}:{PRODUCTION_FILE}")
    assert alias_version(settings, MODEL, PRODUCTION_ALIAS) == "2"


def test_promote_refuses_a_tampered_release_and_leaves_the_alias(two_releases: Path):
    settings = settings_of(two_releases)
    target = two_releases / "releases" / MODEL / "2" / "model_int8.tflite"
    target.write_bytes(target.read_bytes()[:-1])
    with pytest.raises(PipelineError, match="model_int8.tflite: sha256 differs from the manifest"):
        promote(settings)
    assert alias_version(settings, MODEL, PRODUCTION_ALIAS) == "1"


def test_promote_refuses_pins_that_differ_from_the_release(two_releases: Path):
    path = two_releases / PRODUCTION_FILE
    state = yaml.safe_load(path.read_text())
    state["artifacts"]["model_int8.tflite"] = "0" * 64
    path.write_text(yaml.safe_dump(state))
    with pytest.raises(PipelineError, match="deploy/production.yaml: artifact model_int8.tflite sha256 differs"):
        promote(settings_of(two_releases))
    state["model"]["version"] = "7"
    path.write_text(yaml.safe_dump(state))
    with pytest.raises(PipelineError, match="model.version is '7' but the release has '2'"):
        promote(settings_of(two_releases))


def test_promote_dry_run_and_unknown_mlflow_version(two_releases: Path):
    settings = settings_of(two_releases)
    assert promote(settings, dry_run=True).previous is None
    assert alias_version(settings, MODEL, PRODUCTION_ALIAS) == "1"
    import mlflow

    mlflow.MlflowClient(tracking_uri=tracking_uri(settings)).delete_model_version(MODEL, "2")
    with pytest.raises(PipelineError, match=f"model {MODEL} has no version 2"):
        promote(settings)


def test_rollback_refuses_local_edits_to_production_yaml(two_releases: Path):
    (two_releases / PRODUCTION_FILE).write_text((two_releases / PRODUCTION_FILE).read_text() + "# edited\n")
    with pytest.raises(PipelineError, match="has uncommitted changes"):
        rollback(settings_of(two_releases))


def test_promote_without_a_deployment(project: Path):
    with pytest.raises(PipelineError, match="deploy/production.yaml: not found; nothing is deployed yet"):
        promote(settings_of(project))
