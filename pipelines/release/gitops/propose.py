"""`mobile-mlops release propose`: a signed release folder becomes a branch and a pull request.

The commit on `release/<model>-<version>` adds the release folder, its report and the new
deploy/production.yaml on top of the base branch. It is built with git plumbing, so the user's working
tree, index and checked-out branch are untouched. Re-running updates the same branch and pull request.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipelines.core.config import Settings
from pipelines.core.errors import PipelineError
from pipelines.core.hashing import tree_files
from pipelines.core.paths import PRODUCTION_FILE
from pipelines.release.folder import verify_release
from pipelines.release.gitops.deploy import desired_state, render
from pipelines.release.gitops.dvc_store import large_files, push_large
from pipelines.release.gitops.git import (
    commit_files,
    current_branch,
    git,
    list_files,
    repo_root,
    rev,
    scratch,
    show,
)
from pipelines.release.gitops.providers import (
    MARKER,
    PullRequest,
    provider_for,
    repository_from_url,
    web_url,
)
from pipelines.release.gitops.report import ReportContext, render_report
from pipelines.release.gitops.views import view_from_folder, view_from_git
from pipelines.release.signing import KEY_ENV, fingerprint, trusted_keys, verify_folder
from pipelines.release_format.deployment import parse


@dataclass
class Proposal:
    branch: str
    base: str
    commit: str
    changed: bool  # False when the branch already held exactly this
    report_path: str  # the report as committed on the branch
    body: str
    pull_request: PullRequest


def latest_release(settings: Settings) -> Path:
    """The highest version under releases/<model>/."""
    folder = settings.resolve(settings.params.release.directory) / settings.params.release.model_name
    versions = sorted((p for p in folder.glob("*") if (p / "manifest.json").is_file()),
                      key=lambda p: (int(p.name) if p.name.isdigit() else -1, p.name))
    if not versions:
        raise PipelineError(f"{folder}: no release yet; run `mobile-mlops run` first")
    return versions[-1]


def project_prefix(settings: Settings, repo: Path) -> str:
    """The project's folder inside the repository, as a path prefix ("" at the top)."""
    relative = settings.root.resolve().relative_to(repo.resolve()).as_posix()
    return "" if relative == "." else f"{relative}/"


def _committed_key(repo: Path, base: str, base_branch: str, prefix: str, settings: Settings, key: Path) -> str:
    """The repo path of the committed copy of the public key that verified the release.

    A release pull request never brings its own trust anchor: the key must already be on the base
    branch, added in a commit of its own that reviewers see for what it is.
    """
    wanted = fingerprint(key)
    public = settings.params.release.signing.public_key
    folder = f"{prefix}{public.rsplit('/', 1)[0]}" if "/" in public else prefix or "."
    with scratch("keys") as tmp:
        for path in list_files(repo, base, folder):
            if path.endswith(".pub"):
                copy = Path(tmp) / "key.pub"
                copy.write_bytes(show(repo, base, path) or b"")
                try:
                    if fingerprint(copy) == wanted:
                        return path
                except PipelineError:
                    continue
    local = settings.resolve(public)
    hint = (f"{prefix}{public}" if local.is_file() and fingerprint(local) == wanted
            else f"a copy of {key} as {folder}/NAME.pub")
    raise PipelineError(f"the release's signing key (sha256 {wanted[:16]}) is not committed under {folder}/ on "
                        f"{base_branch}: commit {hint} first, as a change of its own, or sign with a committed key "
                        f"via {KEY_ENV}")


def _link_base(settings: Settings, repo: Path, provider: str, branch: str) -> str:
    if provider != "github":
        return ""
    config = settings.params.release.github
    url = git(repo, "remote", "get-url", settings.params.release.remote, check=False)
    try:
        repository = config.repository or repository_from_url(url)
    except PipelineError:
        return ""
    return f"{web_url(config, repository)}/blob/{branch}/"


