"""Hostile params: names that become paths are checked when params load, values a library would reject later
are refused then, and the start-of-run cleanup removes only the project's own temp folders of dead processes."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.catalog import output_folders, output_roots
from pipelines.core.config import load_settings
from pipelines.core.errors import PipelineError
from pipelines.core.lock import leftover_temp_folders, remove_leftovers

CLI = str(Path(sys.executable).with_name("mobile-mlops"))
SAFE = "must be letters, digits, '.', '_' or '-', start with a letter or digit, and hold no '..'"


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _refused(params: Path, key: str, value) -> str:
    with pytest.raises(PipelineError) as caught:
        load_settings(params, {key: value})
    return str(caught.value)


def test_a_model_name_leading_out_of_the_project_is_refused_before_anything_is_touched(tmp_path: Path):
    from tests.conftest import write_small_project

    project = tmp_path / "a" / "b"
    params = write_small_project(project)
    victim = tmp_path / "victim"
    for precious in (victim / ".cache.v2", victim / ".precious.data"):
        precious.mkdir(parents=True)
        (precious / "keep").write_text("mine")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    done = subprocess.run([CLI, "run", "--params", str(params), "--set", "release.model_name=../../victim"],
                          cwd=project, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "DAGSTER_HOME": str(project / ".dagster")})
    assert done.returncode == 1
    assert done.stderr.strip() == f"error: params.yaml: key 'release.model_name': Value error, {SAFE} (got '../../victim')"
    after = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if ".mobile-mlops" not in p.parts)
    assert after == before  # nothing deleted, nothing written (the project's own log folder aside)
    assert not (project / ".mobile-mlops" / "logs").exists() or not any((project / ".mobile-mlops" / "logs").iterdir())


@pytest.mark.parametrize("name", ["../../victim", "a/b", "..", ".hidden", "x..y", "name\nnext", "tab\tname", "é-name", ""])
def test_unsafe_names_that_become_paths_are_one_line(small_project: Path, name: str):
    message = _refused(small_project / "params.yaml", "release.model_name", name)
    assert message == f"params.yaml: key 'release.model_name': Value error, {SAFE} (got {name!r})"


def test_a_300_character_name_is_one_line(small_project: Path):
    message = _refused(small_project / "params.yaml", "release.model_name", "m" * 300)
    assert message == ("params.yaml: key 'release.model_name': Value error, is 300 characters; at most 100 "
                       f"(got {repr('m' * 300)[:79]}…)")
    assert "\n" not in message


@pytest.mark.parametrize(("key", "value", "expected"), [
    ("release.rollout.stages", [{"name": "../x", "percent": 100}],
     f"key 'release.rollout.stages.0.name': Value error, {SAFE} (got '../x')"),
    ("release.remote", "origin/../x", f"key 'release.remote': Value error, {SAFE} (got 'origin/../x')"),
    ("release.base_branch", "main/../../x", "key 'release.base_branch': Value error, must be letters, digits, '.', '_', "
     "'-' or '/', start with a letter or digit, and hold no '..' (got 'main/../../x')"),
    ("train.hidden_units", [-64, 0], "key 'train.hidden_units.0': Input should be greater than or equal to 1 (got -64)"),
    ("train.epochs", -5, "key 'train.epochs': Input should be greater than or equal to 1 or Input should be 'auto' (got -5)"),
    ("train.epochs", 10**30, "key 'train.epochs': Input should be less than or equal to 100000 or Input should be 'auto' "
     "(got 1000000000000000000000000000000)"),
    ("train.learning_rate", float("nan"), "key 'train.learning_rate': Input should be a finite number (got nan)"),
    ("train.batch_size", 0, "key 'train.batch_size': Input should be greater than or equal to 1 (got 0)"),
    ("split.test_size", 1.5, "key 'split.test_size': Input should be less than 1 (got 1.5)"),
    ("split.seed", -1, "key 'split.seed': Input should be greater than or equal to 0 (got -1)"),
    ("train.seed", 2**40, "key 'train.seed': Input should be less than 4294967296 (got 1099511627776)"),
    ("offload.deltas", [0.1, 2.0], "key 'offload.deltas.1': Input should be less than or equal to 1 (got 2.0)"),
    ("automation.cron", "every night", "key 'automation.cron': Value error, must be a cron expression of five fields "
     "(minute hour day month weekday) (got 'every night')"),
    ("automation.timezone", "Mars/Olympus", "key 'automation.timezone': Value error, must be an IANA time zone such as "
     "UTC or Europe/Paris (got 'Mars/Olympus')"),
    ("data.sensitive_features", ["s" * 200], "key 'data.sensitive_features.0': Value error, is 200 characters; MLflow "
     f"metric names hold at most 250, so a column at most 180 (got {repr('s' * 200)[:79]}…)"),
    ("data.numeric", ["a|b"], "key 'data.numeric.0': Value error, must be letters, digits, '_', '-', '.', ' ', ':' or '/' "
     "(what MLflow accepts in a metric name) (got 'a|b')"),
    ("data.thousands", ";", "key 'data.thousands': Input should be ',', '.', \"'\", '_', ' ', '\\xa0' or '\\u202f' (got ';')"),
])
def test_values_a_library_would_reject_later_are_refused_at_load(small_project: Path, key, value, expected):
    assert _refused(small_project / "params.yaml", key, value) == f"params.yaml: {expected}"


def test_cleanup_removes_only_dead_processes_own_temp_folders_inside_the_project(small_project: Path,
                                                                                tmp_path_factory: pytest.TempPathFactory):
    settings = load_settings(small_project / "params.yaml")
    dead = _dead_pid()
    stale = [small_project / "models" / f".trained.tmp-{dead}-k3j9x_", small_project / "reports" / f".drift.json.tmp-{dead}-a1",
             small_project / "releases" / "adult-income" / f".7.tmp-{dead}"]
    kept = [small_project / "reports" / ".my.notes", small_project / "reports" / ".cache.v2",  # a user's folders
            small_project / "models" / f".trained.tmp-{os.getpid()}-live"]  # a live process's write
    outside = tmp_path_factory.mktemp("outside")
    (outside / f".x.tmp-{dead}-zz").mkdir(parents=True)
    (small_project / "releases").mkdir(exist_ok=True)
    (small_project / "releases" / "linked").symlink_to(outside)  # a link out of the project is never followed
    for folder in stale + kept:
        (folder / "part").mkdir(parents=True)
    folders = [*output_folders(settings), small_project / "releases" / "linked"]
    assert leftover_temp_folders(folders, output_roots(settings)) == sorted(stale)
    assert remove_leftovers(folders, output_roots(settings)) == sorted(stale)
    assert not any(folder.exists() for folder in stale)
    assert all((folder / "part").is_dir() for folder in kept)
    assert (outside / f".x.tmp-{dead}-zz").is_dir()


def test_columns_mlflow_would_refuse_stop_the_source_read(small_project: Path):
    from pipelines.data.steps import raw_dataset

    source = small_project / "train.csv"
    long = "c" * 5011
    (small_project / "wide.csv").write_text(f"age,{long},sex,race,income\n" + "".join(
        f"{20 + i % 50},{i},{'Male' if i % 2 else 'Female'},White,{'>50K' if i % 3 else '<=50K'}\n" for i in range(200)))
    settings = load_settings(small_project / "params.yaml", {
        "data.source": "wide.csv", "data.test_source": None, "data.columns": None, "data.categorical": [],
        "data.numeric": [], "data.drop": [], "data.pii": [], "data.label": "income", "data.positive_label": ">50K",
        "data.sensitive_features": ["sex", "race"]})
    assert source.is_file()
    with pytest.raises(PipelineError) as caught:
        raw_dataset(settings)
    assert str(caught.value) == (f"data.source: column {long[:39] + '…'!r} is 5011 characters; MLflow metric names hold "
                                 "at most 250, so a column at most 180 (drop it with data.drop, or rename it)")


@pytest.mark.parametrize(("key", "reason"), [
    ("20260101", "write it as 2026-01-01"), ("2026-W01-1", "write it as 2025-12-29"),
    ("../2026-01-01", "Invalid isoformat string: '../2026-01-01'"), ("2026-13-01", "month must be in 1..12")])
def test_partition_days_have_one_spelling(key: str, reason: str):
    from pipelines.data.partitions import parse_day

    with pytest.raises(PipelineError) as caught:
        parse_day(key)
    assert str(caught.value) == f"daily partition {key!r} is not a YYYY-MM-DD date ({reason})"
