"""Tink streaming AEAD (AES-GCM-HKDF) for release files: the keyset from params release.keyset, one file
encrypted or decrypted with its path in the release as associated data, and key rotation.

Sources: `local` (a cleartext JSON keyset under keys/private/, git-ignored, made on first use with mode 600; for
development), `env` (the JSON keyset in an environment variable, put there by the CI secret store), `kms` (a JSON
keyset encrypted by a KMS key, read from `file`; only the KMS can unwrap it). Key material is never printed, and
a cleartext keyset is written nowhere but the local file.
"""
from __future__ import annotations

import io
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from pipelines.core.config import KeysetConfig, Settings
from pipelines.core.errors import PipelineError
from pipelines.core.io import write_private

if TYPE_CHECKING:
    import tink

GCM_HKDF_TYPE_URL = "type.googleapis.com/google.crypto.tink.AesGcmHkdfStreamingKey"
KEYSET_AD = b""  # associated data of a KMS-wrapped keyset: empty, as `tinkey create-keyset --master-key-uri` writes
_CHUNK = 1 << 20


def _tink() -> Any:
    import tink
    from tink import aead, streaming_aead

    aead.register()  # KMS clients hand back an Aead
    streaming_aead.register()
    return tink


def _token() -> Any:
    from tink import secret_key_access

    return secret_key_access.TOKEN


def new_keyset(template: str) -> tink.KeysetHandle:
    """A keyset of one fresh key made from a streaming AEAD template, e.g. AES256_GCM_HKDF_1MB."""
    tink = _tink()
    from tink import streaming_aead

    return tink.new_keyset_handle(getattr(streaming_aead.streaming_aead_key_templates, template))


def origin(config: KeysetConfig, settings: Settings) -> str:
    """Where the keyset comes from, for messages (never its content)."""
    if config.source == "env":
        return f"${config.env}"
    if config.source == "kms":
        return f"{settings.resolve(config.file)} (wrapped by {config.kms_uri})"
    return str(settings.resolve(config.file))


def _kms_aead(uri: str) -> Any:
    """The KMS key that wraps the keyset: Google Cloud KMS, AWS KMS, or a client registered with Tink."""
    tink = _tink()
    scheme = uri.split("://", 1)[0]
    try:
        if scheme == "gcp-kms":
            from tink.integration import gcpkms

            return gcpkms.GcpKmsClient(uri, None).get_aead(uri)  # application default credentials
        if scheme == "aws-kms":
            from tink.integration import awskms

            return awskms.AwsKmsClient(uri, None).get_aead(uri)  # default AWS credentials
        return tink.kms_client_from_uri(uri).get_aead(uri)
    except ImportError:
        raise PipelineError(f"release.keyset.kms_uri: {scheme}:// is not supported here: it needs "
                            f"tink[{scheme.replace('-', '')}] "
                            "installed (and network access to the KMS)") from None
    except tink.TinkError:
        raise PipelineError(f"release.keyset.kms_uri: no KMS client for {scheme}://; supported: gcp-kms:// "
                            "(tink[gcpkms]), aws-kms:// (tink[awskms])") from None


def _parse(text: str, config: KeysetConfig, where: str) -> tink.KeysetHandle:
    tink = _tink()
    try:
        if config.source == "kms":
            return tink.json_proto_keyset_format.parse_encrypted(text, _kms_aead(config.kms_uri or ""), KEYSET_AD)
        return tink.json_proto_keyset_format.parse(text, _token())
    except tink.TinkError:  # the library's message may quote the input: say only what to fix
        wrapped = " wrapped by release.keyset.kms_uri" if config.source == "kms" else ""
        raise PipelineError(f"{where}: not a Tink JSON keyset{wrapped} (or the KMS key cannot unwrap it)") from None


def _serialize(handle: tink.KeysetHandle, config: KeysetConfig) -> str:
    tink = _tink()
    if config.source == "kms":
        return tink.json_proto_keyset_format.serialize_encrypted(handle, _kms_aead(config.kms_uri or ""), KEYSET_AD)
    return tink.json_proto_keyset_format.serialize(handle, _token())


def load_keyset(settings: Settings, create: bool = False) -> tink.KeysetHandle:
    """The release keyset from params release.keyset; `create` makes the local development keyset on first use.

    A missing or unusable keyset is one line naming where it was looked for.
    """
    config = settings.params.release.keyset
    where = origin(config, settings)
    if config.source == "env":
        text = os.environ.get(config.env)
        if not text:
            raise PipelineError(f"release.keyset: ${config.env} is not set; it must hold the release keyset "
                                "(Tink JSON), see README 'Encrypted model bundles'")
    else:
        path = settings.resolve(config.file)
        if not path.is_file():
            if not (create and config.source == "local"):
                raise PipelineError(f"release.keyset.file: no keyset at {path}")
            handle = new_keyset(config.template)
            write_private(path, _serialize(handle, config).encode())
            return handle
        text = path.read_text()
    handle = _parse(text, config, where)
    primary_parameters(handle, where)  # an AES-GCM-HKDF streaming primary key, or one line saying what it is
    return handle


