"""Release candidates: a folder of model files with a manifest of hashes and lineage, signed, and its check."""
from __future__ import annotations

import errno
import json
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from pipelines.core.errors import PipelineError
from pipelines.core.hashing import tree_sha256
from pipelines.core.io import storage_problem
from pipelines.release.attest import FOLDER as ATTESTATIONS
from pipelines.release.encryption import Encryption, check_record
from pipelines.release.signing import SIGNATURE, verify_folder

MANIFEST = "manifest.json"
SCHEMA = "mobile-mlops/release-manifest/v1"
UNHASHED = {MANIFEST, SIGNATURE}  # the manifest cannot hash itself; the signature covers both


def _hashed(name: str) -> bool:
    """Whether the manifest lists a file: not itself, the signature or the attestations (which name the manifest)."""
    return name not in UNHASHED and not name.startswith(ATTESTATIONS + "/")


class Lineage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    data_md5: dict[str, str]  # source file -> md5, as DVC records it in dvc.lock
    raw_dataset_md5: str
    git_commit: str
    git_dirty: bool | None
    params_sha256: str
    mlflow_run_id: str
    model_name: str
    model_version: str


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_: str
    created_at: str
    files: dict[str, str]
    lineage: Lineage
    metrics: dict[str, Any]
    tags: dict[str, str] = {}  # FinOps tags (params project): project, owner, cost_center, environment
    encryption: Encryption | None = None  # release.encryption tink: the model files' ciphertexts and plaintext hashes


def build_manifest(folder: Path, lineage: dict[str, Any], metrics: dict[str, Any],
                   tags: dict[str, str] | None = None, encryption: dict[str, Any] | None = None) -> dict[str, Any]:
    """Hash every file in the folder and attach the lineage (and the FinOps tags, and the encryption record)."""
    files = {k: v for k, v in tree_sha256(folder).items() if _hashed(k)}
    manifest = {
        "schema_": SCHEMA,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "files": files,
        "lineage": Lineage(**lineage).model_dump(),
        "metrics": metrics,
        "tags": dict(tags or {}),
    }
    if encryption is not None:  # only then: an unencrypted release's manifest is what it always was
        manifest["encryption"] = encryption
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def load_manifest(folder: Path) -> Manifest:
    path = folder / MANIFEST
    if not path.is_file():
        raise PipelineError(f"{folder}: no {MANIFEST}")
    try:
        return Manifest.model_validate(json.loads(path.read_text()))
    except json.JSONDecodeError as exc:
        raise PipelineError(f"{path}: not valid JSON (line {exc.lineno})") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise PipelineError(f"{path}: field '{field}': {first['msg']}") from exc


def verify_release(folder: Path, public_keys: list[Path] | None = None) -> Manifest:
    """Recompute every hash; raise naming the first file that is changed, missing or unexpected.

    With `public_keys`, the signature must also verify with one of them (it covers every file,
    manifest.json included); without, only the hashes are checked (a candidate before signing).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise PipelineError(f"{folder}: not a release folder")
    for link in sorted(p for p in folder.rglob("*") if p.is_symlink()):
        raise PipelineError(f"{link}: a symbolic link; a release holds regular files only")
    manifest = load_manifest(folder)
    if manifest.schema_ != SCHEMA:
        raise PipelineError(f"{folder / MANIFEST}: field 'schema_': unknown schema {manifest.schema_!r}")
    actual = {k: v for k, v in tree_sha256(folder).items() if _hashed(k)}
    for name, digest in sorted(manifest.files.items()):
        if name not in actual:
            raise PipelineError(f"{folder / name}: listed in the manifest but missing")
        if actual[name] != digest:
            raise PipelineError(f"{folder / name}: sha256 differs from the manifest")
    for name in sorted(set(actual) - set(manifest.files)):
        raise PipelineError(f"{folder / name}: not listed in the manifest")
    if manifest.encryption is not None:
        check_record(folder, manifest.encryption, manifest.files)
    if public_keys is not None:
        verify_folder(folder, public_keys)
    return manifest


def release_numbers(folder: Path) -> list[int]:
    """The release numbers published under releases/<model>/, in order."""
    return sorted(int(p.name) for p in folder.glob("*") if p.name.isdigit() and p.is_dir()) if folder.is_dir() else []


# What identifies a release's content for idempotent publishing: the TFLite models (their plaintext when
# encrypted), the feature spec and the reference profile, with the data md5s, params and git commit (and whether
# the tree was dirty) the lineage names: the same model built from another commit is another provenance. Left
# out: what a run writes afresh from the same inputs (measured host latencies in tflite.json / footprint.json,
# run CPU seconds in cost.json, the MLflow run and version in the card and the endpoint; Core ML conversion, which
# writes a new package identifier each time from the same weights).
IDENTITY_FILES = ("feature_spec.json", "reference_profile.json")


def content_key(manifest: Manifest) -> tuple:
    """What a release ships, for idempotent publishing (see IDENTITY_FILES)."""
    plain = {name: record.sha256 for name, record in manifest.encryption.files.items()} if manifest.encryption \
        else {}
    files = {name: digest for name, digest in manifest.files.items()
             if name.endswith(".tflite") or name in IDENTITY_FILES}
    files.update({name: digest for name, digest in plain.items() if name.endswith(".tflite")})
    lineage = manifest.lineage
    return (tuple(sorted(files.items())), tuple(sorted(lineage.data_md5.items())), lineage.params_sha256,
            lineage.git_commit, lineage.git_dirty)


def same_content(staged: Path, releases: Path, model_name: str) -> Path | None:
    """The published release whose content equals the candidate's (the newest such), or None."""
    key = content_key(load_manifest(staged))
    folder = releases / model_name
    for number in reversed(release_numbers(folder)):
        try:
            if content_key(load_manifest(folder / str(number))) == key:
                return folder / str(number)
        except PipelineError:
            continue  # a broken earlier release is never "the same"
    return None


def publish(staged: Path, releases: Path, model_name: str, public_keys: list[Path] | None = None) -> Path:
    """Copy a verified candidate to releases/<model>/<N>/, N the next free number, claimed atomically.

    The copy is made in a temp folder and renamed onto <N>; the rename fails when <N> exists (another run
    claimed it first), and the copy moves on to N+1. So numbers have no gaps and nothing is overwritten.
    """
    verify_release(staged, public_keys)
    folder = releases / model_name
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PipelineError(f"{folder}: cannot create the releases folder: {storage_problem(exc) or exc}") from exc
    while True:
        number = (release_numbers(folder) or [0])[-1] + 1
        target, tmp = folder / str(number), folder / f".{number}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            shutil.copytree(staged, tmp)
            os.rename(tmp, target)  # atomic; refuses a non-empty target
            return target
        except OSError as exc:  # shutil.Error (a failed copytree) included
            shutil.rmtree(tmp, ignore_errors=True)  # nothing half-published stays behind
            if exc.errno in (errno.EEXIST, errno.ENOTEMPTY) and target.exists():
                continue  # another run published <N> meanwhile: take the next number
            problem = storage_problem(exc)
            if problem is None:
                raise
            raise PipelineError(f"{target}: cannot publish the release: {problem}") from exc
