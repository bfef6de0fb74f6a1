"""Large release files in the shared DVC remote (docs/deployment.md, "Large release files in the DVC remote"): with
release.dvc_files_over_bytes, `release propose` pushes them to a shared-folder DVC remote and the release branch, pushed
to a bare git remote, carries DVC's .dvc records instead; a clone of the branch cannot verify until `dvc pull`, then
holds the signed bytes and `verify` passes. The release folder is sealed by the project's own seal() around small
stand-in model files (tests/release/gitops/conftest.py), so this runs in seconds."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from cli.main import main
from pipelines.core.hashing import dvc_md5
from pipelines.release.folder import load_manifest
from pipelines.release.gitops.audit import check_release
from pipelines.release.gitops.dvc_store import large_files
from tests.release.gitops.conftest import (  # noqa: F401  (fixtures: a bare git remote, the fake GitHub API)
    MODEL,
    bare_remote,
    build_release,
    commit_key,
    connect_github,
    fake_github,
    git,
    make_project,
)

pytestmark = [pytest.mark.services, pytest.mark.slow]
OVER = 2000  # model_float32.tflite (4,096 bytes) and the SBOMs go to the remote; small reports stay in git
RELEASE = f"releases/{MODEL}/1"
UNIGNORE = "/releases/**\n!/releases/**/\n!/releases/**/*.dvc\n!/releases/**/.gitignore\n"  # as the repo's .gitignore


def _dvc(dvc: str, cwd: Path, *args: str) -> str:
    done = subprocess.run([dvc, *args], cwd=cwd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"dvc {' '.join(args)}: {done.stdout[-2000:]}{done.stderr[-2000:]}"
    return done.stdout


def test_large_release_files_travel_through_the_dvc_remote_and_verify_after_dvc_pull(
        tmp_path: Path, bare_remote: Path, fake_github, dvc_bin: str, monkeypatch, capsys):
    monkeypatch.setenv("PATH", f"{Path(dvc_bin).parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("GITHUB_TOKEN", fake_github.token)
    shared = tmp_path / "shared-dvc-store"  # a folder every machine mounts (NFS, SMB): here a local one
    project = make_project(tmp_path / "alice")
    _dvc(dvc_bin, project, "init", "-q")
    _dvc(dvc_bin, project, "remote", "add", "-d", "shared", str(shared))
    ignore = project / ".gitignore"  # DVC reads no git-ignored .dvc file: releases/ lets the records through
    ignore.write_text(ignore.read_text().replace("/releases/\n", UNIGNORE))
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["release"]["dvc_files_over_bytes"] = OVER
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    git(project, "add", "-A")
    git(project, "commit", "-qm", "DVC with a shared remote; large release files go there")
    folder = build_release(project, "1")
    commit_key(project)
    connect_github(project, bare_remote, fake_github.url)  # origin = the bare remote; main pushed
    large = large_files(folder, load_manifest(folder).files, OVER)
    assert "model_float32.tflite" in large and "feature_spec.json" not in large

    monkeypatch.chdir(project)
    assert main(["release", "propose"]) == 0
    branch = f"release/{MODEL}-1"
    tree = set(git(bare_remote, "ls-tree", "-r", "--name-only", branch).splitlines())
    for name in large:  # on the pushed branch: DVC's record, never the bytes
        assert f"{RELEASE}/{name}.dvc" in tree and f"{RELEASE}/{name}" not in tree, name
        blob = git(project, "hash-object", "--no-filters", str(folder / name))
        assert subprocess.run(["git", "cat-file", "-e", blob], cwd=bare_remote).returncode != 0, name
        md5 = dvc_md5(folder / name)
        assert (shared / "files" / "md5" / md5[:2] / md5[2:]).is_file(), name  # content-addressed in the remote
    assert f"{RELEASE}/manifest.json" in tree and f"{RELEASE}/model_int8.tflite" in tree  # small files stay in git
    record = yaml.safe_load(git(bare_remote, "show", f"{branch}:{RELEASE}/model_float32.tflite.dvc"))
    assert record["outs"] == [{"md5": dvc_md5(folder / "model_float32.tflite"), "size": 4096, "hash": "md5",
                               "path": "model_float32.tflite"}]
    assert len(fake_github.pulls) == 1

    clone = tmp_path / "bob"
    git(tmp_path, "clone", "-q", "-b", branch, str(bare_remote), str(clone))
    monkeypatch.chdir(clone)
    capsys.readouterr()
    assert main(["verify", RELEASE, "--public-key", "keys/release-signing.pub"]) == 1  # the bytes are not here yet
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "kept in the DVC remote" in error[0] and "dvc pull" in error[0], error
    assert "kept in the DVC remote" in " ".join(check_release(clone, "HEAD", RELEASE, "keys", "dvc.lock"))

    _dvc(dvc_bin, clone, "pull")
    for name in large:
        assert dvc_md5(clone / RELEASE / name) == dvc_md5(folder / name), name
    assert "up to date" in _dvc(dvc_bin, clone, "status")
    assert git(clone, "status", "--porcelain") == ""  # DVC's .gitignore keeps the fetched bytes out of git
    assert main(["verify", RELEASE, "--public-key", "keys/release-signing.pub"]) == 0
    out = capsys.readouterr().out
    assert f"{len(large)} kept in the DVC remote, fetched and matching their .dvc records" in out, out
    assert check_release(clone, "HEAD", RELEASE, "keys", "dvc.lock") == []  # `lineage check`'s audit of the release

    (clone / RELEASE / "model_float32.tflite").write_bytes(b"\0" * 4096)  # a corrupted fetch is named
    assert main(["verify", RELEASE, "--public-key", "keys/release-signing.pub"]) == 1
    assert "model_float32.tflite: differs from its DVC record" in capsys.readouterr().err
