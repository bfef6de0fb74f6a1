"""Content hashes: md5 the way DVC records files (the data version Dagster and DVC share), sha256 for
release manifests."""
from __future__ import annotations

import hashlib
from pathlib import Path

import yaml

_CHUNK = 1 << 20


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file's bytes, read in chunks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def dvc_md5(path: Path) -> str:
    """The md5 DVC 3 records for a single file (plain md5 of its bytes)."""
    return file_digest(path, "md5")


def tree_files(root: Path) -> list[Path]:
    """Every file below root, sorted, as paths relative to root."""
    return sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file())


def tree_sha256(root: Path) -> dict[str, str]:
    """sha256 of every file below root, keyed by POSIX relative path."""
    return {rel.as_posix(): file_digest(root / rel) for rel in tree_files(root)}


def recorded_md5(path: Path) -> str | None:
    """DVC's record for a data file: its `.dvc` file when `dvc add` tracks it, else the md5 DVC computes."""
    sidecar = path.with_name(path.name + ".dvc")
    if sidecar.is_file():
        outs = (yaml.safe_load(sidecar.read_text()) or {}).get("outs") or [{}]
        if outs[0].get("md5"):
            return str(outs[0]["md5"])
    return dvc_md5(path) if path.is_file() else None
