"""Which code each stage runs, and its code version: the same files DVC tracks as the stage's code deps.

A stage's code is the modules its step function imports, transitively (pipelines.import_graph): its step module,
the modules that function and the module's helpers it calls import, every project module those import (at their
top or inside a function), and the package __init__ files on the way. Dagster's code version hashes those files and
the params values the stage reads, so Dagster and `dvc status` see the same change, and an edit reruns only the
stages that can run the edited line.
"""
from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path
from typing import Any

from pipelines.catalog import ASSETS
from pipelines.core.config import Settings
from pipelines.import_graph import PROJECT, ROOT, function_modules, module_files


def step_module(stage: str) -> str:
    """The module holding a stage's step function (as pipelines.catalog.step_function imports it)."""
    return f"{ROOT}.{ASSETS[stage].group}.steps"


def functions_files(functions: tuple[str, ...], root: Path = PROJECT) -> list[Path]:
    """The files the dotted functions (pipelines.x.steps.f) run, sorted."""
    modules = set()
    for dotted in functions:
        module, _, function = dotted.rpartition(".")
        modules |= function_modules(module, function, root)
    files = module_files(root)
    return sorted(files[m] for m in modules)


def stage_files(stage: str, root: Path = PROJECT) -> list[Path]:
    """The files a stage's step function runs."""
    return functions_files((f"{step_module(stage)}.{stage}",), root)


def code_deps(stage: str, root: Path = PROJECT) -> list[str]:
    """The stage's code deps as dvc.yaml lists them: each file, relative to the project."""
    return [f.relative_to(root).as_posix() for f in stage_files(stage, root)]


@functools.cache
def _file_digest(path: Path, stamp: tuple[int, int]) -> bytes:
    return hashlib.sha256(path.read_bytes()).digest()


def _code_digest(files: list[Path], root: Path) -> hashlib._Hash:
    digest = hashlib.sha256()
    for path in files:
        stat = path.stat()
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" +
                      _file_digest(path, (stat.st_mtime_ns, stat.st_size)))
    return digest


def _lookup(params: dict[str, Any], dotted: str) -> Any:
    node: Any = params
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def stage_code_version(stage: str, settings: Settings, root: Path = PROJECT) -> str:
    """sha256 of the stage's code files and of the params values it reads (overrides included)."""
    params = settings.params.model_dump(by_alias=True, mode="json")
    digest = _code_digest(stage_files(stage, root), root)
    digest.update(stage.encode())
    for key in ASSETS[stage].params:
        digest.update(key.encode() + json.dumps(_lookup(params, key), sort_keys=True, default=str).encode())
    return digest.hexdigest()[:16]