def _keyset_proto(handle: tink.KeysetHandle) -> Any:
    tink = _tink()
    from tink.proto import tink_pb2

    return tink_pb2.Keyset.FromString(tink.proto_keyset_format.serialize(handle, _token()))


def primary_parameters(handle: tink.KeysetHandle, where: str = "release keyset") -> dict[str, Any]:
    """The primary key's id and AES-GCM-HKDF parameters (what a decrypting app needs besides the key bytes)."""
    from tink.proto import aes_gcm_hkdf_streaming_pb2, common_pb2

    keyset = _keyset_proto(handle)
    key = next(k for k in keyset.key if k.key_id == keyset.primary_key_id)
    if key.key_data.type_url != GCM_HKDF_TYPE_URL:
        raise PipelineError(f"{where}: primary key {key.key_id} is {key.key_data.type_url.rsplit('.', 1)[-1]}, "
                            "not an AES-GCM-HKDF streaming key")
    params = aes_gcm_hkdf_streaming_pb2.AesGcmHkdfStreamingKey.FromString(key.key_data.value).params
    return {"key_id": key.key_id, "derived_key_size": params.derived_key_size,
            "segment_size": params.ciphertext_segment_size,
            "hkdf_hash": common_pb2.HashType.Name(params.hkdf_hash_type)}


def key_ids(handle: tink.KeysetHandle) -> list[int]:
    """Every key id in the keyset, primary first."""
    info = handle.keyset_info()
    return [info.primary_key_id] + [k.key_id for k in info.key_info if k.key_id != info.primary_key_id]


def rotate_keyset(settings: Settings) -> tuple[int | None, int]:
    """Add a new key (params release.keyset.template) and make it primary; older keys stay to decrypt old releases.

    Rewrites the local file (mode 600) or, for `kms`, the wrapped keyset file; an env keyset is rotated where it
    is stored. Returns (previous primary id or None for a new keyset, new primary id).
    """
    tink = _tink()
    config = settings.params.release.keyset
    if config.source == "env":
        raise PipelineError(f"release.keyset.source env: rotate the keyset where ${config.env} is stored (e.g. "
                            "`tinkey rotate-keyset`); mobile-mlops writes no cleartext keyset outside the local file")
    path = settings.resolve(config.file)
    if not path.is_file():
        handle = new_keyset(config.template)
        write_private(path, _serialize(handle, config).encode())
        return None, handle.keyset_info().primary_key_id
    keyset = _keyset_proto(load_keyset(settings))
    previous = keyset.primary_key_id
    fresh = _keyset_proto(new_keyset(config.template)).key[0]
    fresh.key_id = next(i for i in iter(lambda: secrets.randbelow(2**32 - 1) + 1, 0)
                        if i not in {k.key_id for k in keyset.key})
    keyset.key.append(fresh)
    keyset.primary_key_id = fresh.key_id
    handle = tink.proto_keyset_format.parse(keyset.SerializeToString(), _token())
    write_private(path, _serialize(handle, config).encode())
    return previous, fresh.key_id


def encrypt_file(handle: tink.KeysetHandle, source: Path, target: Path, associated_data: bytes) -> None:
    """Encrypt `source` into `target` with the keyset's primary key."""
    from tink import streaming_aead

    primitive = handle.primitive(streaming_aead.StreamingAead)
    with (open(source, "rb") as plain, open(target, "wb") as sink,
          primitive.new_encrypting_stream(sink, associated_data) as stream):
        while chunk := plain.read(_CHUNK):
            stream.write(chunk)


def _decrypt(handle: tink.KeysetHandle, source: Path, sink: BinaryIO, associated_data: bytes, where: str) -> None:
    tink = _tink()
    from tink import streaming_aead

    primitive = handle.primitive(streaming_aead.StreamingAead)
    try:
        with open(source, "rb") as sealed, primitive.new_decrypting_stream(sealed, associated_data) as stream:
            while chunk := stream.read(_CHUNK):
                sink.write(chunk)
    except tink.TinkError:
        raise PipelineError(f"{source}: cannot decrypt it with the keyset from {where}: wrong key, or the file "
                            "was altered or renamed") from None


def decrypt_file(handle: tink.KeysetHandle, source: Path, target: Path, associated_data: bytes,
                 where: str = "release keyset") -> None:
    """Decrypt `source` into `target`; a wrong key, another file's ciphertext or an altered byte is one line
    (the caller writes `target` inside a temp folder it removes on failure)."""
    with open(target, "wb") as sink:
        _decrypt(handle, source, sink, associated_data, where)


def decrypt_bytes(handle: tink.KeysetHandle, source: Path, associated_data: bytes,
                  where: str = "release keyset") -> bytes:
    """Decrypt `source` in memory (a model a later run scores with)."""
    sink = io.BytesIO()
    _decrypt(handle, source, sink, associated_data, where)
    return sink.getvalue()
