"""Which code each stage runs, and its code version: the same files DVC tracks as the stage's code deps.

A stage's code is its package, pipelines/core, and every domain package its package imports (found by
reading the imports, so a helper moved to another package can never be forgotten). Dagster's code version
hashes those files and the params values the stage reads, so Dagster and `dvc status` see the same change.
"""
from __future__ import annotations

import functools
import hashlib
import json
import re
from pathlib import Path
from typing import Any

from pipelines.catalog import ASSETS, GROUPS, STAGES
from pipelines.core.config import Settings

PIPELINES = Path(__file__).resolve().parent
PROJECT = PIPELINES.parent
PACKAGES = ("core", *GROUPS)


def _files(package: str) -> list[Path]:
    """A package's files as DVC hashes a directory dep (.dvcignore leaves out __pycache__)."""
    folder = PIPELINES / package
    return sorted(f for f in folder.rglob("*") if f.is_file() and "__pycache__" not in f.parts)


_IMPORT_LINE = re.compile(r"^[ \t]*(?:from|import)[ \t]+[^\n]*", re.MULTILINE)
_PROJECT_PACKAGE = re.compile(r"\bpipelines\.(\w+)")


@functools.cache
def _imports(package: str) -> frozenset[str]:
    """The project packages a package's modules import, at the top or inside functions.

    Read from the import lines (a regular expression, 40x faster than parsing every module here): a line in a
    docstring that looks like an import can only add a package, which makes the code version stricter, never laxer."""
    found: set[str] = set()
    for path in _files(package):
        if path.suffix == ".py":
            for line in _IMPORT_LINE.findall(path.read_text()):
                found |= {name for name in _PROJECT_PACKAGE.findall(line) if name in PACKAGES}
    return frozenset(found - {package})


@functools.cache
def code_packages(group: str) -> tuple[str, ...]:
    """`group`, core, and every package they import, transitively, bottom first."""
    closed, todo = {"core", group}, [group, "core"]
    while todo:
        for imported in _imports(todo.pop()) - closed:
            closed.add(imported)
            todo.append(imported)
    return tuple(p for p in PACKAGES if p in closed)


def code_dirs(stage: str) -> list[str]:
    """The stage's code deps, relative to the project (what dvc.yaml lists)."""
    return [f"pipelines/{package}" for package in code_packages(STAGES[stage].group)]


def _lookup(params: dict[str, Any], dotted: str) -> Any:
    node: Any = params
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


@functools.cache
def _package_digest(package: str, stamp: tuple) -> str:
    digest = hashlib.sha256()
    for path in _files(package):
        digest.update(path.relative_to(PROJECT).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _stamp(package: str) -> tuple:
    return tuple((f.name, f.stat().st_mtime_ns, f.stat().st_size) for f in _files(package))


def stage_code_version(stage: str, settings: Settings) -> str:
    """sha256 of the stage's code files and of the params values it reads (overrides included)."""
    params = settings.params.model_dump(by_alias=True, mode="json")
    digest = hashlib.sha256(stage.encode())
    for package in code_packages(ASSETS[stage].group):
        digest.update(_package_digest(package, _stamp(package)).encode())
    for key in ASSETS[stage].params:
        digest.update(key.encode() + json.dumps(_lookup(params, key), sort_keys=True, default=str).encode())
    return digest.hexdigest()[:16]


def package_code_version(package: str) -> str:
    """sha256 of a package's code and everything it imports (assets that are not catalog stages)."""
    digest = hashlib.sha256(package.encode())
    for name in code_packages(package):
        digest.update(_package_digest(name, _stamp(name)).encode())
    return digest.hexdigest()[:16]
