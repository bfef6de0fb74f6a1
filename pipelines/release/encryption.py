"""Encrypted release bundles: the model files (TFLite, every file of the Core ML package) become `<name>.tink`
Tink streaming AEAD ciphertexts, each bound to its own path in the release by the associated data, so files cannot
be swapped. Reports, the feature spec and the manifest stay readable. The manifest keeps each model file's plaintext
sha256 and size and records its ciphertext's; the signature covers the ciphertexts and the manifest, so `verify`
needs no key, and `decrypt_release` restores the plaintexts and checks them against the manifest.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from pipelines.core.errors import PipelineError
from pipelines.core.hashing import file_digest, tree_files
from pipelines.core.io import atomic_path
from pipelines.release_format.keyset import decrypt_file, encrypt_file, primary_parameters

if TYPE_CHECKING:
    import tink

SUFFIX = ".tink"
SCHEME = "tink/streaming-aead/aes-gcm-hkdf"
ASSOCIATED_DATA = "the model file's path in the release (UTF-8), e.g. model_int8.tflite"


class EncryptedFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ciphertext: str  # the file in the release: <name>.tink
    sha256: str  # of the plaintext: what `decrypt` restores
    size: int
    ciphertext_sha256: str  # also in `files`, which `verify` checks
    ciphertext_size: int  # what a device downloads


class Encryption(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scheme: str
    key_id: int  # the keyset's primary key when the release was made (Tink tries every key of the keyset)
    derived_key_size: int
    segment_size: int
    hkdf_hash: str
    associated_data: str
    files: dict[str, EncryptedFile]  # plaintext path -> its ciphertext


def is_model_file(name: str) -> bool:
    """A file that ships encrypted: a TFLite or ORT Mobile model, or anything inside a Core ML package."""
    return name.endswith((".tflite", ".ort")) or any(part.endswith(".mlpackage") for part in name.split("/")[:-1])


def ad(name: str) -> bytes:
    """Associated data of a model file: its path in the release."""
    return name.encode()


def encrypt_models(folder: Path, handle: tink.KeysetHandle) -> dict[str, Any]:
    """Replace every model file in `folder` by its ciphertext; return the manifest's `encryption` record."""
    files = {}
    for rel in tree_files(folder):
        name = rel.as_posix()
        if not is_model_file(name):
            continue
        plain, sealed = folder / rel, folder / f"{name}{SUFFIX}"
        encrypt_file(handle, plain, sealed, ad(name))
        files[name] = EncryptedFile(ciphertext=f"{name}{SUFFIX}", sha256=file_digest(plain), size=plain.stat().st_size,
                                    ciphertext_sha256=file_digest(sealed), ciphertext_size=sealed.stat().st_size)
        plain.unlink()
    if not files:
        raise PipelineError(f"{folder}: no model files (*.tflite, *.mlpackage) to encrypt")
    return Encryption(scheme=SCHEME, **primary_parameters(handle), associated_data=ASSOCIATED_DATA,
                      files=files).model_dump()


def encryption_summary(record: dict[str, Any] | None) -> dict[str, Any]:
    """The release step's summary lines about encryption: none, or the key and the bytes it adds to downloads."""
    if record is None:
        return {"encryption": "none"}
    files = record["files"].values()
    return {"encryption": f"tink key {record['key_id']}, {len(files)} model files",
            "ciphertext_overhead_bytes": sum(f["ciphertext_size"] - f["size"] for f in files)}


def check_record(folder: Path, encryption: Encryption, files: dict[str, str]) -> None:
    """The encryption record agrees with the manifest's file list (which `verify` checks against the folder)."""
    for name, entry in sorted(encryption.files.items()):
        if entry.ciphertext != f"{name}{SUFFIX}":
            raise PipelineError(f"{folder}/manifest.json: encryption of {name}: ciphertext {entry.ciphertext!r} "
                                f"is not {name}{SUFFIX}")
        if files.get(entry.ciphertext) != entry.ciphertext_sha256:
            raise PipelineError(f"{folder / entry.ciphertext}: encryption record and file list disagree")


def decrypt_release(folder: Path, out: Path, handle: tink.KeysetHandle, encryption: Encryption,
                    where: str = "release keyset") -> dict[str, str]:
    """Write the release with its model files decrypted to `out` (signature left out: it covers the ciphertexts).

    Each plaintext must hash to the manifest's sha256. Any failure (wrong or missing key, altered file) leaves
    nothing at `out`. Returns plaintext path -> sha256.
    """
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise PipelineError(f"{out}: already exists and is not empty; nothing was written")
    sealed = {e.ciphertext: name for name, e in encryption.files.items()}
    restored = {}
    with atomic_path(out) as staged:
        staged.mkdir()
        for rel in tree_files(folder):
            name = rel.as_posix()
            if name == "model.sig":
                continue
            target = staged / sealed.get(name, name)
            target.parent.mkdir(parents=True, exist_ok=True)
            if name not in sealed:
                shutil.copy2(folder / rel, target)
                continue
            plain = sealed[name]
            decrypt_file(handle, folder / rel, target, ad(plain), where)
            if (digest := file_digest(target)) != encryption.files[plain].sha256:
                raise PipelineError(f"{folder / rel}: decrypts to content whose sha256 differs from the manifest")
            restored[plain] = digest
    return restored
