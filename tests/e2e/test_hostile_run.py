"""A killed `mobile-mlops run` (real subprocess, SIGKILL) leaves its run STARTED in the Dagster home; the next run
marks it failed, launches and finishes. Both run on data whose category values are hostile, and the release's
model card and Dagster's Markdown metadata show them as inert text (slow: two pipeline runs)."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import write_small_project

pytestmark = pytest.mark.slow
CLI = str(Path(sys.executable).with_name("mobile-mlops"))
HOSTILE = {"White": "<script>alert(1)</script>", "Black": "=cmd|' /C calc'!A0",
           "Asian-Pac-Islander": "[x](javascript:alert(1))", "Other": "a|b"}


def _hostile_project(folder: Path) -> Path:
    write_small_project(folder)
    for name in ("train.csv", "test.csv"):
        text = (folder / name).read_text()
        for value, hostile in HOSTILE.items():
            text = text.replace(f", {value},", f", {hostile},")
        (folder / name).write_text(text)
    return folder


def _instance(project: Path):
    """The project's Dagster instance (its dagster.yaml reads DAGSTER_HOME)."""
    from dagster import DagsterInstance

    os.environ["DAGSTER_HOME"] = str(project / ".dagster")
    return DagsterInstance.from_config(str(project / ".dagster"))


def _run(project: Path, kill_in: str | None = None) -> tuple[int, str]:
    env = {**os.environ, "DAGSTER_HOME": str(project / ".dagster")}
    process = subprocess.Popen([CLI, "run"], cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, start_new_session=True)
    printed = []
    for line in process.stdout:
        printed.append(line)
        if kill_in and line.strip() == f"start {kill_in}":
            time.sleep(1.0)
            os.killpg(process.pid, signal.SIGKILL)
            break
    process.wait(timeout=900)
    return process.returncode, "".join(printed)


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> tuple[Path, str, str]:
    """The project after a run killed in training and the next, complete run: (project, killed run id, output)."""
    from dagster import DagsterRunStatus

    project = _hostile_project(tmp_path_factory.mktemp("hostile"))
    code, printed = _run(project, kill_in="trained_model")
    assert code == -signal.SIGKILL, printed
    with _instance(project) as instance:
        killed = [r.run_id for r in instance.get_runs() if r.status == DagsterRunStatus.STARTED]
    assert len(killed) == 1, "the killed run stays STARTED: what held the queue"
    code, printed = _run(project)
    assert code == 0, printed
    return project, killed[0], printed


def test_the_next_run_marks_the_killed_one_failed_and_finishes(finished):
    from dagster import DagsterRunStatus

    project, killed, printed = finished
    assert f"marked 1 run(s) failed whose process is gone: {killed}" in printed
    with _instance(project) as instance:
        assert instance.get_run_by_id(killed).status == DagsterRunStatus.FAILURE
        assert next(r.status for r in instance.get_runs()) == DagsterRunStatus.SUCCESS
        assert not [r for r in instance.get_runs() if r.status == DagsterRunStatus.STARTED]
    assert (project / "releases" / "adult-income" / "1" / "manifest.json").is_file()


def _unescaped_pipes(line: str) -> int:
    return len(re.findall(r"(?<!\\)\|", line.replace("\\\\", "")))


def test_hostile_category_values_are_inert_in_the_model_card(finished):
    project, _, _ = finished
    card = (project / "releases" / "adult-income" / "1" / "model_card.md").read_text()
    assert "<script" not in card and "](javascript:" not in card.lower() and "[x](" not in card
    assert "&lt;script>alert(1)&lt;/script>" in card  # shown, as text
    assert "'=cmd\\|' /C calc'!A0" in card  # a table cell: no live formula, no broken column
    assert "a\\|b" in card
    for table in re.findall(r"(?:^\|.*\|$\n?)+", card, flags=re.M):
        widths = {_unescaped_pipes(line) for line in table.splitlines()}
        assert len(widths) == 1, table  # every row of every table has the header's columns


def test_hostile_category_values_are_inert_in_dagster_markdown_metadata(finished):
    from dagster import AssetKey

    project, _, _ = finished
    with _instance(project) as instance:
        event = instance.get_latest_materialization_event(AssetKey("fairness_report"))
        metadata = event.asset_materialization.metadata
    markdown = [value.value for value in metadata.values() if type(value).__name__ == "MarkdownMetadataValue"]
    assert markdown and any("&lt;script>" in text for text in markdown)
    assert not any("<script" in text or "](javascript:" in text for text in markdown)