def propose_release(settings: Settings, release: Path | None = None, provider: str | None = None,
                    allow_dirty: bool = False) -> Proposal:
    """Verify the release, commit it to its branch with the report and production.yaml, open the PR."""
    config = settings.params.release
    repo = repo_root(settings.root)
    folder = Path(release).resolve() if release else latest_release(settings)
    manifest = verify_release(folder)
    key = verify_folder(folder, trusted_keys(settings))
    lineage = manifest.lineage
    if lineage.git_dirty and not allow_dirty:
        raise PipelineError(f"{folder}: built from uncommitted changes (lineage.git_dirty); commit, re-run, "
                            "or pass --allow-dirty")
    base_branch = config.base_branch or current_branch(repo)
    base = rev(repo, f"refs/heads/{base_branch}") if base_branch else None
    if not base_branch or not base:
        raise PipelineError(f"release.base_branch: no branch {base_branch or '(detached HEAD)'} in {repo}")
    prefix = project_prefix(settings, repo)
    name, version, number = lineage.model_name, lineage.model_version, folder.name  # release N holds MLflow version
    branch, release_rel = f"release/{name}-{number}", f"{config.directory}/{name}/{number}"
    current = show(repo, base, prefix + PRODUCTION_FILE)
    production = parse(current, f"{PRODUCTION_FILE} on {base_branch}") if current else None
    if production and (production.model.name, production.model.version) == (name, version):
        raise PipelineError(f"{PRODUCTION_FILE} on {base_branch}: {name} v{version} is already production")
    key_path = _committed_key(repo, base, base_branch, prefix, settings, key)
    deployment = desired_state(manifest, folder, release_rel, config.rollout, fingerprint(key), production)
    provider_name = provider or config.provider
    publisher = provider_for(provider_name, config.github, config.remote)  # a missing token fails before any commit
    context = ReportContext(
        candidate=view_from_folder(folder, prefix + release_rel),
        production=view_from_git(repo, base, prefix + production.model.release) if production else None,
        deployment=deployment, signer=f"`{key_path}` (sha256 `{fingerprint(key)[:16]}…`)",
        link_base=_link_base(settings, repo, provider_name, branch))
    body = render_report(context)
    report_path = f"{prefix}{config.directory}/{name}/{number}.md"
    with scratch("propose") as tmp:
        written = {report_path: body, prefix + PRODUCTION_FILE: render(deployment)}
        if not show(repo, base, f"{prefix}{config.directory}/.gitattributes"):
            # release bytes must check out exactly as signed, whatever core.autocrlf says
            written[f"{prefix}{config.directory}/.gitattributes"] = "* -text\n"
        files = {f"{prefix}{release_rel}/{p.as_posix()}": folder / p for p in tree_files(folder)}
        large = large_files(folder, manifest.files, config.dvc_files_over_bytes)
        if large:  # pushed to the DVC remote before anything is committed; the branch gets DVC's records instead
            records = push_large(settings.root, repo, base, base_branch, prefix, release_rel, folder, large, Path(tmp))
            for name in large:
                del files[f"{prefix}{release_rel}/{name}"]
            files.update(records)
        for index, (path, text) in enumerate(written.items()):
            files[path] = Path(tmp) / f"{index}.txt"
            files[path].write_text(text)
        parent = rev(repo, f"refs/heads/{branch}") or base
        message = (f"Release {name} {number} (model version {version})\n\nAdds the signed release folder "
                   f"{prefix}{release_rel}/ "
                   f"({len(manifest.files)} files), its report {report_path}, and points {PRODUCTION_FILE} at it.\n"
                   + (f"\n{len(large)} of the files are in the DVC remote, recorded by their .dvc files (dvc pull).\n"
                      if large else ""))
        commit, changed = commit_files(repo, branch, parent, files, message, replace=(prefix + release_rel,))
    comment = f"{MARKER}\n_Release report for `{commit[:12]}` (updated on every re-run)._\n\n{body}"
    pull = publisher.publish(repo, branch, base_branch, f"Release {name} {number} (model version {version})", body,
                             comment)
    return Proposal(branch, base_branch, commit, changed, report_path, body, pull)
