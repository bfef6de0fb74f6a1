"""`mobile-mlops serve`: the registered MLflow Model over HTTP (`mlflow models serve`, local environment).

MLflow's server execs `uvicorn` from PATH, so the environment's bin folder goes first on it; the tracking URI is
the project's (MLFLOW_TRACKING_URI wins) and the model the release's name at an alias or version.
"""
from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

from cli.options import settings

Add = Callable[[str, Callable[[argparse.Namespace], int], str], argparse.ArgumentParser]
BIN = Path(sys.executable).parent


def serve_command(model_uri: str, host: str, port: int, workers: int) -> list[str]:
    """The `mlflow models serve` command line (local environment: this one)."""
    return [str(BIN / "mlflow"), "models", "serve", "-m", model_uri, "--env-manager", "local", "-h", host,
            "-p", str(port), "-w", str(workers)]


def serve_env(tracking_uri: str) -> dict[str, str]:
    """This environment's bin first on PATH (uvicorn), and the tracking URI."""
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "MLFLOW_TRACKING_URI": tracking_uri}


def cmd_serve(args: argparse.Namespace) -> int:
    from pipelines.training.tracking import tracking_uri

    loaded = settings(args)
    name = loaded.params.release.model_name
    model_uri = f"models:/{name}/{args.version}" if args.version else f"models:/{name}@{args.alias}"
    print(f"serving {model_uri} on http://{args.host}:{args.port}/invocations (Ctrl-C stops)", flush=True)
    os.execve(str(BIN / "mlflow"), serve_command(model_uri, args.host, args.port, args.workers),
              serve_env(tracking_uri(loaded)))
    return 0  # not reached: the server replaces this process


def register(add: Add, with_params: Callable[[argparse.ArgumentParser], None]) -> None:
    serve = add("serve", cmd_serve, "Serve the registered MLflow Model over HTTP (POST /invocations, raw rows).")
    serve.add_argument("--alias", default="candidate", help="model alias (default: candidate; or production)")
    serve.add_argument("--version", help="a model version instead of the alias")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=5001)
    serve.add_argument("--workers", type=int, default=1)
    serve.set_defaults(verbose=True)  # the server's own log reaches the terminal (no quiet wrapper around fd 2)
    with_params(serve)
