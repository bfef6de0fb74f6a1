"""Where a release branch goes: `local` (the branch alone) or `github` (push + pull request via REST).

The GitHub token comes from the environment variable named in params (release.github.token_env). It is
sent only as an HTTP header (to the API, and to git through GIT_CONFIG_* variables, never argv) and is
scrubbed from every error message.
"""
from __future__ import annotations

import base64
import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.core.config import GithubConfig
from pipelines.core.errors import PipelineError
from pipelines.release.gitops.git import git
from pipelines.release.gitops.report import MARKER


@dataclass
class PullRequest:
    url: str | None  # None for the local provider
    number: int | None
    created: bool  # False when an open pull request for the branch was updated
    comment_id: int | None = None


class LocalProvider:
    """The embedded default: the branch is the proposal; nothing leaves the machine."""

    name = "local"

    def publish(self, repo: Path, branch: str, base: str, title: str, body: str, comment: str) -> PullRequest:
        return PullRequest(url=None, number=None, created=True)


def repository_from_url(url: str) -> str:
    """owner/name from a GitHub remote URL (https, ssh or scp-like)."""
    match = re.match(r"^(?:[a-z+]+://[^/]+/|[^@/]+@[^:/]+:)([^/]+)/([^/]+?)(?:\.git)?/?$", url.strip())
    if not match:
        raise PipelineError(f"release.github.repository: cannot read owner/name from remote URL {url!r}; set it")
    return f"{match.group(1)}/{match.group(2)}"


class GithubProvider:
    """Push the branch to the remote, then open (or update) its pull request and its one report comment."""

    name = "github"

    def __init__(self, config: GithubConfig, remote: str):
        self.config, self.remote = config, remote
        token = os.environ.get(config.token_env, "")
        if not token:
            raise PipelineError(f"release.github.token_env: environment variable {config.token_env} is not set")
        self._token = token

    def _scrub(self, text: str) -> str:
        return text.replace(self._token, "***") if self._token else text

    def _git_auth(self, url: str) -> dict[str, str]:
        if not url.startswith("https://"):
            return {}  # ssh, file and local remotes authenticate on their own
        basic = base64.b64encode(f"x-access-token:{self._token}".encode()).decode()
        return {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "http.extraHeader",
                "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}"}

    def api(self, method: str, path: str, payload: dict[str, Any] | None = None) -> Any:
        url = self.config.api_url.rstrip("/") + path
        request = urllib.request.Request(url, method=method, data=json.dumps(payload).encode() if payload else None)
        request.add_header("Accept", "application/vnd.github+json")
        request.add_header("X-GitHub-Api-Version", "2022-11-28")
        request.add_header("Authorization", f"Bearer {self._token}")
        if payload is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                text = response.read().decode()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:300]
            message = json.loads(detail).get("message", detail) if detail.startswith("{") else detail
            raise PipelineError(self._scrub(f"GitHub API {method} {path}: HTTP {exc.code} {message}")) from None
        except (urllib.error.URLError, OSError) as exc:
            raise PipelineError(self._scrub(f"GitHub API {method} {url}: {exc}")) from None
        return json.loads(text) if text else None

    def _pages(self, path: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        page = 1
        while True:
            sep = "&" if "?" in path else "?"
            batch = self.api("GET", f"{path}{sep}per_page=100&page={page}") or []
            items += batch
            if len(batch) < 100:
                return items
            page += 1

    def publish(self, repo: Path, branch: str, base: str, title: str, body: str, comment: str) -> PullRequest:
        """Push `branch`; open its pull request or update the open one; create or update the report comment."""
        url = git(repo, "remote", "get-url", self.remote)
        owner_repo = self.config.repository or repository_from_url(url)
        try:
            git(repo, "push", "--porcelain", self.remote, f"refs/heads/{branch}:refs/heads/{branch}",
                env=self._git_auth(url))
        except PipelineError as exc:
            raise PipelineError(self._scrub(str(exc))) from None
        owner = owner_repo.split("/")[0]
        prefix = f"/repos/{owner_repo}"
        query = urllib.parse.urlencode({"head": f"{owner}:{branch}", "state": "open"})
        found = self._pages(f"{prefix}/pulls?{query}")
        if found:
            number, created = found[0]["number"], False
            pull = self.api("PATCH", f"{prefix}/pulls/{number}", {"title": title, "body": body})
        else:
            pull = self.api("POST", f"{prefix}/pulls", {"title": title, "head": branch, "base": base, "body": body})
            number, created = pull["number"], True
        comments = self._pages(f"{prefix}/issues/{number}/comments")
        mine = [c for c in comments if MARKER in (c.get("body") or "")]
        if mine:
            posted = self.api("PATCH", f"{prefix}/issues/comments/{mine[0]['id']}", {"body": comment})
        else:
            posted = self.api("POST", f"{prefix}/issues/{number}/comments", {"body": comment})
        return PullRequest(url=pull.get("html_url"), number=number, created=created, comment_id=posted.get("id"))


def web_url(config: GithubConfig, repository: str) -> str:
    """https://github.com/owner/name (or the GitHub Enterprise host behind api_url)."""
    api = urllib.parse.urlsplit(config.api_url)
    host = "github.com" if api.hostname == "api.github.com" else api.netloc.rpartition("@")[2]
    return f"{api.scheme}://{host}/{repository}"


def provider_for(name: str, config: GithubConfig, remote: str) -> LocalProvider | GithubProvider:
    return GithubProvider(config, remote) if name == "github" else LocalProvider()
