"""`mobile-mlops services up|down|run`: the production profile on one machine, on loopback.

PostgreSQL (a cluster in .services/postgres: Dagster's runs and events, MLflow's tracking store), Redis (the
Celery broker), an MLflow tracking server with proxied artifacts, Celery workers, the Dagster daemon (run queue)
and webserver, and the monitoring of cli/monitoring.py (telemetry server, pipeline exporter, Prometheus,
Alertmanager). Each server is a child process in a session of its own, its output turned into JSON lines in
.services/logs/<name>.log (cli/jsonlog.py); .services/stack.json records their ids and ports, and `down` stops
exactly those. docs/deployment.md says what each stores and how to run it for real.
"""
from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from cli import monitoring
from pipelines.core.errors import PipelineError
from pipelines.core.io import write_json

PROJECT = Path(__file__).resolve().parents[1]
TEMPLATE = PROJECT / "deploy" / "services" / "dagster.yaml"


def postgres_bin() -> Path | None:
    """PostgreSQL's server tools: $MOBILE_MLOPS_PG_BIN, else the newest /usr/lib/postgresql/N/bin (Debian, Ubuntu),
    else the folder of `initdb` on PATH."""
    if folder := os.environ.get("MOBILE_MLOPS_PG_BIN"):
        return Path(folder)
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                   key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0)
    if found:
        return found[-1].parent
    return Path(which).resolve().parent if (which := shutil.which("initdb")) else None


PG_BIN = postgres_bin() or Path("/usr/lib/postgresql/15/bin")
PG_USER = "mobile"  # the cluster's superuser; trust auth on loopback and the socket folder only
CELERY_CONFIG_MODULE = "dagster_celery_config"
VENV_BIN = Path(sys.executable).parent
PORT_NAMES = ("postgres", "redis", "mlflow", "dagster", *monitoring.NAMES)  # each loopback port `--port` can set


def _ephemeral_floor() -> int:
    """The lowest port the kernel hands out by itself (to bind(0) and to outgoing connections)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def first_free(ports: Iterable[int]) -> int | None:
    """The first of `ports` that can be bound on 127.0.0.1 right now (bound, then released), or None."""
    for port in ports:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    return None


def free_port() -> int:
    """A TCP port nobody uses right now on 127.0.0.1, below the kernel's ephemeral range: a port from bind(0) can be
    taken by any outgoing connection or auto-bound server (a code server, a client) before our server binds it."""
    floor = _ephemeral_floor()
    low = max(1024, min(20000, floor - 2048))
    port = first_free(random.Random().sample(range(low, floor), min(200, floor - low)))
    if port is not None:
        return port
    with socket.socket() as sock:  # the low range is full: any port the kernel gives
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _log_error(log: Path) -> str:
    """The last error line of a server's JSON-lines log ('' when none)."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    for line in reversed(lines):
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        text = str(entry.get("message") or entry.get("event") or "")
        if str(entry.get("level", "")).lower() in ("error", "critical", "fatal") and text:
            return text
    return ""


@dataclass
class Stack:
    """Where the stack lives and how to reach it; saved as stack.json so `down` and `run` find it."""

    folder: Path
    params: Path
    workers: int = 2
    ports: dict[str, int] = field(default_factory=dict)
    pids: dict[str, int] = field(default_factory=dict)

    @property
    def state(self) -> Path:
        return self.folder / "stack.json"

    def url(self, name: str) -> str:
        if name in monitoring.NAMES:
            return f"http://127.0.0.1:{self.ports[name]}"
        return {"dagster_pg": f"postgresql+psycopg2://{PG_USER}@127.0.0.1:{self.ports['postgres']}/dagster",
                "mlflow_pg": f"postgresql+psycopg2://{PG_USER}@127.0.0.1:{self.ports['postgres']}/mlflow",
                "broker": f"redis://127.0.0.1:{self.ports['redis']}/0",
                "backend": f"redis://127.0.0.1:{self.ports['redis']}/1",
                "mlflow": f"http://127.0.0.1:{self.ports['mlflow']}",
                "dagster": f"http://127.0.0.1:{self.ports['dagster']}"}[name]

    def env(self) -> dict[str, str]:
        """What every process of the stack (and a run on it) sees: the profile is configuration only."""
        path = os.environ.get("PYTHONPATH", "")
        return {**os.environ, "DAGSTER_HOME": str(self.folder / "dagster"), "DAGSTER_PG_URL": self.url("dagster_pg"),
                "MLFLOW_TRACKING_URI": self.url("mlflow"), "MOBILE_MLOPS_EXECUTOR": "celery",
                "MOBILE_MLOPS_AUTOMATION": "running",  # nightly schedule and sensors on (assets/automation.py)
                "MOBILE_MLOPS_CELERY_BROKER": self.url("broker"), "MOBILE_MLOPS_CELERY_BACKEND": self.url("backend"),
                "MOBILE_MLOPS_PARAMS": str(self.params), "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '')}",
                "MOBILE_MLOPS_PROGRESS": "json", "PYTHONUNBUFFERED": "1",  # progress lines as JSON, at once
                "PYTHONPATH": os.pathsep.join(p for p in (str(PROJECT), path) if p)}

    def save(self) -> None:
        write_json(self.state, {**asdict(self), "folder": str(self.folder), "params": str(self.params)})

    @classmethod
    def load(cls, folder: Path) -> Stack:
        state = folder / "stack.json"
        if not state.is_file():
            raise PipelineError(f"{state}: no stack is running here (start one with `make services`)")
        raw = json.loads(state.read_text())
        return cls(Path(raw["folder"]), Path(raw["params"]), raw["workers"], raw["ports"], raw["pids"])


