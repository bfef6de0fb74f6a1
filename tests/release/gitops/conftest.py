"""GitOps fixtures: a real git project in tmp, signed release folders, a bare remote and a fake GitHub API.

The release folders are sealed with the project's own seal() (SBOMs, manifest, attestations, signature) (small stand-in model
files, so tests stay fast); the whole pipeline producing a real one is covered by tests/assets.
"""
from __future__ import annotations

import json
import random
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from pipelines.core.config import Settings, load_settings
from pipelines.core.gates import GateResult
from pipelines.core.git_state import git_state
from pipelines.core.hashing import dvc_md5
from pipelines.release.seal import seal

MODEL = "adult-income"
CSV = "age,sex,income\n" + "".join(f"{20 + i % 50},{'Female' if i % 3 else 'Male'},{'>50K' if i % 4 else '<=50K'}\n"
                                   for i in range(40))


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def dvc_lock(md5: str) -> str:
    return yaml.safe_dump({"schema": "2.0", "stages": {"raw_dataset": {
        "cmd": "bin/stage raw_dataset", "deps": [{"path": "data.csv", "hash": "md5", "md5": md5, "size": len(CSV)}]}}})


def make_project(root: Path) -> Path:
    """A committed project on branch main: params, data, dvc.lock; outputs git-ignored like the real repo."""
    root.mkdir(parents=True)
    (root / "data.csv").write_text(CSV)
    (root / "params.yaml").write_text(yaml.safe_dump({
        "data": {"source": "data.csv", "label": "income", "positive_label": ">50K", "sensitive_features": ["sex"]},
        "release": {"model_name": MODEL},
    }, sort_keys=False))
    (root / "dvc.lock").write_text(dvc_lock(dvc_md5(root / "data.csv")))
    (root / ".gitignore").write_text("/releases/\n/keys/private/\n/mlflow.db\n/mlartifacts/\n")
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.name", "Test User")
    git(root, "config", "user.email", "test@example.com")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "project")
    return root


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path / "project")


def settings_of(root: Path, **overrides: Any) -> Settings:
    return load_settings(root / "params.yaml", overrides)


def build_release(root: Path, version: str, accuracy: float = 0.85, run_id: str | None = None,
                  extra_reports: dict[str, Any] | None = None, card: bool = False,
                  data_md5: dict[str, str] | None = None) -> Path:
    """A signed release folder releases/adult-income/<version>/ built from the current commit."""
    settings = settings_of(root)
    folder = root / "releases" / MODEL / version
    rng = random.Random(version)
    package = folder / "model.mlpackage" / "Data" / "com.apple.CoreML"
    package.mkdir(parents=True)
    (folder / "model_float32.tflite").write_bytes(rng.randbytes(4096))
    (folder / "model_int8.tflite").write_bytes(rng.randbytes(1100))
    (package / "model.mlmodel").write_bytes(rng.randbytes(900))
    (folder / "model.mlpackage" / "Manifest.json").write_text("{}\n")
    (folder / "feature_spec.json").write_text(json.dumps({"spec": {"features": ["age"]}}))
    if card:
        (folder / "model_card.md").write_text(f"# Model card: {MODEL} v{version}\n")
    groups = {"Female": {"accuracy": accuracy + 0.03, "selection_rate": 0.12, "count": 26},
              "Male": {"accuracy": accuracy - 0.04, "selection_rate": 0.31, "count": 14}}
    evaluation = {"overall": {"accuracy": accuracy, "auc": accuracy + 0.05, "rows": 40},
                  "groups": {"sex": {"groups": groups, "demographic_parity_difference": 0.19, "accuracy_gap": 0.07}}}
    reports = {"evaluation.json": evaluation, "tflite.json": {"variants": {}}, "coreml.json": {"size_bytes": 900},
               **(extra_reports or {})}
    for name, content in reports.items():
        (folder / name).write_text(json.dumps(content))
    gates = [GateResult("min_accuracy", accuracy >= 0.8, accuracy, 0.8, "test accuracy"),
             GateResult("min_agreement[int8]", True, 0.99, 0.97, "int8 agreement")]
    lineage = {"data_md5": data_md5 or {"data.csv": dvc_md5(root / "data.csv")}, "raw_dataset_md5": "0" * 32,
               **git_state(root), "params_sha256": settings.section_hash(), "mlflow_run_id": run_id or f"run-{version}",
               "model_name": MODEL, "model_version": version}
    metrics = {"keras": evaluation["overall"],
               "tflite": {"float32": {"accuracy": accuracy, "size_bytes": 4096}, "int8": {"accuracy": accuracy - 0.01,
                                                                                        "size_bytes": 1100}},
               "coreml": {"size_bytes": 900}, "gates": [g.as_dict() for g in gates]}
    seal(folder, settings, lineage, metrics, endpoint_requirements=["numpy==2.4.6"], mlflow_run_url="http://mlflow/run")
    return folder


