"""Quiet by default: library chatter written straight to fd 2 stays off the terminal; Dagster homes made by
`make run` / `make ui` have telemetry and the first-run dialog off."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from cli.quiet import dagster_home

CHILD = """
import os, sys
from cli.quiet import library_output_to_log
with library_output_to_log() as log:
    os.write(2, b"I0000 00:00:1 port.cc:153] oneDNN custom operations are on\\n")  # what C++ code does
    print("progress line", file=sys.stderr)
    log.keep = {keep}
print(log.path)
"""


def _child(keep: bool) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", CHILD.format(keep=keep)], capture_output=True, text=True, check=True)


def test_fd2_output_goes_to_a_log_and_python_stderr_stays_on_the_terminal():
    done = _child(keep=False)
    assert done.stderr == "progress line\n"
    assert not Path(done.stdout.strip()).exists()  # a successful command leaves no log behind


def test_a_failed_command_keeps_its_library_log():
    done = _child(keep=True)
    log = Path(done.stdout.strip())
    try:
        assert done.stderr == "progress line\n"
        assert "oneDNN custom operations" in log.read_text()
    finally:
        log.unlink()


def test_dagster_home_turns_off_telemetry_and_the_community_dialog_and_queues_one_run(tmp_path: Path, monkeypatch):
    config = yaml.safe_load((dagster_home(tmp_path / "home") / "dagster.yaml").read_text())
    assert {k: config[k] for k in ("telemetry", "nux", "concurrency")} == {
        "telemetry": {"enabled": False}, "nux": {"enabled": False}, "concurrency": {"runs": {"max_concurrent_runs": 1}}}
    from dagster import DagsterInstance

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    with DagsterInstance.from_config(str(tmp_path / "home")) as instance:  # what the run queue daemon reads
        assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 1
        assert type(instance.event_log_storage).__name__ == "ConsolidatedSqliteEventLogStorage"
    assert (tmp_path / "home" / "event_log.db").is_file()  # every run's events in one file
    edited = tmp_path / "home" / "dagster.yaml"
    edited.write_text("run_queue:\n  max_concurrent_runs: 2\n")
    dagster_home(tmp_path / "home")
    assert edited.read_text() == "run_queue:\n  max_concurrent_runs: 2\n"  # a user's own settings are kept


FAILING = """
import argparse, os, sys
from pathlib import Path
from cli.main import _handle
from cli.quiet import library_output_to_log
from pipelines.core.errors import PipelineError

def handler(args):
    os.write(2, b"W0000 cpu_feature_guard.cc] library noise\\n")
    raise PipelineError("data.source: bad")

with library_output_to_log(Path(sys.argv[1])) as log:
    log.keep = _handle(argparse.Namespace(handler=handler, debug=False), log.note) != 0
"""


def test_a_failed_commands_log_is_in_the_project_and_its_line_names_it(tmp_path: Path):
    import tempfile

    before = set(Path(tempfile.gettempdir()).glob("mobile-mlops-*.log"))
    done = subprocess.run([sys.executable, "-c", FAILING, str(tmp_path)], capture_output=True, text=True)
    logs = list((tmp_path / ".mobile-mlops" / "logs").glob("*.log"))
    assert len(logs) == 1 and "library noise" in logs[0].read_text()
    assert done.stderr == f"error: data.source: bad (library log: {logs[0]})\n"
    assert set(Path(tempfile.gettempdir()).glob("mobile-mlops-*.log")) == before  # nothing in /tmp any more


def test_old_logs_rotate_keeping_the_newest(tmp_path: Path):
    import os

    from cli.quiet import KEEP_LOGS, rotate

    for number in range(KEEP_LOGS + 5):
        log = tmp_path / f"{number:03d}.log"
        log.write_text("x")
        os.utime(log, (1_000_000 + number, 1_000_000 + number))
    rotate(tmp_path)
    assert sorted(p.name for p in tmp_path.glob("*.log")) == [f"{n:03d}.log" for n in range(5, KEEP_LOGS + 5)]


def test_a_command_that_succeeds_or_whose_libraries_were_silent_leaves_no_log(tmp_path: Path):
    silent = FAILING.replace("os.write(2, ", "(lambda *_: None)(2, ")  # the libraries say nothing
    done = subprocess.run([sys.executable, "-c", silent, str(tmp_path)], capture_output=True, text=True)
    assert done.stderr == "error: data.source: bad\n"  # one line, and no empty log to point at
    assert list((tmp_path / ".mobile-mlops" / "logs").glob("*.log")) == []
