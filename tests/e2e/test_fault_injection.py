"""Fault injection (slow): `mobile-mlops run` is SIGKILLed inside three steps, then run to the end.

After every kill: each published release verifies and no MLflow version without a release holds an alias.
After the run that completes: no temp folder is left, release numbers run 1..k without gaps, and every model
version is either tagged with its release folder or as never released (none stays pending)."""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pipelines.catalog import output_folders
from pipelines.core.config import load_settings
from pipelines.core.lock import TEMP_NAME, leftover_temp_folders
from pipelines.release.folder import release_numbers, verify_release
from pipelines.training.tracking import NEVER_RELEASED, PENDING, RELEASE_TAG, _client

pytestmark = pytest.mark.slow
CLI = str(Path(sys.executable).with_name("mobile-mlops"))


def _run(project: Path, kill_in: str | None = None, after: float = 0.0) -> tuple[int, str]:
    """Run the pipeline; with `kill_in`, SIGKILL it `after` seconds into that step. The release is killed the
    moment its temp folder appears: a thread watches for it from the start, as the step takes a fraction of a
    second and its "start" line can reach this process after the folder is gone. Returns the exit code and output."""
    env = {**os.environ, "DAGSTER_HOME": str(project / ".dagster")}
    folders = output_folders(load_settings(project / "params.yaml"))  # once: the watch must poll fast
    process = subprocess.Popen([CLI, "run", "--force", "--params", str(project / "params.yaml")], cwd=project, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    if kill_in == "release_candidate":
        threading.Thread(target=_kill_when_release_temp_appears, args=(process, folders), daemon=True).start()
    printed = []
    for line in process.stdout:
        printed.append(line)
        if kill_in and kill_in != "release_candidate" and line.strip() == f"start {kill_in}":
            time.sleep(after)
            os.killpg(process.pid, signal.SIGKILL)
            break
    process.wait(timeout=600)
    return process.returncode, "".join(printed)


def _kill_when_release_temp_appears(process: subprocess.Popen, folders: list[Path]) -> None:
    while process.poll() is None:
        if _release_temp(folders):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            return
        time.sleep(0.002)


def _release_temp(folders: list[Path]) -> list[Path]:
    """The release's temp folders: the candidate being assembled, or the copy being published."""
    return [p for folder in folders if folder.is_dir() for p in folder.iterdir()  # the live run's too
            if TEMP_NAME.fullmatch(p.name) and (p.name.startswith(".release_candidate.") or p.parent.name == "adult-income")]


def _temp_folders(project: Path) -> list[Path]:
    return leftover_temp_folders(output_folders(load_settings(project / "params.yaml")))


def _check_invariants(project: Path) -> dict[str, str]:
    """Every release verifies; an alias only ever points at a released version. Returns version -> tag."""
    settings = load_settings(project / "params.yaml")
    keys = [project / "keys" / "release-signing.pub"]
    folder = project / "releases" / "adult-income"
    for number in release_numbers(folder):
        verify_release(folder / str(number), keys)
    client = _client(settings)
    tags = {}
    for version in client.search_model_versions("name='adult-income'"):
        tags[version.version] = version.tags.get(RELEASE_TAG, "")
        if version.aliases:
            assert tags[version.version].startswith("releases/"), (version.version, version.aliases, tags)
    return tags


def test_killed_steps_leave_nothing_half_made(small_project: Path):
    project = small_project
    code, printed = _run(project)  # a first complete run: release 1
    assert code == 0, printed
    killed = []
    for step, after in (("trained_model", 1.5), ("tflite_model", 1.0), ("release_candidate", 0.0)):
        code, printed = _run(project, kill_in=step, after=after)
        assert code == -signal.SIGKILL, f"{step} was not killed:\n{printed}"
        killed.append(step)
        _check_invariants(project)
    assert _temp_folders(project), "the release kill should have left a temp folder for the next run to clean"

    code, printed = _run(project)  # the next run cleans up and completes
    assert code == 0, printed
    assert "temp folder(s) a stopped run left behind" in printed
    assert _temp_folders(project) == []
    numbers = release_numbers(project / "releases" / "adult-income")
    # numbered without gaps; the last run's candidate may equal release 1's content, and then nothing new is published
    assert numbers == list(range(1, len(numbers) + 1)) and len(numbers) >= 1
    tags = _check_invariants(project)
    assert PENDING not in tags.values(), tags
    assert NEVER_RELEASED in tags.values(), tags  # the versions whose runs were killed after registering
    released = {tag for tag in tags.values() if tag.startswith("releases/")}
    assert f"releases/adult-income/{numbers[-1]}" in released
