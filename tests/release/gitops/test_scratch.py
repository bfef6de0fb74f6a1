"""GitOps temp folders: a killed command's are removed by the next one; a running command's are kept."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from pipelines.release.gitops.git import remove_stale_scratch

KILLED = """
import os, signal
from pipelines.release.gitops.git import scratch
folder = scratch("propose")
open(os.path.join(folder.name, "0.txt"), "w").write("report")
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_killed_commands_temp_folder_is_removed_and_a_live_one_kept(tmp_path: Path):
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", KILLED], env=env, cwd=Path(__file__).resolve().parents[3])
    assert done.returncode == -signal.SIGKILL
    (left,) = tmp_path.glob("mobile-mlops-propose-*")
    assert (left / "0.txt").is_file()
    live = tmp_path / f"mobile-mlops-index-{os.getpid()}-x1y2"  # this process is alive: its folder stays
    live.mkdir()
    unrelated = tmp_path / "mobile-mlops-notes"
    unrelated.mkdir()
    assert remove_stale_scratch(tmp_path) == [left]
    assert live.is_dir() and unrelated.is_dir() and not left.exists()
