"""Prometheus (Debian's /usr/bin/prometheus) scraping the stack with deploy/services/prometheus rules, alerting
through Alertmanager."""
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


def write_config(folder: Path, targets: str | dict[str, str], rules: Path = RULES, interval: str = "15s",
                 alertmanager: str | None = None) -> Path:
    """prometheus.yml in `folder`: one scrape job per name -> host:port in `targets` (a bare host:port is the job
    `telemetry`), evaluating `rules`, sending alerts to the Alertmanager at host:port `alertmanager` if given."""
    folder.mkdir(parents=True, exist_ok=True)
    jobs = {"telemetry": targets} if isinstance(targets, str) else targets
    config: dict = {"global": {"scrape_interval": interval, "evaluation_interval": interval},
                    "rule_files": [str(rules)],
                    "scrape_configs": [{"job_name": job, "static_configs": [{"targets": [target]}]}
                                       for job, target in jobs.items()]}
    if alertmanager:
        config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]}
    path = folder / "prometheus.yml"
    path.write_text(json.dumps(config, indent=2) + "\n")  # JSON is YAML: no second serializer
    return path


def command(folder: Path, config: Path, port: int) -> list[str]:
    """The server's command line: loopback `port`, TSDB under `folder`, logs as JSON lines."""
    return [binary(), f"--config.file={config}", f"--storage.tsdb.path={folder / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}", "--log.format=json"]


def start(folder: Path, config: Path, port: int, log: Path) -> subprocess.Popen:
    """Prometheus on 127.0.0.1:`port` with its TSDB under `folder`; returns once /-/ready answers."""
    with log.open("ab") as out:
        process = subprocess.Popen(command(folder, config, port), stdout=out, stderr=subprocess.STDOUT)
    ready(process, "prometheus", port, log)
    return process


def ready(process: subprocess.Popen | None, name: str, port: int, log: Path, timeout: float = 60) -> None:
    """Wait until 127.0.0.1:`port`/-/ready answers (Prometheus and Alertmanager both have it), or one line."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise PipelineError(f"{name}: exited with {process.returncode} (log: {log})")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    if process is not None:
        process.terminate()
    raise PipelineError(f"{name}: not ready on port {port} after {timeout:.0f} s (log: {log})")


def api(port: int, path: str) -> dict:
    """GET /api/v1/<path> of the Prometheus server: its `data`."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/{path}", timeout=10) as response:
        return json.loads(response.read())["data"]
