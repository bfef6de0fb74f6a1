"""MLflow versions and releases: `candidate` moves only to a published release; a version whose run stopped
before publishing is tagged as never released on the next registration (a real SQLite MLflow store)."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pipelines.core.config import Settings, load_settings
from pipelines.training.tracking import (
    CANDIDATE_ALIAS,
    NEVER_RELEASED,
    PENDING,
    RELEASE_TAG,
    _client,
    alias_version,
    log_training_run,
    mark_released,
)


def _project(tmp_path: Path, monkeypatch) -> tuple[Settings, Callable[[], str]]:
    """A project with a local SQLite MLflow store, and a function that registers one more version of model m."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    (tmp_path / "params.yaml").write_text("data:\n  source: d.csv\n  label: y\n  positive_label: 1\n"
                                          "  sensitive_features: [s]\nrelease:\n  model_name: m\n")
    settings = load_settings(tmp_path / "params.yaml")
    model = tmp_path / "model"
    model.mkdir()
    (model / "weights.bin").write_bytes(b"\x00" * 16)

    def register() -> str:
        return log_training_run(settings, {"loss": [0.5]}, model, {"git_commit": "x"})["model_version"]

    return settings, register


def test_only_published_versions_become_candidates_and_orphans_are_tagged(tmp_path: Path, monkeypatch):
    settings, register = _project(tmp_path, monkeypatch)

    first = register()
    assert alias_version(settings, "m", CANDIDATE_ALIAS) is None  # registered, not yet released
    mark_released(settings, "m", first, "releases/m/1")
    assert alias_version(settings, "m", CANDIDATE_ALIAS) == first
    killed = register()  # its run dies before publishing
    latest = register()
    client = _client(settings)
    tags = {v: client.get_model_version("m", v).tags[RELEASE_TAG] for v in (first, killed, latest)}
    assert tags == {first: "releases/m/1", killed: NEVER_RELEASED, latest: PENDING}
    assert alias_version(settings, "m", CANDIDATE_ALIAS) == first  # never an unreleased version


def test_a_version_published_but_killed_before_tagging_is_tagged_with_its_release_not_never_released(
        tmp_path: Path, monkeypatch):
    import json

    settings, register = _project(tmp_path, monkeypatch)

    published = register()
    release = tmp_path / "releases" / "m" / "1"  # the folder is renamed into place whole: then the kill
    release.mkdir(parents=True)
    (release / "manifest.json").write_text(json.dumps({"lineage": {"model_name": "m", "model_version": published}}))
    unpublished = register()  # the next run's registration reconciles the tags from the published releases
    later = register()
    client = _client(settings)
    tags = {v: client.get_model_version("m", v).tags[RELEASE_TAG] for v in (published, unpublished, later)}
    assert tags == {published: "releases/m/1", unpublished: NEVER_RELEASED, later: PENDING}
    assert alias_version(settings, "m", CANDIDATE_ALIAS) == published
