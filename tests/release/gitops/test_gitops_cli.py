"""The GitOps commands as users type them: output lines, one-line errors, exit codes."""
from __future__ import annotations

from pathlib import Path

from cli.main import main
from pipelines.release.signing import generate_key_pair

from .conftest import MODEL, build_release, commit_key


def test_verify_finds_the_project_keys_from_anywhere(project: Path, tmp_path: Path, capsys, monkeypatch):
    folder = build_release(project, "1")
    monkeypatch.chdir(tmp_path)  # no params.yaml here: the release's own project is found
    assert main(["verify", str(folder)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"OK {folder}: ") and "signature by " in out and "keys/release-signing.pub" in out
    assert main(["verify", str(folder), "--public-key", str(project / "keys/release-signing.pub")]) == 0


def test_verify_with_another_key_fails_in_one_line(project: Path, tmp_path: Path, capsys):
    folder = build_release(project, "1")
    generate_key_pair(tmp_path / "other.pem", tmp_path / "other.pub")
    assert main(["verify", str(folder), "--public-key", str(tmp_path / "other.pub")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {folder}/model.sig: signed by an untrusted key") and err.count("\n") == 1


def test_verify_without_any_project_or_key(tmp_path: Path, project: Path, capsys, monkeypatch):
    folder = build_release(project, "1")
    loose = tmp_path / "loose"
    folder.rename(loose)
    monkeypatch.chdir(tmp_path)
    assert main(["verify", str(loose)]) == 1
    assert "no project params.yaml found for its trusted keys; pass --public-key FILE" in capsys.readouterr().err


def test_propose_prints_branch_report_and_next_step(project: Path, capsys):
    build_release(project, "1")
    commit_key(project)
    assert main(["release", "propose", "--params", str(project / "params.yaml")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"branch release/{MODEL}-1: ") and lines[0].endswith("(new commit), proposed onto main")
    assert lines[1] == f"report: releases/{MODEL}/1.md on the branch (git show release/{MODEL}-1:releases/{MODEL}/1.md)"
    assert lines[2].startswith("provider local: nothing pushed")


def test_promote_without_deployment_is_one_line(project: Path, capsys):
    assert main(["promote", "--params", str(project / "params.yaml")]) == 1
    assert capsys.readouterr().err == f"error: {project / 'deploy/production.yaml'}: not found; nothing is deployed yet\n"
