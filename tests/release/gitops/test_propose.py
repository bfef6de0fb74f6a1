"""`release propose` with the local provider: a branch commit made without touching the checkout."""
from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest
import yaml

from pipelines.core.errors import PipelineError
from pipelines.core.hashing import tree_sha256
from pipelines.core.paths import PRODUCTION_FILE
from pipelines.release.gitops.propose import propose_release
from pipelines.release.signing import fingerprint
from pipelines.release_format.deployment import parse

from .conftest import MODEL, build_release, commit_key, git, settings_of


def _checkout_state(repo: Path) -> dict[str, object]:
    """Everything a user would notice changing: HEAD, branch, index bytes, status, working-tree files."""
    return {
        "head": git(repo, "rev-parse", "HEAD"),
        "branch": git(repo, "symbolic-ref", "HEAD"),
        "index": hashlib.sha256((repo / ".git" / "index").read_bytes()).hexdigest(),
        "status": git(repo, "status", "--porcelain", "--ignored"),
        "files": {p.relative_to(repo).as_posix(): p.stat().st_mtime_ns for p in repo.rglob("*")
                  if p.is_file() and ".git" not in p.relative_to(repo).parts},
    }


def test_branch_commit_leaves_working_tree_index_and_branch_alone(project: Path):
    folder = build_release(project, "1")
    commit_key(project)
    (project / "notes.txt").write_text("work in progress\n")  # the user's uncommitted work
    git(project, "add", "notes.txt")
    before = _checkout_state(project)
    done = propose_release(settings_of(project))
    assert _checkout_state(project) == before
    assert done.branch == f"release/{MODEL}-1" and done.base == "main" and done.changed
    assert git(project, "rev-parse", f"{done.branch}^") == before["head"]
    files = set(git(project, "ls-tree", "-r", "--name-only", done.branch).splitlines())
    release = {f"releases/{MODEL}/1/{name}" for name in tree_sha256(folder)}
    assert release <= files
    assert {f"releases/{MODEL}/1.md", PRODUCTION_FILE, "keys/release-signing.pub", "releases/.gitattributes"} <= files
    changed = git(project, "diff", "--name-only", f"main...{done.branch}").splitlines()
    assert sorted(changed) == sorted([*release, f"releases/{MODEL}/1.md", PRODUCTION_FILE, "releases/.gitattributes"])
    assert "notes.txt" not in files  # staged work stays out of the release commit
    for name, digest in tree_sha256(folder).items():  # committed bytes are exactly the signed bytes
        blob = subprocess.run(["git", "cat-file", "blob", f"{done.branch}:releases/{MODEL}/1/{name}"],
                              cwd=project, capture_output=True, check=True).stdout
        assert hashlib.sha256(blob).hexdigest() == digest, name


def test_production_yaml_pins_version_hashes_signer_and_rollout(project: Path):
    folder = build_release(project, "1")
    commit_key(project)
    done = propose_release(settings_of(project))
    state = parse(git(project, "show", f"{done.branch}:{PRODUCTION_FILE}"), PRODUCTION_FILE)
    assert (state.model.name, state.model.version, state.model.release) == (MODEL, "1", f"releases/{MODEL}/1")
    assert state.artifacts == {**tree_sha256(folder)}
    assert state.model.signer == fingerprint(project / "keys" / "release-signing.pub")
    assert [s.percent for s in state.rollout.stages] == [5, 25, 100]
    assert state.rollout.guardrails.max_crash_rate == 0.001 and state.previous is None
    report = git(project, "show", f"{done.branch}:releases/{MODEL}/1.md")
    assert report == done.body.strip()
    assert "first production release" in report and "verified with `keys/release-signing.pub`" in report


def test_rerun_changes_nothing_and_new_release_compares_with_production(project: Path):
    build_release(project, "1", accuracy=0.84)
    commit_key(project)
    first = propose_release(settings_of(project))
    again = propose_release(settings_of(project))
    assert (again.commit, again.changed) == (first.commit, False)
    git(project, "merge", "-q", "--ff-only", first.branch)  # the review approved: merged
    build_release(project, "2", accuracy=0.86)
    second = propose_release(settings_of(project))
    state = parse(git(project, "show", f"{second.branch}:{PRODUCTION_FILE}"), PRODUCTION_FILE)
    assert state.previous is not None and state.previous.version == "1"
    assert "replaces **v1**" in second.body and "production v1" in second.body
    assert "| `keras.accuracy` | 0.8600 | 0.8400 | +0.0200 |" in second.body


def test_tampered_release_is_refused_and_no_branch_is_made(project: Path):
    folder = build_release(project, "1")
    (folder / "model_int8.tflite").write_bytes(b"tampered")
    with pytest.raises(PipelineError, match="model_int8.tflite: sha256 differs from the manifest"):
        propose_release(settings_of(project))
    assert git(project, "branch", "--list", "release/*") == ""


def test_release_built_from_uncommitted_code_needs_allow_dirty(project: Path):
    params = yaml.safe_load((project / "params.yaml").read_text())
    (project / "params.yaml").write_text(yaml.safe_dump({**params, "project": {"owner": "ml@example.com"}}))
    build_release(project, "1")
    commit_key(project)
    with pytest.raises(PipelineError, match="built from uncommitted changes"):
        propose_release(settings_of(project))
    done = propose_release(settings_of(project), allow_dirty=True)
    assert "⚠ code" in done.body


def test_already_production_version_is_refused(project: Path):
    build_release(project, "1")
    commit_key(project)
    git(project, "merge", "-q", "--ff-only", propose_release(settings_of(project)).branch)
    with pytest.raises(PipelineError, match="adult-income v1 is already production"):
        propose_release(settings_of(project))


def test_no_release_yet_is_one_line(project: Path):
    with pytest.raises(PipelineError, match=r"releases/adult-income: no release yet"):
        propose_release(settings_of(project))


def test_signing_key_must_be_committed_before_the_first_release(project: Path):
    build_release(project, "1")
    with pytest.raises(PipelineError, match=r"signing key \(sha256 \w+\) is not committed under keys/ on main: "
                                            r"commit keys/release-signing.pub first"):
        propose_release(settings_of(project))
    assert git(project, "branch", "--list", "release/*") == ""
