"""dvc.yaml, generated from the stage catalog (`mobile-mlops dvc generate`); CI fails when the committed file differs.

The project reads DVC's files as YAML and never imports dvc (DVC lives in its own environment, see README).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from pipelines.catalog import STAGES, SUITE, Stage
from pipelines.code_versions import code_deps
from pipelines.core.config import Settings
from pipelines.core.io import atomic_path
from pipelines.core.paths import suite_path

HEADER = """\
# GENERATED from the stage catalog (pipelines/catalog.py) by `mobile-mlops dvc generate`: edit the catalog, not this.
# One stage per pipeline step, the same graph as the Dagster assets. Each stage runs `bin/stage NAME` in the
# project's .venv; DVC itself lives in .venv-dvc (see README). A stage's code deps are the modules its step function
# imports, transitively (pipelines/code_versions.py).
"""
TOP_LEVEL_PLOTS = """
# Plots drawn from data series (`dvc plots show`, and `dvc plots diff` across experiments);
# the stages' PNG plots (drift, training curve, confusion matrix, footprint) are shown as images.
plots:
  - Training loss per epoch:
      x: epoch
      y:
        reports/training_history.csv: [loss, val_loss]
"""


def _inputs(stage: Stage, settings: Settings) -> list[str]:
    """Artifact deps; a ${params.key} file dep only when params set that key (data.test_source is optional)."""
    params = settings.params.model_dump(by_alias=True)
    kept = []
    for item in stage.inputs:
        if item == SUITE:
            suite = suite_path(settings)
            kept.append(str(suite.relative_to(settings.root)) if suite.is_relative_to(settings.root) else str(suite))
            continue
        if item.startswith("${"):
            section, key = item[2:-1].split(".", 1)
            if params.get(section, {}).get(key) is None:
                continue
        kept.append(item)
    return kept


def _uncached(path: str, extra: dict[str, Any] | None = None) -> list[str]:
    lines = [f"      - {path}:", "          cache: false"]
    return lines + [f"          {k}: {v}" for k, v in (extra or {}).items() if v is not None]


def stage_yaml(stage: Stage, settings: Settings) -> list[str]:
    lines = [f"  {stage.name}:", f"    cmd: bin/stage {stage.name}", "    deps:"]
    lines += [f"      - {dep}" for dep in _inputs(stage, settings) + code_deps(stage.name)]
    lines += ["    params:"] + [f"      - {key}" for key in stage.params]
    outs = [f"      - {path}" for path in stage.outs]
    outs += [line for path in stage.reports + ((stage.verdict,) if stage.verdict else ()) for line in _uncached(path)]
    if outs:
        lines += ["    outs:", *outs]
    lines += ["    metrics:", *_uncached(stage.metrics)]
    if stage.plots:
        lines += ["    plots:"] + [line for plot in stage.plots
                                   for line in _uncached(plot.path, {"x": plot.x, "y": plot.y})]
    return lines


def render(settings: Settings) -> str:
    """The dvc.yaml text for these params."""
    body = ["stages:"]
    for stage in STAGES.values():
        body += stage_yaml(stage, settings) + [""]
    return HEADER + "\n".join(body).rstrip() + "\n" + TOP_LEVEL_PLOTS


def generate(settings: Settings) -> Path:
    """Write dvc.yaml beside the params file."""
    target = settings.root / "dvc.yaml"
    with atomic_path(target) as tmp:
        tmp.write_text(render(settings))
    return target


def problems(settings: Settings) -> list[str]:
    """The committed dvc.yaml is exactly what the catalog generates."""
    target = settings.root / "dvc.yaml"
    if not target.is_file():
        return [f"{target}: not found; run `mobile-mlops dvc generate`"]
    if target.read_text() != render(settings):
        return ["dvc.yaml differs from the stage catalog; run `mobile-mlops dvc generate` and commit it"]
    return []


def _paths(entries: list[Any]) -> list[str]:
    return [next(iter(e)) if isinstance(e, dict) else str(e) for e in entries or []]


def stage_parents(dvc_file: Path) -> dict[str, set[str]]:
    """Stage -> the stages whose outs, metrics or plots it depends on, as dvc.yaml says."""
    stages = (yaml.safe_load(dvc_file.read_text()) or {}).get("stages", {})
    made_by = {path: name for name, stage in stages.items()
               for path in _paths(stage.get("outs")) + _paths(stage.get("metrics")) + _paths(stage.get("plots"))}
    return {name: {made_by[d] for d in _paths(stage.get("deps")) if d in made_by and made_by[d] != name}
            for name, stage in stages.items()}