def _as_postgres(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run its tools as the `postgres` system user then."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def _run(command: list[str], what: str, **kwargs) -> None:
    done = subprocess.run(command, capture_output=True, text=True, **kwargs)
    if done.returncode != 0:
        last = (done.stderr or done.stdout).strip().splitlines()
        raise PipelineError(f"{what} failed: {last[-1] if last else f'exit {done.returncode}'}")


def start_postgres(stack: Stack) -> None:
    """A cluster in <folder>/postgres (created on first use), on a loopback port, its socket in the folder."""
    data, sockets = stack.folder / "postgres", stack.folder / "postgres-socket"
    if os.geteuid() == 0:
        for each in (stack.folder, stack.folder.parent):
            each.chmod(each.stat().st_mode | 0o711)  # let `postgres` reach its folders
    sockets.mkdir(parents=True, exist_ok=True)
    if not (data / "PG_VERSION").is_file():
        data.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(data, "postgres")
            shutil.chown(sockets, "postgres")
        _run(_as_postgres([str(PG_BIN / "initdb"), "-D", str(data), "-U", PG_USER, "--auth=trust", "-E", "UTF8"]),
             "initdb")
    # its own log as JSON lines in <folder>/postgres/log/postgres.json (the collector appends, one object a line)
    options = (f"-p {stack.ports['postgres']} -k {sockets} -c listen_addresses=127.0.0.1 -c log_destination=jsonlog "
               "-c logging_collector=on -c log_filename=postgres.log -c log_rotation_age=0 -c log_rotation_size=0")
    _run(_as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(data / "server.log"), "-w", "-t", "60",
                       "-o", options, "start"]), "pg_ctl start")
    for database in ("dagster", "mlflow"):
        done = subprocess.run([str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(stack.ports["postgres"]),
                               "-U", PG_USER, database], capture_output=True, text=True)
        if done.returncode != 0 and "already exists" not in done.stderr:
            raise PipelineError(f"createdb {database} failed: {done.stderr.strip()}")


def stop_postgres(stack: Stack) -> None:
    data = stack.folder / "postgres"
    if (data / "postmaster.pid").is_file():
        subprocess.run(_as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]),
                       capture_output=True)


