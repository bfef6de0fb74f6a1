"""Blocking gates: a failed check stops every asset downstream of it. Thresholds come from params `gates`.

Which gates a stage has is declared in the stage catalog (pipelines/catalog.py); the step wrapper evaluates them
right after the step and writes the stage's verdict (reports/gates/<stage>.json, pipelines/core/verdict.py). The
checks here are that verdict as Dagster asset checks, evaluated in the asset's own step (`check_specs` on the
asset): a separate check step cost Dagster ~0.2 s of event-log writes for a few milliseconds of work."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from dagster import AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, MetadataValue

from assets.metadata import markdown
from pipelines.catalog import ASSETS
from pipelines.core.gates import GateResult, gates_table
from pipelines.core.plots import data_uri_markdown
from pipelines.core.verdict import read_verdict


def gate_specs(stage: str) -> list[AssetCheckSpec]:
    """The blocking check specs of the stage's gates, as the catalog declares them."""
    return [AssetCheckSpec(g.name, asset=stage, blocking=True, description=g.description) for g in ASSETS[stage].gates]


def _check(entry: dict[str, Any], root: Path) -> AssetCheckResult:
    results = [GateResult(g["name"], g["passed"], g["figure"], g["limit"], g["detail"]) for g in entry["gates"]]
    metadata: dict[str, Any] = {"gates": markdown(gates_table(results)),
                                "failed": MetadataValue.int(sum(not g.passed for g in results))}
    metadata |= {title: markdown(text) for title, text in entry["tables"].items()}
    metadata |= {key: (MetadataValue.int(value) if isinstance(value, int) else MetadataValue.float(value))
                 for key, value in entry["facts"].items()}
    metadata |= {title: markdown(data_uri_markdown(root / png, title)) for title, png in entry["plots"].items()
                 if (root / png).is_file()}
    return AssetCheckResult(check_name=entry["name"], passed=entry["passed"], description=entry["description"],
                            severity=AssetCheckSeverity.ERROR if entry["blocking"] else AssetCheckSeverity.WARN,
                            metadata=metadata)


def gate_checks(stage: str, root: Path) -> list[AssetCheckResult]:
    """The stage's checks, built from the verdict its step wrapper just wrote (none for a stage without gates)."""
    if not ASSETS[stage].gates:
        return []
    return [_check(entry, root) for entry in read_verdict(root, stage)["checks"]]
