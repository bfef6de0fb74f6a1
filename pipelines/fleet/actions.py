"""GitOps actions of a fleet decision: a promote pull request advancing the rollout stage in
deploy/production.yaml, or the rollback (a revert pull request, or a commit when fleet.rollback_commit),
both through the release providers (local branch, or GitHub). The bodies carry the guardrail table."""
from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from pipelines.core.config import Settings
from pipelines.core.errors import PipelineError
from pipelines.core.paths import PRODUCTION_FILE
from pipelines.release.gitops.deploy import render
from pipelines.release.gitops.git import commit_files, current_branch, repo_root, rev
from pipelines.release.gitops.promote import read_deployment, rollback
from pipelines.release.gitops.propose import project_prefix
from pipelines.release.gitops.providers import MARKER, PullRequest, provider_for
from pipelines.release_format.deployment import stage_index


@dataclass
class Action:
    kind: str  # promote | rollback
    branch: str
    commit: str
    pull_request: PullRequest | None
    stage: str | None = None
    to: str | None = None  # the version a rollback restored


def promote_stage(settings: Settings, table: str, reasons: list[str]) -> Action:
    """Open the pull request that moves production.yaml to the next rollout stage."""
    repo = repo_root(settings.root)
    path = project_prefix(settings, repo) + PRODUCTION_FILE
    current = read_deployment(settings)
    index = stage_index(current)
    stages = current.rollout.stages
    if index + 1 >= len(stages):
        raise PipelineError(f"{PRODUCTION_FILE}: {current.model.name} v{current.model.version} is already at the "
                            f"last stage ({stages[index].name})")
    nxt = stages[index + 1]
    advanced = current.model_copy(update={"stage": nxt.name})
    name, version = current.model.name, current.model.version
    title = f"Promote {name} v{version} to {nxt.name} ({nxt.percent}%)"
    body = (f"{title}\n\nThe fleet analysis of stage {stages[index].name} ({stages[index].percent}%) passed every "
            f"guardrail; merging advances {PRODUCTION_FILE} to stage {nxt.name}.\n\n{table}\n\n"
            + "\n".join(f"- {r}" for r in reasons) + "\n")
    branch = f"fleet/promote-{name}-{version}-{nxt.name}"
    with tempfile.TemporaryDirectory(prefix="mobile-mlops-fleet-") as tmp:
        file = Path(tmp) / "production.yaml"
        file.write_text(render(advanced))
        commit, _ = commit_files(repo, branch, rev(repo, "HEAD") or "HEAD", {path: file}, body)
    config = settings.params.release
    pull = provider_for(config.provider, config.github, config.remote).publish(
        repo, branch, current_branch(repo) or "main", title, body, f"{MARKER}\n{body}")
    return Action("promote", branch, commit, pull, nxt.name)


def roll_back(settings: Settings, table: str, reasons: list[str], to: str | None = None) -> Action:
    """Revert the release: a pull request restoring the previous production.yaml (or release `to`), or a commit
    if params allow."""
    note = "The fleet analysis found a guardrail breach:\n\n" + "\n".join(f"- {r}" for r in reasons) + \
        f"\n\n{table}\n"
    done = rollback(settings, to=to, as_pull_request=not settings.params.fleet.rollback_commit, note=note)
    return Action("rollback", done.branch, done.commit, done.pull_request, to=done.to_version)


def act(settings: Settings, decision: str, table: str, reasons: list[str], to: str | None = None) -> Action | None:
    """The GitOps action of a decision (hold does nothing); `to` names the release a rollback restores."""
    if decision == "promote":
        return promote_stage(settings, table, reasons)
    if decision == "rollback":
        return roll_back(settings, table, reasons, to)
    return None


