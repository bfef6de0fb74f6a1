"""Prometheus (Debian's /usr/bin/prometheus) scraping the telemetry server with deploy/services/prometheus rules."""
from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

from pipelines.core.errors import PipelineError

RULES = Path(__file__).resolve().parents[1] / "deploy" / "services" / "prometheus" / "alerts.yml"


def binary() -> str:
    """The prometheus executable on PATH, or a one-line error naming the package."""
    found = shutil.which("prometheus")
    if not found:
        raise PipelineError("prometheus: not found on PATH (apt-get install prometheus)")
    return found


def write_config(folder: Path, telemetry: str, rules: Path = RULES, interval: str = "15s") -> Path:
    """prometheus.yml in `folder`: one job `telemetry` scraping host:port `telemetry`, evaluating `rules`."""
    folder.mkdir(parents=True, exist_ok=True)
    config = {"global": {"scrape_interval": interval, "evaluation_interval": interval},
              "rule_files": [str(rules)],
              "scrape_configs": [{"job_name": "telemetry", "static_configs": [{"targets": [telemetry]}]}]}
    path = folder / "prometheus.yml"
    path.write_text(json.dumps(config, indent=2) + "\n")  # JSON is YAML: no second serializer
    return path


def start(folder: Path, config: Path, port: int, log: Path) -> subprocess.Popen:
    """Prometheus on 127.0.0.1:`port` with its TSDB under `folder`; returns once /-/ready answers."""
    command = [binary(), f"--config.file={config}", f"--storage.tsdb.path={folder / 'tsdb'}",
               f"--web.listen-address=127.0.0.1:{port}"]
    with log.open("ab") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise PipelineError(f"prometheus: exited with {process.returncode} (log: {log})")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=2):
                return process
        except OSError:
            time.sleep(0.3)
    process.terminate()
    raise PipelineError(f"prometheus: not ready on port {port} after 60 s (log: {log})")


def api(port: int, path: str) -> dict:
    """GET /api/v1/<path> of the Prometheus server: its `data`."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/{path}", timeout=10) as response:
        return json.loads(response.read())["data"]
