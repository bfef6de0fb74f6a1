"""A warm process behind `bin/stage`, so `dvc repro` pays for TensorFlow, Great Expectations, MLflow and pandas
once instead of once per stage.

`dvc repro` starts every stage as a new process, and each one spent 2-10 s importing libraries before its step
began. The first `bin/stage` of a project starts this server (one per project and interpreter), which imports the
third-party libraries and nothing of the project; each stage is then a fork of it that imports the project's code
fresh (an edited step is always the code that runs), runs `mobile-mlops stage NAME` with the caller's working
folder, environment, stdin, stdout and stderr, and hands its exit code back. The server exits after
IDLE_SECONDS without work, when its project folder disappears, or when the interpreter's installed packages change.

On by default on Linux; `MOBILE_MLOPS_STAGE_SERVER=0` runs every stage in its own process instead (macOS is off by
default: forking after Apple's frameworks are loaded is unsafe). The socket is in a folder only its user can open.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Imported once by the server. Only third-party modules: the project's own code is imported by each stage.
PRELOAD = ("numpy", "pandas", "pyarrow.parquet", "yaml", "pydantic", "rich.console", "scipy.stats",
           "sklearn.linear_model", "sklearn.metrics", "great_expectations", "mlflow", "mlflow.tracking",
           "fairlearn.reductions", "tensorflow", "keras", "ai_edge_litert.interpreter", "coremltools",
           "coremltools.optimize.coreml", "joblib", "matplotlib.pyplot",
           # MLflow's SQLite stores: their ORM mappers take ~1.3 s to build, in every stage that logs
           "mlflow.store.tracking.sqlalchemy_store", "mlflow.store.model_registry.sqlalchemy_store")
IDLE_SECONDS = float(os.environ.get("MOBILE_MLOPS_STAGE_SERVER_IDLE", 900))
START_TIMEOUT = 300.0
BUSY = 3  # the server's exit code when another one holds the project's server lock
_HEADER = struct.Struct("!I")


def enabled() -> bool:
    """Whether stages go through the server (MOBILE_MLOPS_STAGE_SERVER=1/0; default: on Linux)."""
    wanted = os.environ.get("MOBILE_MLOPS_STAGE_SERVER", "").strip().lower()
    if wanted in ("0", "false", "no", "off"):
        return False
    return wanted in ("1", "true", "yes", "on") or sys.platform.startswith("linux")


def fingerprint() -> str:
    """What the server's imports depend on: the interpreter, its installed packages and this file."""
    site = Path(next(p for p in sys.path if p.endswith("site-packages")))
    parts = [sys.executable, str(site.stat().st_mtime_ns), str(Path(__file__).stat().st_mtime_ns)]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def socket_path(root: Path) -> Path:
    """The project's server socket, in a per-user folder (a Unix socket path must stay under 108 bytes)."""
    base = Path(os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()) / f"mobile-mlops-{os.getuid()}"
    base.mkdir(mode=0o700, exist_ok=True)
    key = hashlib.sha256(f"{root.resolve()}\n{sys.executable}".encode()).hexdigest()[:20]
    return base / f"stage-{key}.sock"


# ---- client: what bin/stage runs ------------------------------------------------------------------------------

def _connect(path: Path) -> socket.socket | None:
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        client.connect(str(path))
        return client
    except OSError:
        client.close()
        return None


def _spawn(root: Path, path: Path) -> subprocess.Popen:
    log = open(path.with_suffix(".log"), "ab")  # noqa: SIM115 - handed to the detached server, which outlives us
    return subprocess.Popen([sys.executable, "-m", "cli.stage_server", "serve", str(root)], cwd=root,
                            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)


def _server(root: Path, say) -> socket.socket | None:
    """A connection to a running server; starts one when none answers (None: it could not start)."""
    path = socket_path(root)
    connection = _connect(path)
    if connection is not None:
        return connection
    say("starting the stage server (imports the libraries once for every stage; "
        "MOBILE_MLOPS_STAGE_SERVER=0 turns it off)")
    process, deadline = _spawn(root, path), time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        connection = _connect(path)
        if connection is not None:
            return connection
        if process.poll() not in (None, BUSY):  # BUSY: another one is starting; wait for it
            say(f"the stage server did not start (see {path.with_suffix('.log')}); running the stage directly")
            return None
        time.sleep(0.05)
    say(f"the stage server did not answer within {START_TIMEOUT:.0f} s; running the stage directly")
    return None


def _lines(connection: socket.socket):
    buffer = b""
    while True:
        chunk = connection.recv(4096)
        if not chunk:
            return
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            yield line.decode()


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
        return True
    except OSError:
        return False


def _request(connection: socket.socket, argv: list[str]) -> int | None:
    """Send one stage to the server and relay signals to it; its exit code, or None when the server was stale."""
    payload = json.dumps({"argv": argv, "cwd": os.getcwd(), "env": dict(os.environ),
                          "fingerprint": fingerprint()}).encode()
    streams = [fd if _is_open(fd) else os.open(os.devnull, os.O_RDWR) for fd in (0, 1, 2)]
    socket.send_fds(connection, [_HEADER.pack(len(payload)) + payload], streams)
    child = None

    def forward(signum, _frame):
        if child:
            os.kill(child, signum)

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, forward)
    for line in _lines(connection):
        word, _, value = line.partition(" ")
        if word == "stale":
            return None
        if word == "pid":
            child = int(value)
        elif word == "exit":
            return int(value)
    print("error: the stage server ended before the stage did", file=sys.stderr)
    return 1