def commit_key(root: Path) -> None:
    """Commit the public key generated on first use (trust is its own change, before any release PR)."""
    git(root, "add", "keys/release-signing.pub")
    git(root, "commit", "-qm", "Trust the release signing key")


@pytest.fixture
def bare_remote(tmp_path: Path) -> Path:
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    return remote


def connect_github(project: Path, remote: Path, api_url: str) -> None:
    """Point the project at the bare remote (origin) and the fake API (provider github); push main."""
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["release"].update({"provider": "github", "github": {"api_url": api_url, "repository": "acme/mobile"}})
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    git(project, "commit", "-qam", "github provider")
    git(project, "remote", "add", "origin", str(remote))
    git(project, "push", "-q", "origin", "main")


@dataclass
class FakeGithub:
    """Just the REST endpoints the provider calls; pull requests and comments live in memory."""

    token: str
    remote: Path
    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    pulls: list[dict[str, Any]] = field(default_factory=list)
    comments: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    next_id: int = 1000

    def handle(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any]:
        if m := re.fullmatch(r"/repos/([^/]+)/([^/]+)/pulls", path):
            if method == "GET":
                head = query.get("head", [""])[0].split(":")[-1]
                return 200, [p for p in self.pulls if p["head"]["ref"] == head and p["state"] == "open"]
            branch_exists = subprocess.run(["git", "--git-dir", str(self.remote), "rev-parse", "--verify", "-q",
                                            f"refs/heads/{body['head']}"], capture_output=True).returncode == 0
            if not branch_exists:
                return 422, {"message": "Validation Failed: head invalid"}
            number = len(self.pulls) + 1
            pull = {"number": number, "html_url": f"{self.url}/{m[1]}/{m[2]}/pull/{number}", "state": "open",
                    "title": body["title"], "body": body["body"], "head": {"ref": body["head"]}, "base": {"ref": body["base"]}}
            self.pulls.append(pull)
            return 201, pull
        if m := re.fullmatch(r"/repos/[^/]+/[^/]+/pulls/(\d+)", path):
            pull = self.pulls[int(m[1]) - 1]
            pull.update({k: body[k] for k in ("title", "body") if k in body})
            return 200, pull
        if m := re.fullmatch(r"/repos/[^/]+/[^/]+/issues/(\d+)/comments", path):
            thread = self.comments.setdefault(int(m[1]), [])
            if method == "GET":
                page = int(query.get("page", ["1"])[0])
                return 200, thread[(page - 1) * 100: page * 100]
            self.next_id += 1
            thread.append({"id": self.next_id, "body": body["body"]})
            return 201, thread[-1]
        if m := re.fullmatch(r"/repos/[^/]+/[^/]+/issues/comments/(\d+)", path):
            comment = next(c for t in self.comments.values() for c in t if c["id"] == int(m[1]))
            comment["body"] = body["body"]
            return 200, comment
        return 404, {"message": "Not Found"}


@pytest.fixture
def fake_github(bare_remote: Path) -> Iterator[FakeGithub]:
    state = FakeGithub(token="ghp_TESTTOKEN_0123456789abcdef", remote=bare_remote)

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            state.requests.append({"method": self.command, "path": parts.path, "body": body})
            if self.headers.get("Authorization") != f"Bearer {state.token}":
                status, payload = 401, {"message": "Bad credentials"}
            else:
                status, payload = state.handle(self.command, parts.path, parse_qs(parts.query), body)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = _serve

        def log_message(self, *args: Any) -> None:  # keep test output quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def register_and_release(project: Path, accuracy: float, trust_key: bool = False) -> str:
    """A registered MLflow version and its signed release, proposed and merged into main."""
    from pipelines.release.gitops.propose import propose_release
    from pipelines.training.tracking import log_training_run

    settings = settings_of(project)
    artifacts = project.parent / "model-stand-in"
    artifacts.mkdir(exist_ok=True)
    (artifacts / "note.txt").write_text("model stand-in\n")
    record = log_training_run(settings, {"loss": [0.5, 0.4]}, artifacts, {"git_commit": "test"})
    build_release(project, record["model_version"], accuracy=accuracy, run_id=record["run_id"])
    if trust_key:
        commit_key(project)
    git(project, "merge", "-q", "--ff-only", propose_release(settings).branch)  # review approved, merged
    return record["model_version"]


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built once per session (a new MLflow SQLite store takes seconds to migrate), copied per test:
    v1 merged and promoted, v2 merged but not promoted yet."""
    from pipelines.release.gitops.promote import promote

    project = make_project(tmp_path_factory.mktemp("template") / "project")
    assert register_and_release(project, 0.84, trust_key=True) == "1"
    assert promote(settings_of(project)).version == "1"
    assert register_and_release(project, 0.86) == "2"
    return project


@pytest.fixture
def two_releases(template: Path, tmp_path: Path) -> Path:
    """A private copy of the template project (git history, releases, MLflow store)."""
    return Path(shutil.copytree(template, tmp_path / "project", symlinks=True))
