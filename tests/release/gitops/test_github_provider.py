"""The github provider against a bare remote and a fake GitHub REST API on 127.0.0.1."""
from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.core.errors import PipelineError
from pipelines.release.gitops.propose import propose_release
from pipelines.release.gitops.providers import MARKER, repository_from_url

from .conftest import MODEL, build_release, commit_key, connect_github, git, settings_of


@pytest.fixture
def ready(project: Path, bare_remote: Path, fake_github, monkeypatch) -> Path:
    monkeypatch.setenv("GITHUB_TOKEN", fake_github.token)
    build_release(project, "1", card=True)
    commit_key(project)
    connect_github(project, bare_remote, fake_github.url)
    return project


def test_pushes_the_branch_and_opens_one_pull_request_with_the_report(ready: Path, fake_github, bare_remote: Path):
    done = propose_release(settings_of(ready))
    assert git(bare_remote, "rev-parse", f"refs/heads/release/{MODEL}-1") == done.commit
    assert done.pull_request.created and done.pull_request.number == 1
    assert done.pull_request.url == f"{fake_github.url}/acme/mobile/pull/1"
    (pull,) = fake_github.pulls
    assert (pull["title"], pull["head"]["ref"], pull["base"]["ref"]) == (f"Release {MODEL} 1 (model version 1)", f"release/{MODEL}-1", "main")
    assert pull["body"] == done.body and "## Gates" in pull["body"]
    card = f"{fake_github.url}/acme/mobile/blob/release/{MODEL}-1/releases/{MODEL}/1/model_card.md"
    assert f"| model card | [`model_card.md`]({card}) |" in pull["body"]
    (comment,) = fake_github.comments[1]
    assert comment["body"].startswith(MARKER) and done.commit[:12] in comment["body"]


def test_rerun_updates_the_pull_request_and_its_one_report_comment(ready: Path, fake_github):
    first = propose_release(settings_of(ready))
    fake_github.comments[1].insert(0, {"id": 1, "body": "LGTM from a human"})
    fake_github.requests.clear()
    again = propose_release(settings_of(ready))
    assert not again.pull_request.created and again.pull_request.number == 1
    assert again.pull_request.comment_id == first.pull_request.comment_id
    writes = [(r["method"], r["path"]) for r in fake_github.requests if r["method"] != "GET"]
    assert writes == [("PATCH", "/repos/acme/mobile/pulls/1"),
                      ("PATCH", f"/repos/acme/mobile/issues/comments/{first.pull_request.comment_id}")]
    assert len(fake_github.pulls) == 1
    assert [c["body"].startswith(MARKER) for c in fake_github.comments[1]] == [False, True]


def test_wrong_token_is_one_line_without_the_token(ready: Path, fake_github, monkeypatch):
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_WRONG_but_secret_value")
    with pytest.raises(PipelineError) as error:
        propose_release(settings_of(ready))
    assert str(error.value) == "GitHub API GET /repos/acme/mobile/pulls?head=acme%3Arelease%2Fadult-income-1" \
                               "&state=open&per_page=100&page=1: HTTP 401 Bad credentials"
    assert "WRONG" not in str(error.value)


def test_missing_token_names_the_variable(ready: Path, monkeypatch):
    monkeypatch.delenv("GITHUB_TOKEN")
    with pytest.raises(PipelineError, match="release.github.token_env: environment variable GITHUB_TOKEN is not set"):
        propose_release(settings_of(ready))
    assert git(ready, "branch", "--list", "release/*") == ""  # nothing committed either


def test_local_provider_override_pushes_nothing(ready: Path, fake_github, bare_remote: Path):
    done = propose_release(settings_of(ready), provider="local")
    assert done.pull_request.url is None and fake_github.requests == []
    assert git(bare_remote, "branch", "--list", "release/*") == ""


@pytest.mark.parametrize("url", ["https://github.com/acme/mobile.git", "git@github.com:acme/mobile.git",
                                 "ssh://git@github.example.com/acme/mobile", "https://github.com/acme/mobile/"])
def test_repository_from_remote_url(url):
    assert repository_from_url(url) == "acme/mobile"


def test_unreadable_remote_url_asks_for_the_setting():
    with pytest.raises(PipelineError, match="release.github.repository: cannot read owner/name"):
        repository_from_url("/srv/git/mobile")
