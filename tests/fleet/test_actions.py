"""GitOps actions of a fleet decision, against a real bare git remote and a fake GitHub API on 127.0.0.1."""
from __future__ import annotations

from pathlib import Path

import yaml

from pipelines.core.paths import PRODUCTION_FILE
from pipelines.fleet import actions
from tests.release.gitops.conftest import (  # noqa: F401 - fixtures used by name
    MODEL,
    bare_remote,
    connect_github,
    fake_github,
    git,
    settings_of,
    template,
    two_releases,
)

TABLE = "| guardrail | statistic |\n|---|---|\n| crash_rate | crashes per session |"


def _github(project: Path, remote: Path, api, monkeypatch) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", api.token)
    connect_github(project, remote, api.url)


def test_promote_opens_a_pull_request_that_advances_the_stage(two_releases, bare_remote, fake_github, monkeypatch):
    _github(two_releases, bare_remote, fake_github, monkeypatch)
    head = git(two_releases, "rev-parse", "HEAD")
    done = actions.promote_stage(settings_of(two_releases), TABLE, ["crash_rate: within"])
    assert (done.kind, done.stage, done.branch) == ("promote", "early", f"fleet/promote-{MODEL}-2-early")
    assert git(two_releases, "rev-parse", "HEAD") == head  # main untouched until the PR merges
    remote_file = git(bare_remote, "show", f"{done.branch}:{PRODUCTION_FILE}")
    assert yaml.safe_load(remote_file)["stage"] == "early"
    assert yaml.safe_load(remote_file)["model"]["version"] == "2"
    pull = fake_github.pulls[-1]
    assert pull["title"] == f"Promote {MODEL} v2 to early (25%)" and TABLE in pull["body"]
    assert pull["base"]["ref"] == "main" and done.pull_request.url.endswith("/pull/1")


def test_rollback_opens_the_revert_pull_request_with_the_guardrail_table(two_releases, bare_remote, fake_github,
                                                                         monkeypatch):
    _github(two_releases, bare_remote, fake_github, monkeypatch)
    done = actions.act(settings_of(two_releases), "rollback", TABLE, ["crash_rate: breached: 0.005 > 0.001"])
    assert done.kind == "rollback" and done.branch == f"rollback/{MODEL}-2-to-1"
    restored = yaml.safe_load(git(bare_remote, "show", f"{done.branch}:{PRODUCTION_FILE}"))
    assert restored["model"]["version"] == "1"
    pull = fake_github.pulls[-1]
    assert "breached: 0.005 > 0.001" in pull["body"] and TABLE in pull["body"]


def test_rollback_commits_the_revert_when_params_allow(two_releases):
    params = yaml.safe_load((two_releases / "params.yaml").read_text())
    params["fleet"] = {"rollback_commit": True}
    (two_releases / "params.yaml").write_text(yaml.safe_dump(params))
    git(two_releases, "commit", "-qam", "fleet: commit rollbacks")
    done = actions.act(settings_of(two_releases), "rollback", TABLE, ["latency: breached"])
    assert done.pull_request is None and done.branch == "main"
    assert git(two_releases, "log", "-1", "--format=%s") == f"Roll back {MODEL} to v1 (from v2)"
    assert "latency: breached" in git(two_releases, "log", "-1", "--format=%b")
    assert yaml.safe_load((two_releases / PRODUCTION_FILE).read_text())["model"]["version"] == "1"


def test_hold_does_nothing(two_releases):
    head = git(two_releases, "rev-parse", "HEAD")
    assert actions.act(settings_of(two_releases), "hold", TABLE, []) is None
    assert git(two_releases, "rev-parse", "HEAD") == head
