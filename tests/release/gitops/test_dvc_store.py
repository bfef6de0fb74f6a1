"""release.dvc_files_over_bytes: which files go to the DVC remote, the records' check, and the refusals before any
commit. The round trip through a real remote and a clone is tests/services/test_dvc_release.py."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from pipelines.core.errors import PipelineError
from pipelines.core.hashing import dvc_md5
from pipelines.release.dvc_records import bookkeeping, parse_record, read_records, without_records
from pipelines.release.folder import load_manifest, verify_release
from pipelines.release.gitops.dvc_store import large_files
from pipelines.release.gitops.propose import propose_release

from .conftest import MODEL, build_release, commit_key, git, settings_of


def _record(name: str, md5: str, size: int) -> str:
    return f"outs:\n- md5: {md5}\n  size: {size}\n  hash: md5\n  path: {name}\n"


def _as_on_branch(folder: Path, names: list[str], dest: Path) -> Path:
    """The release folder as a clone of its branch holds it: DVC records and .gitignore instead of `names`."""
    copy = Path(shutil.copytree(folder, dest))
    for name in names:
        path = copy / name
        (copy / f"{name}.dvc").write_text(_record(path.name, dvc_md5(path), path.stat().st_size))
        ignore = path.parent / ".gitignore"
        ignore.write_text((ignore.read_text() if ignore.exists() else "") + f"/{path.name}\n")
        path.unlink()
    return copy


@pytest.fixture
def release(project: Path) -> Path:
    return build_release(project, "1")  # model_float32.tflite 4096 B, model_int8.tflite 1100 B, model.mlmodel 900 B


def test_off_by_default_selects_nothing(release: Path):
    assert settings_of(release.parents[2]).params.release.dvc_files_over_bytes is None
    assert large_files(release, load_manifest(release).files, None) == []


def test_selects_manifest_files_strictly_larger_than_the_limit(release: Path):
    listed = load_manifest(release).files
    sizes = {name: (release / name).stat().st_size for name in listed}
    assert sizes["model_float32.tflite"] == 4096
    assert large_files(release, listed, 4096) == sorted(n for n, s in sizes.items() if s > 4096)  # not >=
    assert "model_float32.tflite" in large_files(release, listed, 4095)
    assert large_files(release, listed, 899) == sorted(n for n, s in sizes.items() if s > 899)
    assert "model.mlpackage/Data/com.apple.CoreML/model.mlmodel" in large_files(release, listed, 899)
    assert set(large_files(release, listed, 0)) == set(listed)  # only what the manifest lists: never the manifest,
    assert not {"manifest.json", "model.sig"} & set(large_files(release, listed, 0))  # signature or attestations


def test_a_negative_limit_is_a_params_error(project: Path):
    with pytest.raises(PipelineError, match="release.dvc_files_over_bytes"):
        settings_of(project, **{"release.dvc_files_over_bytes": -1})


def test_a_record_must_name_its_own_file(tmp_path: Path):
    good = parse_record(_record("model.tflite", "a" * 32, 10), tmp_path / "model.tflite.dvc", "sub/model.tflite")
    assert (good.name, good.md5, good.size) == ("sub/model.tflite", "a" * 32, 10)
    with pytest.raises(PipelineError, match=r"not a DVC record of model.tflite"):
        parse_record(_record("other.tflite", "a" * 32, 10), tmp_path / "model.tflite.dvc", "model.tflite")
    with pytest.raises(PipelineError, match="not a DVC record"):
        parse_record("outs: [", tmp_path / "x.dvc", "x")


def test_a_folder_without_records_is_verified_in_place(release: Path):
    with without_records(release) as view:
        assert view == release


def test_a_record_whose_file_is_not_fetched_says_how_to_fetch_it(release: Path, tmp_path: Path):
    clone = _as_on_branch(release, ["model_float32.tflite"], tmp_path / "1")
    with pytest.raises(PipelineError, match=r"model_float32.tflite: kept in the DVC remote .*dvc pull .*\.dvc$"):
        with without_records(clone):
            pass


def test_a_fetched_file_is_verified_without_dvc_bookkeeping(release: Path, tmp_path: Path):
    name = "model.mlpackage/Data/com.apple.CoreML/model.mlmodel"
    clone = _as_on_branch(release, ["model_float32.tflite", name], tmp_path / "1")
    assert set(read_records(clone)) == {"model_float32.tflite", name}
    for fetched in ("model_float32.tflite", name):  # what `dvc pull` does
        shutil.copy2(release / fetched, clone / fetched)
    with without_records(clone) as view:
        assert view != clone and not list(view.rglob("*.dvc")) and not list(view.rglob(".gitignore"))
        assert verify_release(view).files == load_manifest(release).files


def test_a_fetched_file_that_differs_from_its_record_is_named(release: Path, tmp_path: Path):
    clone = _as_on_branch(release, ["model_float32.tflite"], tmp_path / "1")
    (clone / "model_float32.tflite").write_bytes(b"x" * 4096)  # same size, other bytes
    with pytest.raises(PipelineError, match=r"model_float32.tflite: differs from its DVC record"):
        with without_records(clone):
            pass


def test_a_consistent_record_of_changed_bytes_fails_on_the_manifest_naming_the_real_folder(release: Path,
                                                                                         tmp_path: Path):
    clone = _as_on_branch(release, ["model_float32.tflite"], tmp_path / "1")
    forged = clone / "model_float32.tflite"
    forged.write_bytes(b"y" * 10)
    (clone / "model_float32.tflite.dvc").write_text(_record(forged.name, dvc_md5(forged), 10))  # a rewritten record
    with pytest.raises(PipelineError, match=rf"^{clone}/model_float32.tflite: sha256 differs from the manifest"):
        with without_records(clone) as view:
            verify_release(view)


def test_a_gitignore_with_other_lines_is_not_dvc_bookkeeping(release: Path, tmp_path: Path):
    clone = _as_on_branch(release, ["model_float32.tflite"], tmp_path / "1")
    records = read_records(clone)
    assert bookkeeping(clone, records) == {"model_float32.tflite.dvc", ".gitignore"}
    (clone / ".gitignore").write_text("/model_float32.tflite\n/evaluation.json\n")
    assert bookkeeping(clone, records) == {"model_float32.tflite.dvc"}


def test_option_on_in_a_project_without_dvc_refuses_before_any_commit(project: Path):
    build_release(project, "1")
    commit_key(project)
    settings = settings_of(project, **{"release.dvc_files_over_bytes": 1000})
    with pytest.raises(PipelineError, match=r"^release.dvc_files_over_bytes: .* is not a DVC project"):
        propose_release(settings)
    assert not git(project, "branch", "--list", f"release/{MODEL}-*")


def test_option_on_without_the_dvc_command_refuses_before_any_commit(project: Path, monkeypatch):
    (project / ".dvc").mkdir()
    build_release(project, "1")
    commit_key(project)
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # git, no dvc
    with pytest.raises(PipelineError, match=r"^release.dvc_files_over_bytes: the dvc command is not installed"):
        propose_release(settings_of(project, **{"release.dvc_files_over_bytes": 1000}))
    assert not git(project, "branch", "--list", f"release/{MODEL}-*")


@pytest.fixture
def dvc_bin(dvc_bin: str, monkeypatch) -> str:
    """The dvc command, first on PATH as propose looks for it (`make dvc` puts it in the repository's .venv-dvc,
    not the test project's)."""
    monkeypatch.setenv("PATH", f"{Path(dvc_bin).parent}{os.pathsep}{os.environ['PATH']}")
    return dvc_bin


def _dvc_project(project: Path, dvc_bin: str, remote: Path | str | None) -> None:
    subprocess.run([dvc_bin, "init", "-q"], cwd=project, check=True)
    if remote:
        subprocess.run([dvc_bin, "remote", "add", "-d", "shared", str(remote)], cwd=project, check=True)
    git(project, "add", "-A")
    git(project, "commit", "-qm", "dvc init")
    build_release(project, "1")
    commit_key(project)


def test_option_on_without_a_default_remote_refuses_before_any_commit(project: Path, dvc_bin: str):
    _dvc_project(project, dvc_bin, None)
    settings = settings_of(project, **{"release.dvc_files_over_bytes": 1000})
    with pytest.raises(PipelineError, match=r"^release.dvc_files_over_bytes: no default DVC remote in .*dvc remote add"):
        propose_release(settings)
    assert not git(project, "branch", "--list", f"release/{MODEL}-*")


def test_git_ignored_records_are_refused_before_anything_is_pushed_or_committed(project: Path, dvc_bin: str,
                                                                               tmp_path: Path):
    _dvc_project(project, dvc_bin, tmp_path / "store")  # the fixture's .gitignore has /releases/
    settings = settings_of(project, **{"release.dvc_files_over_bytes": 1000})
    with pytest.raises(PipelineError, match=r"^release.dvc_files_over_bytes: releases/.*\.dvc would be git-ignored "
                                            r"on main \(\.gitignore:1:/releases/\)"):
        propose_release(settings)
    assert not git(project, "branch", "--list", f"release/{MODEL}-*") and not (tmp_path / "store").exists()
    assert len(git(project, "worktree", "list").splitlines()) == 1  # the scratch worktree is gone


def test_records_written_by_dvc_replace_the_large_files_and_a_rerun_changes_nothing(project: Path, dvc_bin: str,
                                                                                  tmp_path: Path):
    store = project.parent / "store"
    ignore = project / ".gitignore"
    ignore.write_text(ignore.read_text().replace("/releases/\n", "/releases/**\n!/releases/**/\n!/releases/**/*.dvc\n"))
    _dvc_project(project, dvc_bin, "../store")  # relative to the project: not to propose's scratch worktree
    status = git(project, "status", "--porcelain", "--ignored")
    settings = settings_of(project, **{"release.dvc_files_over_bytes": 4000})
    first = propose_release(settings)
    assert git(project, "status", "--porcelain", "--ignored") == status  # the checkout is left alone
    assert len(git(project, "worktree", "list").splitlines()) == 1
    release = f"releases/{MODEL}/1"
    tree = set(git(project, "ls-tree", "-r", "--name-only", first.branch, release).splitlines())
    folder = project / release
    assert f"{release}/model_float32.tflite.dvc" in tree and f"{release}/model_float32.tflite" not in tree
    assert f"{release}/model_int8.tflite" in tree  # 1,100 bytes: in git
    recorded = parse_record(git(project, "show", f"{first.branch}:{release}/model_float32.tflite.dvc"),
                            Path("model_float32.tflite.dvc"), "model_float32.tflite")
    assert (recorded.md5, recorded.size) == (dvc_md5(folder / "model_float32.tflite"), 4096)
    assert (store / "files" / "md5" / recorded.md5[:2] / recorded.md5[2:]).read_bytes() == \
        (folder / "model_float32.tflite").read_bytes()
    assert "in the DVC remote" in git(project, "log", "-1", "--format=%B", first.branch)
    again = propose_release(settings)
    assert (again.commit, again.changed) == (first.commit, False)
