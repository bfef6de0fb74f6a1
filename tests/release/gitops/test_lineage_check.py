"""`mobile-mlops lineage check`: each kind of mismatch is found and named."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml
from dagster import AssetSpec, Definitions, asset

from cli.checks import asset_problems, release_problems
from cli.main import main
from pipelines.release.gitops.audit import lock_md5
from pipelines.release.signing import KEY_ENV, generate_key_pair

from .conftest import CSV, MODEL, build_release, commit_key, git, settings_of

REPO = Path(__file__).resolve().parents[3]


def test_committed_releases_and_production_yaml_hold(two_releases: Path):
    assert release_problems(settings_of(two_releases), "HEAD") == []


def test_a_changed_byte_in_a_committed_release_is_named(two_releases: Path):
    target = two_releases / "releases" / MODEL / "1" / "model_int8.tflite"
    target.write_bytes(target.read_bytes()[:-1] + b"\0")
    git(two_releases, "commit", "-qam", "sneaky edit")
    assert release_problems(settings_of(two_releases), "HEAD") == [
        f"releases/{MODEL}/1: releases/{MODEL}/1/model_int8.tflite: sha256 differs from the manifest"]
    assert release_problems(settings_of(two_releases), "HEAD~1") == []  # history is checked as it was


def test_data_md5_must_match_dvc_lock_at_the_build_commit(project: Path):
    (project / "data.csv").write_text((project / "data.csv").read_text() + "33,Male,>50K\n")
    git(project, "commit", "-qam", "new data, dvc.lock not updated")
    build_release(project, "1")
    commit_key(project)
    built_from = git(project, "rev-parse", "HEAD~1")
    git(project, "add", "-f", "releases")
    git(project, "commit", "-qm", "release committed by hand")
    (problem,) = release_problems(settings_of(project), "HEAD")
    assert problem.startswith(f"releases/{MODEL}/1: data data.csv md5 ")
    assert problem.endswith(f"but dvc.lock at {built_from[:12]} records {lock_md5((project / 'dvc.lock').read_text(), 'data.csv')}")


def test_daily_files_are_checked_against_their_own_dvc_records(project: Path):
    from pipelines.data.partitions import write_record
    from pipelines.data.sources import source_files

    days = project / "data" / "incoming"
    days.mkdir(parents=True)
    for day in ("2026-01-01", "2026-01-02"):
        (days / f"{day}.csv").write_text(CSV)
        write_record(days / f"{day}.csv")
    git(project, "add", "-A")
    git(project, "commit", "-qm", "two accepted days, their .dvc records committed")
    md5 = source_files(settings_of(project, **{"data.source": "data/incoming"}))
    assert sorted(md5) == ["data/incoming/2026-01-01.csv", "data/incoming/2026-01-02.csv"]
    build_release(project, "1", data_md5=md5)
    commit_key(project)
    git(project, "add", "-f", "releases")
    git(project, "commit", "-qm", "release trained on the days")
    assert release_problems(settings_of(project), "HEAD") == []
    build_release(project, "2", data_md5=md5 | {"data/incoming/2026-01-03.csv": "0" * 32})  # never recorded
    git(project, "add", "-f", "releases")
    git(project, "commit", "-qm", "a release naming a day nobody accepted")
    (problem,) = release_problems(settings_of(project), "HEAD")
    assert problem.startswith(f"releases/{MODEL}/2: data data/incoming/2026-01-03.csv md5 ")


def test_build_commit_missing_from_the_repository(project: Path):
    git(project, "checkout", "-qb", "scratch")
    git(project, "commit", "-q", "--allow-empty", "-m", "never pushed")
    build_release(project, "1")
    lost = git(project, "rev-parse", "HEAD")
    git(project, "checkout", "-q", "main")
    git(project, "branch", "-qD", "scratch")
    git(project, "reflog", "expire", "--expire=now", "--all")
    git(project, "gc", "-q", "--prune=now")
    commit_key(project)
    git(project, "add", "-f", "releases")
    git(project, "commit", "-qm", "release from a lost commit")
    assert release_problems(settings_of(project), "HEAD") == [
        f"releases/{MODEL}/1: lineage.git_commit {lost[:12]} is not in this repository"]


def test_release_signed_by_an_uncommitted_key(project: Path, tmp_path: Path, monkeypatch):
    build_release(project, "0")
    commit_key(project)
    generate_key_pair(tmp_path / "rogue.pem", tmp_path / "rogue.pub")
    monkeypatch.setenv(KEY_ENV, str(tmp_path / "rogue.pem"))
    build_release(project, "1")
    git(project, "add", "-f", "releases")
    git(project, "commit", "-qm", "two releases")
    (problem,) = release_problems(settings_of(project), "HEAD")
    assert problem.startswith(f"releases/{MODEL}/1: releases/{MODEL}/1/model.sig: signed by an untrusted key")


def test_production_yaml_naming_an_uncommitted_release(two_releases: Path):
    shutil.rmtree(two_releases / "releases" / MODEL / "2")
    git(two_releases, "commit", "-qam", "drop v2 but keep it in production.yaml")
    assert release_problems(settings_of(two_releases), "HEAD") == [
        f"deploy/production.yaml: model.release releases/{MODEL}/2 is not committed"]


def test_asset_without_owner_or_code_version_is_named():
    @asset(group_name="g", owners=["team:x"], code_version="1")
    def complete() -> None:
        """Has everything."""

    @asset(group_name="g")
    def bare() -> None:
        """No owner, no code version."""

    graph = Definitions(assets=[complete, bare, AssetSpec("external", group_name="g")]).resolve_asset_graph()
    assert asset_problems(graph) == ["asset bare: no owners, code_version",
                                     "asset external: no description, owners, code_version"]


def test_cli_passes_on_the_project_and_fails_naming_the_mismatch(two_releases: Path, capsys, monkeypatch):
    params = str(two_releases / "params.yaml")
    assert main(["dvc", "generate", "--params", params]) == 0
    assert main(["lineage", "check", "--params", params]) == 0
    out = capsys.readouterr().out
    assert out.count("ok  ") == 4 and "FAIL" not in out, out
    stages = yaml.safe_load((two_releases / "dvc.yaml").read_text())
    stages["stages"]["release_candidate"]["deps"].remove("models/trained")
    stages["stages"]["release_candidate"]["deps"].remove("reports/gates/trained_model.json")  # its verdict too
    (two_releases / "dvc.yaml").write_text(yaml.safe_dump(stages))
    assert main(["lineage", "check", "--params", params]) == 1
    captured = capsys.readouterr()
    assert "FAIL Dagster graph, dvc.yaml and the stage catalog are one graph" in captured.out
    assert captured.err.startswith("error: lineage check failed: dvc.yaml: release_candidate upstream [")
    assert "dvc.yaml differs from the stage catalog; run `mobile-mlops dvc generate`" in captured.out


def test_cli_lineage_check_on_this_repository():
    done = subprocess.run([str(REPO / ".venv/bin/mobile-mlops"), "lineage", "check"], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert "ok   Definitions load" in done.stdout, done.stdout + done.stderr
    assert "ok   every asset has a description, group, owner and code version" in done.stdout
