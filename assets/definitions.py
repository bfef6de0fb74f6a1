"""The one Definitions Dagster loads (workspace.yaml, `dagster dev`, the code server of the Helm chart): built for
$MOBILE_MLOPS_PARAMS, else the project's params.yaml. Code that builds its own (`mobile-mlops run`, benchmarks,
tests) imports assets/build.py instead and skips this build."""
from __future__ import annotations

import os
from pathlib import Path

from assets.build import build_definitions
from assets.stale_runs import fail_dead_runs_of_current_instance
from pipelines.core.config import load_settings

PARAMS_ENV = "MOBILE_MLOPS_PARAMS"
PROJECT = Path(__file__).resolve().parents[1]

defs = build_definitions(load_settings(os.environ.get(PARAMS_ENV) or PROJECT / "params.yaml"))
fail_dead_runs_of_current_instance()  # the webserver's and daemon's code server start: free a killed run's slot
