"""Tokens and private keys never reach logs, manifests, reports, MLflow, commits or the pull request.

One release goes all the way with a known GitHub token and a known password-protected signing key
(sign, verify, propose twice, merge, promote, rollback, lineage check, a failing --debug run); then
every output is searched for them.
"""
from __future__ import annotations

import base64
import subprocess
import traceback
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from cli.main import main
from pipelines.release.signing import KEY_ENV, PASSWORD_ENV
from pipelines.training.tracking import log_training_run

from .conftest import MODEL, build_release, connect_github, git, settings_of

TOKEN = "ghp_SeCrEt0kEn4e8b1f9d2c7a6"
PASSWORD = "pw-S3cr3t-7c41d"
REPO = Path(__file__).resolve().parents[3]


def _known_key(vault: Path) -> tuple[Path, list[str]]:
    """An encrypted P-256 key outside the project, and the secret strings it consists of."""
    key = ec.generate_private_key(ec.SECP256R1())
    vault.mkdir()
    path = vault / "ci-signing.pem"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.BestAvailableEncryption(PASSWORD.encode())))
    (vault / "ci-signing.pub").write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    plain = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()).decode()
    encrypted = path.read_text()
    lines = [ln for text in (plain, encrypted) for ln in text.splitlines() if len(ln) >= 40 and "-----" not in ln]
    scalar = key.private_numbers().private_value.to_bytes(32, "big")
    return path, lines + [scalar.hex(), base64.b64encode(scalar).decode()]


def test_token_and_key_appear_nowhere(two_releases: Path, bare_remote: Path, fake_github, tmp_path: Path,
                                      capfd, monkeypatch):
    project = two_releases
    key, key_secrets = _known_key(tmp_path / "vault")
    fake_github.token = TOKEN
    needles = [TOKEN, PASSWORD, base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode(), *key_secrets]
    (project / "keys" / "ci-signing.pub").write_bytes((tmp_path / "vault" / "ci-signing.pub").read_bytes())
    assert main(["dvc", "generate", "--params", str(project / "params.yaml")]) == 0
    git(project, "add", "keys/ci-signing.pub", "dvc.yaml")
    git(project, "commit", "-qm", "Trust the CI signing key")
    connect_github(project, bare_remote, fake_github.url)
    for name, value in {"GITHUB_TOKEN": TOKEN, KEY_ENV: str(key), PASSWORD_ENV: PASSWORD}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(project)
    record = log_training_run(settings_of(project), {"loss": [0.3]}, tmp_path / "vault", {"git_commit": "x"})
    version = record["model_version"]
    build_release(project, version, accuracy=0.87, run_id=record["run_id"])
    outputs: list[str] = []

    def cli(*args: str, expect: int = 0) -> None:
        try:
            code = main(list(args))
        except Exception:  # with --debug the error propagates: its traceback is output too
            code = 1
            outputs.append(traceback.format_exc())
        captured = capfd.readouterr()
        outputs.extend([captured.out, captured.err])
        assert code == expect, captured.out + captured.err

    cli("verify", f"releases/{MODEL}/{version}")
    cli("release", "propose")
    cli("release", "propose")  # the re-run updates the pull request and its comment
    git(project, "fetch", "-q", "origin", f"release/{MODEL}-{version}")
    git(project, "merge", "-q", "--ff-only", "FETCH_HEAD")
    cli("promote")
    cli("rollback")
    cli("lineage", "check")
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN + "-but-wrong")
    cli("--debug", "release", "propose", "--allow-dirty", expect=1)
    assert "Bad credentials" in "".join(outputs[-3:])

    git_dumps = [subprocess.run(command, cwd=repo, capture_output=True, check=True).stdout
                 for repo in (project, bare_remote)
                 for command in (["git", "log", "-p", "--all", "--format=raw"],
                                 ["git", "cat-file", "--batch-all-objects", "--batch"])]
    haystacks: dict[str, bytes] = {f"cli output {i}": text.encode() for i, text in enumerate(outputs)}
    haystacks |= {f"git dump {i}": dump for i, dump in enumerate(git_dumps)}
    haystacks |= {f"request body {i}": repr(r["body"]).encode() for i, r in enumerate(fake_github.requests)}
    haystacks |= {str(p): p.read_bytes() for p in tmp_path.rglob("*")
                  if p.is_file() and "vault" not in p.parts and ".git" not in p.parts}
    assert (project / "mlflow.db").as_posix() in haystacks and len(fake_github.pulls) == 1
    assert len(haystacks) > 50
    assert any(n.encode() in key.read_bytes() for n in key_secrets)  # the search would see the key if it leaked
    for name, content in haystacks.items():
        for needle in needles:
            assert needle.encode() not in content, f"secret found in {name}"
