"""Versions Dagster and DVC agree on: data versions are DVC's md5s, code versions hash what DVC tracks."""
from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path

import yaml

from pipelines.hashing import dvc_md5

PROJECT = Path(__file__).resolve().parents[1]


def recorded_md5(path: Path) -> str | None:
    """DVC's record for a data file: its `.dvc` file when `dvc add` tracks it, else the md5 DVC computes."""
    sidecar = path.with_name(path.name + ".dvc")
    if sidecar.is_file():
        outs = (yaml.safe_load(sidecar.read_text()) or {}).get("outs") or [{}]
        if outs[0].get("md5"):
            return str(outs[0]["md5"])
    return dvc_md5(path) if path.is_file() else None


@functools.lru_cache(maxsize=1)
def _stages() -> dict:
    dvc_file = PROJECT / "dvc.yaml"
    return yaml.safe_load(dvc_file.read_text()).get("stages", {}) if dvc_file.is_file() else {}


def _lookup(params: dict, dotted: str):
    node = params
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


@functools.lru_cache(maxsize=None)
def stage_code_version(stage: str, params_file: str = "params.yaml") -> str:
    """sha256 of the code files and params values the DVC stage declares, so both tools see the same change."""
    spec = _stages().get(stage, {})
    digest = hashlib.sha256(stage.encode())
    for dep in sorted(d for d in spec.get("deps", []) if d.startswith("pipelines/")):
        digest.update(dep.encode() + (PROJECT / dep).read_bytes())
    params_path = PROJECT / params_file
    params = yaml.safe_load(params_path.read_text()) if params_path.is_file() else {}
    for key in spec.get("params", []):
        digest.update(key.encode() + json.dumps(_lookup(params, key), sort_keys=True, default=str).encode())
    return digest.hexdigest()[:16]