def _spawn(stack: Stack, name: str, command: list[str], env: dict[str, str] | None = None) -> int:
    """`command` in a session of its own, its output as JSON lines in logs/<name>.log (cli/jsonlog.py)."""
    logs = stack.folder / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    wrapped = [sys.executable, "-m", "cli.jsonlog", name, str(logs / f"{name}.log"), "--", *command]
    with open(logs / f"{name}.wrapper.log", "ab") as log:  # only the wrapper's own failure would land here
        process = subprocess.Popen(wrapped, cwd=PROJECT, env=env or stack.env(), stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    stack.pids[name] = process.pid
    stack.save()
    return process.pid


def _wait_http(url: str, name: str, stack: Stack, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except OSError:
            pid = stack.pids.get(name)
            if pid is not None and not _alive(pid):
                log = stack.folder / "logs" / f"{name}.log"
                cause = _log_error(log)
                raise PipelineError(
                    f"{name} exited while starting{': ' + cause if cause else ''} (see {log})"
                ) from None
            time.sleep(0.5)
    raise PipelineError(f"{name} did not answer {url} within {timeout:.0f} s")


def _alive(pid: int) -> bool:
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
        return waited == 0
    except ChildProcessError:  # not our child (another command started it): ask the kernel
        try:
            os.kill(pid, 0)
            return True
        except ProcessLookupError:
            return False


def start_worker(stack: Stack, index: int) -> int:
    """One Celery worker (one step at a time) consuming Dagster's queue on the broker."""
    config = stack.folder / "celery"
    env = stack.env()
    env["PYTHONPATH"] = f"{config}{os.pathsep}{env['PYTHONPATH']}"
    return _spawn(stack, f"worker{index}", [str(VENV_BIN / "celery"), "-A", "dagster_celery.app", "worker",
                                           "-Q", "dagster", "-c", "1", "--prefetch-multiplier=1", "-n",
                                           f"worker{index}@%h", "--loglevel", "INFO"], env)


def parse_ports(pairs: list[str]) -> dict[str, int]:
    """`--port NAME=PORT` pairs (a loopback port per server; 0 or absent: a free one)."""
    ports = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or name not in PORT_NAMES:
            raise PipelineError(f"--port {pair}: expected NAME=PORT with NAME one of {', '.join(PORT_NAMES)}")
        if not value.isdigit() or int(value) > 65535:
            raise PipelineError(f"--port {pair}: the port must be a number from 0 to 65535")
        ports[name] = int(value)
    return ports


def up(folder: Path, params: Path, workers: int = 2, ports: dict[str, int] | None = None) -> Stack:
    """Start every server (on `ports` where given, else free loopback ports); on any failure stop what was started
    and raise."""
    from assets.build import CELERY_SETTINGS

    if (folder / "stack.json").is_file():
        raise PipelineError(f"{folder / 'stack.json'}: a stack is already running here (`make services-down`)")
    folder.mkdir(parents=True, exist_ok=True)
    chosen = ports or {}
    stack = Stack(folder.resolve(), params.resolve(), workers,
                  {name: chosen.get(name) or free_port() for name in PORT_NAMES})
    stack.save()
    try:
        start_postgres(stack)
        (stack.folder / "redis").mkdir(exist_ok=True)
        _spawn(stack, "redis", ["redis-server", "--port", str(stack.ports["redis"]), "--bind", "127.0.0.1",
                                "--dir", str(stack.folder / "redis"), "--save", "", "--appendonly", "no"])
        _spawn(stack, "mlflow", [str(VENV_BIN / "mlflow"), "server", "--backend-store-uri", stack.url("mlflow_pg"),
                                 "--artifacts-destination", str(stack.folder / "mlartifacts"), "--host", "127.0.0.1",
                                 "--port", str(stack.ports["mlflow"]), "--workers", "1"])
        home = stack.folder / "dagster"
        home.mkdir(exist_ok=True)
        shutil.copy(TEMPLATE, home / "dagster.yaml")
        (stack.folder / "celery").mkdir(exist_ok=True)
        settings = {"broker_url": stack.url("broker"), "result_backend": stack.url("backend"), **CELERY_SETTINGS}
        (stack.folder / "celery" / f"{CELERY_CONFIG_MODULE}.py").write_text(
            "".join(f"{key} = {value!r}\n" for key, value in settings.items()))
        _wait_http(stack.url("mlflow") + "/health", "mlflow", stack)
        for index in range(1, workers + 1):
            start_worker(stack, index)
        workspace = str(PROJECT / "workspace.yaml")
        _spawn(stack, "daemon", [str(VENV_BIN / "dagster-daemon"), "run", "-w", workspace, "--log-format", "json"])
        _spawn(stack, "webserver", [str(VENV_BIN / "dagster-webserver"), "-w", workspace, "-h", "127.0.0.1",
                                    "-p", str(stack.ports["dagster"]), "--log-format", "json"])
        _wait_http(stack.url("dagster") + "/server_info", "webserver", stack)
        monitoring.start(stack.folder, stack.params, stack.ports, stack.env(),
                         lambda name, command, env: _spawn(stack, name, command, env),
                         lambda url, name: _wait_http(url, name, stack, timeout=120))
    except BaseException:
        down(stack.folder)
        raise
    return stack


def stop(pid: int, grace: float = 20) -> None:
    """Stop one process group we started: SIGTERM, then SIGKILL after `grace` seconds."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.2)
    if _alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)


def down(folder: Path) -> None:
    """Stop what stack.json lists (webserver and daemon first, PostgreSQL last); forget the stack."""
    state = folder / "stack.json"
    if not state.is_file():
        return
    stack = Stack.load(folder)
    for name in sorted(stack.pids,
                       key=lambda n: ("webserver", "daemon").index(n) if n in ("webserver", "daemon") else 2):
        stop(stack.pids[name])
    stop_postgres(stack)
    state.unlink()


def _client(stack: Stack):
    from dagster_graphql import DagsterGraphQLClient

    return DagsterGraphQLClient("127.0.0.1", port_number=stack.ports["dagster"], timeout=60)


def submit(folder: Path) -> str:
    """Queue one run of the release job on the stack; its id."""
    from assets.automation import JOB

    return _client(Stack.load(folder)).submit_job_execution(JOB)


def wait(folder: Path, run_id: str, timeout: float = 3600) -> str:
    """Poll until the run ends; its final status (SUCCESS, FAILURE, CANCELED), or the last one seen at timeout."""
    client, deadline, status = _client(Stack.load(folder)), time.monotonic() + timeout, ""
    while time.monotonic() < deadline:
        status = client.get_run_status(run_id).value
        if status in ("SUCCESS", "FAILURE", "CANCELED"):
            break
        time.sleep(2)
    return status


def run(folder: Path, timeout: float = 3600, say=print) -> tuple[str, str, float]:
    """Submit the release job to the stack's queue and wait for it: (run id, final status, seconds)."""
    started = time.perf_counter()
    run_id = submit(folder)
    say(f"submitted run {run_id} ({Stack.load(folder).url('dagster')}/runs/{run_id})")
    return run_id, wait(folder, run_id, timeout), time.perf_counter() - started
