"""One run at a time per project, and the temp folders a killed run left are removed by the next one."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from pipelines.catalog import output_folders
from pipelines.core.config import load_settings
from pipelines.core.lock import LOCK_FILE, leftover_temp_folders, remove_leftovers

HOLD = """
import sys, time
from pathlib import Path
from pipelines.core.lock import project_lock
with project_lock(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(30)
"""


def test_a_second_run_stops_with_one_line_naming_the_holder(small_project: Path):
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(small_project)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        done = subprocess.run([sys.executable, "-m", "cli.main", "stage", "raw_dataset"], cwd=small_project,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 1
        assert done.stderr.strip() == (f"error: {small_project / LOCK_FILE}: the project is busy: pid {holder.pid} "
                                       f"since {(small_project / LOCK_FILE).read_text().strip().split(' since ')[1]} "
                                       "is running; wait for it, or pass --wait")
        assert not (small_project / "data" / "raw").exists()
    finally:
        holder.kill()
        holder.wait()
    time.sleep(0.1)  # the OS released the dead holder's lock: the next run goes ahead
    again = subprocess.run([sys.executable, "-m", "cli.main", "stage", "raw_dataset"], cwd=small_project,
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr


def test_temp_folders_of_a_killed_run_are_found_and_removed(small_project: Path):
    settings = load_settings(small_project / "params.yaml")
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # a process that is gone: what a killed run is
    stale = [small_project / "models" / f".trained.tmp-{child.pid}-k3j9x_",
             small_project / "reports" / f".drift.json.tmp-{child.pid}-a1b2",
             small_project / "releases" / "adult-income" / f".7.tmp-{child.pid}"]
    for folder in stale:
        (folder / "part").mkdir(parents=True)
    kept = small_project / "models" / "trained"
    kept.mkdir()
    assert leftover_temp_folders(output_folders(settings)) == sorted(stale)
    assert remove_leftovers(output_folders(settings)) == sorted(stale)
    assert not any(folder.exists() for folder in stale) and kept.is_dir()


WAITER = """
import sys
from pathlib import Path
from pipelines.core.lock import project_lock
with project_lock(Path(sys.argv[1]), wait=True, say=lambda text: print(text, flush=True)):
    print("got", flush=True)
"""


def test_a_step_inside_the_holding_run_goes_on_and_a_dagster_step_elsewhere_waits(small_project: Path):
    from pipelines.core.lock import project_lock

    with project_lock(small_project), project_lock(small_project):  # a step inside `run`: the lock is its run's
        waiter = subprocess.Popen([sys.executable, "-c", WAITER, str(small_project)], stdout=subprocess.PIPE, text=True)
        assert waiter.stdout.readline().startswith(f"waiting for the project lock (pid {os.getpid()} since ")
        time.sleep(0.5)
        assert waiter.poll() is None  # a UI-launched step waits while the CLI run trains
    assert waiter.stdout.readline().strip() == "got"
    assert waiter.wait(timeout=60) == 0
