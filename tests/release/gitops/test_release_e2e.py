"""End to end (slow): the real pipeline signs with a CI key, the release is proposed to a fake GitHub, merged,
promoted and lineage-checked; no secret reaches Dagster's storage, MLflow, git or any output."""
from __future__ import annotations

import base64
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from dagster import DagsterInstance

from assets.build import materialize_all
from cli.main import main
from pipelines.core.config import load_settings
from pipelines.core.hashing import dvc_md5
from pipelines.release.signing import KEY_ENV, PASSWORD_ENV
from pipelines.training.tracking import PRODUCTION_ALIAS, alias_version

from .conftest import connect_github, git, settings_of
from .test_secrets import PASSWORD, TOKEN, _known_key

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[3]


def test_pipeline_release_pull_request_promotion(small_project: Path, bare_remote: Path, fake_github,
                                                 tmp_path: Path, tmp_path_factory, monkeypatch, capfd):
    project = small_project  # the project is tmp_path itself: the key lives outside it, as in CI
    vault = tmp_path_factory.mktemp("outside") / "vault"
    key, key_secrets = _known_key(vault)
    fake_github.token = TOKEN
    assert main(["dvc", "generate", "--params", str(project / "params.yaml")]) == 0
    (project / "dvc.lock").write_text(yaml.safe_dump({"schema": "2.0", "stages": {"raw_dataset": {"deps": [
        {"path": name, "md5": dvc_md5(project / name)} for name in ("train.csv", "test.csv")]}}}))
    (project / ".gitignore").write_text("\n".join(["/data/raw/", "/data/prepared/", "/models/", "/build/", "/releases/",
                                                   "/keys/private/", "/mlflow.db", "/mlartifacts/", "/dagster/", ""]))
    (project / "keys").mkdir()
    shutil.copy(vault / "ci-signing.pub", project / "keys" / "ci-signing.pub")
    git(project, "init", "-q", "-b", "main")
    git(project, "config", "user.name", "CI")
    git(project, "config", "user.email", "ci@example.com")
    git(project, "add", "-A")
    git(project, "commit", "-qm", "project")
    connect_github(project, bare_remote, fake_github.url)
    for name, value in {"GITHUB_TOKEN": TOKEN, KEY_ENV: str(key), PASSWORD_ENV: PASSWORD}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(project)

    (project / "dagster").mkdir()
    with DagsterInstance.local_temp(str(project / "dagster")) as instance:
        result = materialize_all(load_settings(project / "params.yaml"), instance=instance)
    assert result.success
    git(project, "add", "reports")  # the run's metrics files, as a user commits them (DVC metrics)
    git(project, "commit", "-qm", "reports", "--allow-empty")
    assert main(["verify", "releases/adult-income/1", "--public-key", "keys/ci-signing.pub"]) == 0
    assert main(["release", "propose", "--allow-dirty"]) == 0
    git(project, "fetch", "-q", "origin", "release/adult-income-1")
    git(project, "merge", "-q", "--ff-only", "FETCH_HEAD")
    assert main(["promote"]) == 0 and main(["lineage", "check"]) == 0
    assert alias_version(settings_of(project), "adult-income", PRODUCTION_ALIAS) == "1"
    assert len(fake_github.pulls) == 1 and "## Gates" in fake_github.pulls[0]["body"]
    output = capfd.readouterr()

    needles = [TOKEN, PASSWORD, base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode(), *key_secrets]
    dumps = [subprocess.run(["git", "cat-file", "--batch-all-objects", "--batch"], cwd=repo, capture_output=True,
                            check=True).stdout for repo in (project, bare_remote)]
    haystacks = {"stdout": output.out.encode(), "stderr": output.err.encode(), "git": b"".join(dumps),
                 "requests": repr([r["body"] for r in fake_github.requests]).encode()}
    haystacks |= {str(p): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert any("dagster" in name and name.endswith(".db") for name in haystacks)  # Dagster's event storage
    assert (project / "mlflow.db").as_posix() in haystacks
    for name, content in haystacks.items():
        for needle in needles:
            assert needle.encode() not in content, f"secret found in {name}"