def _direct(argv: list[str]) -> None:
    sys.argv = ["mobile-mlops", *argv]
    from cli.main import entry

    entry()


def main() -> None:
    """`mobile-mlops-stage NAME [options]` (bin/stage): `mobile-mlops stage NAME` in a fork of the warm server."""
    argv, root = ["stage", *sys.argv[1:]], Path.cwd()
    say = lambda text: print(text, file=sys.stderr)  # noqa: E731
    if sys.argv[1:] == ["--stop"]:
        connection = _connect(socket_path(root))
        if connection is not None:
            connection.sendall(_HEADER.pack(2) + b"{}")
        sys.exit(0)
    if not enabled() or "--debug" in argv:
        _direct(argv)
    for _attempt in range(2):
        connection = _server(root, say)
        if connection is None:
            break
        with connection:
            code = _request(connection, argv)
        if code is not None:
            sys.exit(code)
        time.sleep(0.2)  # a stale server exits at once; the next attempt starts a fresh one
    _direct(argv)


# ---- server ---------------------------------------------------------------------------------------------------

def _read_request(connection: socket.socket) -> tuple[dict, list[int]]:
    data, fds, _flags, _addr = socket.recv_fds(connection, 1 << 16, 3)
    if len(data) < _HEADER.size:
        return {}, fds
    size = _HEADER.unpack(data[:_HEADER.size])[0]
    data = data[_HEADER.size:]
    while len(data) < size:
        chunk = connection.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return json.loads(data or b"{}"), fds


def _child(request: dict, fds: list[int], closing: list) -> None:
    """In the fork: become the caller's process (folder, environment, standard streams) and run the stage."""
    code = 1
    try:
        for item in closing:
            item.close()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.argv = ["mobile-mlops", *request["argv"]]
        from cli.main import main

        code = main(request["argv"])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        import logging

        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _exit_code(status: int) -> int:
    return os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)


def serve(root: Path) -> None:
    """Import the libraries, then fork one child per request until idle, stale or the project is gone."""
    import fcntl
    import gc

    path = socket_path(root)
    guard = open(path.with_suffix(".lock"), "w")  # noqa: SIM115 - the lock is held for the server's lifetime
    try:
        fcntl.flock(guard, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        sys.exit(BUSY)  # another server for this project is starting or running
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    started = time.perf_counter()
    for name in PRELOAD:
        try:
            __import__(name)
        except Exception as exc:  # a missing optional library is imported (and reported) by the stage itself
            print(f"preload {name}: {exc}", flush=True)
    try:
        from sqlalchemy.orm import configure_mappers

        configure_mappers()
    except Exception as exc:
        print(f"preload mappers: {exc}", flush=True)
    gc.collect()  # inline, not pipelines.core.memory: the server imports no project code
    gc.freeze()  # each stage's collections skip the preloaded objects, and never write to (so copy) their pages
    print(f"{time.strftime('%H:%M:%S')} pid {os.getpid()} ready for {root} "
          f"({time.perf_counter() - started:.1f} s of imports)", flush=True)
    mine = fingerprint()
    path.unlink(missing_ok=True)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(16)
    children: dict[int, socket.socket] = {}
    idle_since, stopping = time.monotonic(), False
    try:
        while children or not stopping:
            if not stopping and select.select([listener], [], [], 0.2)[0]:
                connection, _ = listener.accept()
                request, fds = _read_request(connection)
                if request.get("fingerprint") != mine:  # stale, or `--stop`: finish the running stages, then exit
                    for fd in fds:
                        os.close(fd)
                    connection.sendall(b"stale\n" if request else b"")
                    connection.close()
                    stopping = _stop(listener, path)
                    continue
                sys.stdout.flush()
                pid = os.fork()
                if pid == 0:
                    _child(request, fds, [listener, guard, *children.values()])
                for fd in fds:
                    os.close(fd)
                connection.sendall(f"pid {pid}\n".encode())
                children[pid] = connection
            elif stopping:
                time.sleep(0.2)
            while children:
                pid, status = os.waitpid(-1, os.WNOHANG)
                if pid == 0:
                    break
                connection = children.pop(pid)
                with contextlib.suppress(OSError):  # the caller is gone (interrupted)
                    connection.sendall(f"exit {_exit_code(status)}\n".encode())
                connection.close()
                idle_since = time.monotonic()
            if not stopping and not children and (time.monotonic() - idle_since > IDLE_SECONDS
                                                  or not root.is_dir() or not path.exists()):
                stopping = _stop(listener, path)
    finally:
        if not stopping:
            _stop(listener, path)


def _stop(listener: socket.socket, path: Path) -> bool:
    """Take no more requests: the next `bin/stage` starts a new server."""
    listener.close()
    path.unlink(missing_ok=True)
    return True


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"] and len(sys.argv) == 3:
        serve(Path(sys.argv[2]).resolve())
    else:
        print("usage: python -m cli.stage_server serve PROJECT_ROOT", file=sys.stderr)
        sys.exit(2)
