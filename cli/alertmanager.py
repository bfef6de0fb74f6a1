"""Alertmanager (Debian's prometheus-alertmanager) routing every alert Prometheus sends to the project's webhook."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from cli.prometheus import ready
from pipelines.core.errors import PipelineError

NAMES = ("prometheus-alertmanager", "alertmanager")  # Debian's name, upstream's name


def binary() -> str:
    """The alertmanager executable on PATH, or a one-line error naming the package."""
    for name in NAMES:
        if found := shutil.which(name):
            return found
    raise PipelineError("alertmanager: not found on PATH (apt-get install prometheus-alertmanager)")


def write_config(folder: Path, webhook_url: str | None, group_wait: str = "30s", group_interval: str = "5m",
                 repeat_interval: str = "4h") -> Path:
    """alertmanager.yml in `folder`: one route, grouped by alert name, to a receiver `webhook` that POSTs
    Alertmanager's JSON payload to `webhook_url` (fleet.webhook_url); with no URL the receiver has no target."""
    folder.mkdir(parents=True, exist_ok=True)
    receiver: dict = {"name": "webhook"}
    if webhook_url:
        receiver["webhook_configs"] = [{"url": webhook_url, "send_resolved": True}]
    config = {"route": {"receiver": "webhook", "group_by": ["alertname"], "group_wait": group_wait,
                        "group_interval": group_interval, "repeat_interval": repeat_interval},
              "receivers": [receiver]}
    path = folder / "alertmanager.yml"
    path.write_text(json.dumps(config, indent=2) + "\n")  # JSON is YAML
    return path


def command(folder: Path, config: Path, port: int) -> list[str]:
    """The server's command line: loopback `port`, state under `folder`, no HA cluster port, JSON log lines."""
    return [binary(), f"--config.file={config}", f"--storage.path={folder / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=", "--log.format=json"]


def start(folder: Path, config: Path, port: int, log: Path) -> subprocess.Popen:
    """Alertmanager on 127.0.0.1:`port`; returns once /-/ready answers."""
    with log.open("ab") as out:
        process = subprocess.Popen(command(folder, config, port), stdout=out, stderr=subprocess.STDOUT)
    ready(process, "alertmanager", port, log)
    return process
