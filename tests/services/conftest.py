"""The production stack for real: a PostgreSQL cluster, Redis, an MLflow server, two Celery workers and the Dagster
daemon and webserver, on free loopback ports in a temp folder, started once for the module and stopped after."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.conftest import write_small_project


def needs() -> dict[str, bool]:
    from cli.alertmanager import NAMES
    from cli.services import PG_BIN

    return {"redis-server": bool(shutil.which("redis-server")), "initdb": (PG_BIN / "initdb").is_file(),
            "prometheus": bool(shutil.which("prometheus")), "prometheus-alertmanager": any(map(shutil.which, NAMES))}


@pytest.fixture(scope="module")
def stack():
    """A small project (1,500 + 600 Adult rows) and the stack serving it; yields (project, Stack)."""
    from cli import services

    missing = [name for name, found in needs().items() if not found]
    if missing:
        pytest.skip(f"the services suite needs {', '.join(missing)} (apt-get install redis-server postgresql "
                    "prometheus prometheus-alertmanager)")
    # Not under pytest's 0700 tmp: PostgreSQL runs as `postgres` when the suite runs as root and must reach it.
    project = Path(tempfile.mkdtemp(prefix="mobile-mlops-services-"))
    write_small_project(project)
    started = services.up(project / ".services", project / "params.yaml", workers=2)
    try:
        yield project, started
    finally:
        services.down(started.folder)
        if not os.environ.get("KEEP_SERVICES_TMP"):
            shutil.rmtree(project, ignore_errors=True)


@pytest.fixture(scope="module")
def instance(stack):
    """The stack's Dagster instance (PostgreSQL storage), read from this process."""
    from dagster import DagsterInstance

    _, started = stack
    saved = {k: os.environ.get(k) for k in ("DAGSTER_PG_URL",)}
    os.environ["DAGSTER_PG_URL"] = started.url("dagster_pg")
    with DagsterInstance.from_config(str(started.folder / "dagster")) as opened:
        yield opened
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
