"""The services profile's monitoring: the telemetry server, the pipeline exporter, Prometheus and Alertmanager.

Prometheus scrapes the telemetry server (job `telemetry`) and the pipeline exporter (job `pipeline`: the FinOps
budget gauges and the nightly run's last success), evaluates deploy/services/prometheus/alerts.yml and sends alerts
to Alertmanager, whose one route POSTs them to params fleet.webhook_url. Configs and data live in the stack folder.
"""
from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Callable
from pathlib import Path

from cli import alertmanager, prometheus
from pipelines.core.config import load_settings
from pipelines.core.io import write_private

NAMES = ("telemetry", "exporter", "alertmanager", "prometheus")  # started in this order
KEY_FILE = "telemetry.key"  # the apps' HMAC key when the environment does not hold one


def telemetry_key(folder: Path, env_name: str) -> str:
    """The telemetry HMAC key: $<fleet.hmac_key_env> if set, else one made once and kept in <folder>/telemetry.key."""
    if key := os.environ.get(env_name):
        return key
    path = folder / KEY_FILE
    if not path.is_file():
        write_private(path, (secrets.token_hex(32) + "\n").encode())
    return path.read_text().strip()


def start(folder: Path, params: Path, ports: dict[str, int], env: dict[str, str],
          spawn: Callable[[str, list[str], dict[str, str]], int], wait: Callable[[str, str], None]) -> None:
    """Start the four servers with `spawn(name, command, env)`; `wait(url, name)` until each answers."""
    settings = load_settings(params)
    cli = [sys.executable, "-m", "cli.main", "--log-format", "json"]
    key_env = settings.params.fleet.hmac_key_env
    spawn("telemetry", [*cli, "telemetry", "serve", "--host", "127.0.0.1", "--port", str(ports["telemetry"]),
                        "--params", str(params)], {**env, key_env: telemetry_key(folder, key_env)})
    wait(f"http://127.0.0.1:{ports['telemetry']}/healthz", "telemetry")
    spawn("exporter", [*cli, "services", "exporter", "--port", f"exporter={ports['exporter']}",
                       "--params", str(params)], env)
    wait(f"http://127.0.0.1:{ports['exporter']}/metrics", "exporter")
    am_folder = folder / "alertmanager"
    am_config = alertmanager.write_config(am_folder, settings.params.fleet.webhook_url)
    spawn("alertmanager", alertmanager.command(am_folder, am_config, ports["alertmanager"]), env)
    wait(f"http://127.0.0.1:{ports['alertmanager']}/-/ready", "alertmanager")
    prom_folder = folder / "prometheus"
    prom_config = prometheus.write_config(
        prom_folder, {"telemetry": f"127.0.0.1:{ports['telemetry']}", "pipeline": f"127.0.0.1:{ports['exporter']}"},
        alertmanager=f"127.0.0.1:{ports['alertmanager']}")
    spawn("prometheus", prometheus.command(prom_folder, prom_config, ports["prometheus"]), env)
    wait(f"http://127.0.0.1:{ports['prometheus']}/-/ready", "prometheus")
