"""OpenSSF model signing of release folders: keys, signatures, and every way a release can be altered."""
from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from pipelines.core.errors import PipelineError
from pipelines.release.folder import MANIFEST, build_manifest, verify_release
from pipelines.release.signing import (
    KEY_ENV,
    PASSWORD_ENV,
    SIGNATURE,
    fingerprint,
    generate_key_pair,
    sign_folder,
    signing_key,
    verify_folder,
)

LINEAGE = {"data_md5": {"data.csv": "0" * 32}, "raw_dataset_md5": "1" * 32, "git_commit": "a" * 40,
           "git_dirty": False, "params_sha256": "2" * 64, "mlflow_run_id": "run1", "model_name": "m",
           "model_version": "1"}


@pytest.fixture
def keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    monkeypatch.delenv(KEY_ENV, raising=False)
    private = signing_key(tmp_path / "keys/private/release-signing.pem", tmp_path / "keys/release-signing.pub")
    return private, tmp_path / "keys/release-signing.pub"


@pytest.fixture
def signed(tmp_path: Path, keys: tuple[Path, Path]) -> Path:
    folder = tmp_path / "release"
    (folder / "model.mlpackage" / "Data").mkdir(parents=True)
    (folder / "model_int8.tflite").write_bytes(bytes(range(256)) * 4)
    (folder / "model.mlpackage" / "Data" / "weight.bin").write_bytes(b"\x01" * 64)
    build_manifest(folder, LINEAGE, {"keras": {"accuracy": 0.85}})
    sign_folder(folder, keys[0])
    return folder


def test_first_use_generates_a_private_key_for_the_owner_only_and_a_public_key_to_commit(tmp_path, keys):
    private, public = keys
    assert private == tmp_path / "keys/private/release-signing.pem"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert public.read_bytes() == (tmp_path / "keys/private/release-signing.pub").read_bytes()
    key = serialization.load_pem_private_key(private.read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
    before = private.read_bytes()
    assert signing_key(private, public) == private and private.read_bytes() == before  # reused, not regenerated


def test_a_committed_public_key_is_never_overwritten(tmp_path, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    committed = tmp_path / "keys/release-signing.pub"
    generate_key_pair(tmp_path / "other.pem", committed)
    before = committed.read_bytes()
    signing_key(tmp_path / "keys/private/release-signing.pem", committed)  # a fresh clone: no private key yet
    assert committed.read_bytes() == before
    assert (tmp_path / "keys/private/release-signing.pub").read_bytes() != before


def test_signed_release_verifies_with_its_key(signed, keys):
    assert verify_folder(signed, [keys[1]]) == keys[1]
    manifest = verify_release(signed, [keys[1]])
    assert SIGNATURE not in manifest.files and MANIFEST not in manifest.files


def test_one_changed_byte_fails_naming_the_file(signed, keys):
    path = signed / "model_int8.tflite"
    data = bytearray(path.read_bytes())
    data[7] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(PipelineError, match="model_int8.tflite: sha256 differs from the manifest"):
        verify_release(signed, [keys[1]])
    build_manifest(signed, LINEAGE, {"keras": {"accuracy": 0.85}})  # a forger who also rewrites the manifest
    with pytest.raises(PipelineError, match=r"model_int8.tflite: differs from the signed content"):
        verify_release(signed, [keys[1]])


def test_edited_manifest_fails_on_the_signature(signed, keys):
    manifest = json.loads((signed / MANIFEST).read_text())
    manifest["metrics"]["keras"]["accuracy"] = 0.99
    (signed / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(PipelineError, match=r"manifest.json: differs from the signed content"):
        verify_release(signed, [keys[1]])


def test_added_file_fails_even_with_a_rebuilt_manifest(signed, keys):
    (signed / "model.mlpackage" / "extra.bin").write_bytes(b"x")
    with pytest.raises(PipelineError, match="extra.bin: not listed in the manifest"):
        verify_release(signed, [keys[1]])
    build_manifest(signed, LINEAGE, {"keras": {"accuracy": 0.85}})
    with pytest.raises(PipelineError, match="extra.bin: not covered by the signature"):
        verify_release(signed, [keys[1]])


def test_removed_file_fails_even_with_a_rebuilt_manifest(signed, keys):
    (signed / "model.mlpackage" / "Data" / "weight.bin").unlink()
    with pytest.raises(PipelineError, match="weight.bin: listed in the manifest but missing"):
        verify_release(signed, [keys[1]])
    build_manifest(signed, LINEAGE, {"keras": {"accuracy": 0.85}})
    with pytest.raises(PipelineError, match="weight.bin: signed but missing"):
        verify_release(signed, [keys[1]])


def test_missing_or_corrupt_signature_fails(signed, keys):
    (signed / SIGNATURE).write_text("{not json")
    with pytest.raises(PipelineError, match="model.sig: not a model-signing signature bundle"):
        verify_release(signed, [keys[1]])
    (signed / SIGNATURE).unlink()
    with pytest.raises(PipelineError, match="model.sig: missing; the release is not signed"):
        verify_release(signed, [keys[1]])


def test_a_key_that_is_not_trusted_fails(signed, tmp_path):
    generate_key_pair(tmp_path / "stranger.pem", tmp_path / "stranger.pub")
    with pytest.raises(PipelineError, match="signed by an untrusted key"):
        verify_release(signed, [tmp_path / "stranger.pub"])
    # a signature made with another key does not verify with the project's key either
    sign_folder(signed, tmp_path / "stranger.pem")
    with pytest.raises(PipelineError, match="untrusted key"):
        verify_release(signed, [tmp_path / "keys/release-signing.pub"])


def test_key_from_environment_with_password(tmp_path, monkeypatch, signed):
    key = ec.generate_private_key(ec.SECP256R1())
    path = tmp_path / "ci.pem"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.BestAvailableEncryption(b"s3cret-pass")))
    (tmp_path / "ci.pub").write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    monkeypatch.setenv(KEY_ENV, str(path))
    monkeypatch.setenv(PASSWORD_ENV, "s3cret-pass")
    assert signing_key(tmp_path / "unused.pem", tmp_path / "unused.pub") == path
    assert not (tmp_path / "unused.pem").exists()
    sign_folder(signed, path)
    assert verify_folder(signed, [tmp_path / "keys/release-signing.pub", tmp_path / "ci.pub"]) == tmp_path / "ci.pub"
    monkeypatch.setenv(PASSWORD_ENV, "wrong")
    with pytest.raises(PipelineError) as error:
        sign_folder(signed, path)
    assert str(error.value) == f"{path}: not a usable PEM private key (wrong or missing {PASSWORD_ENV}?)"


def test_missing_key_file_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, str(tmp_path / "absent.pem"))
    with pytest.raises(PipelineError, match=f"{KEY_ENV}: no private key file at"):
        signing_key(tmp_path / "a.pem", tmp_path / "a.pub")


def test_fingerprint_is_the_bundle_hint(signed, keys):
    hint = json.loads((signed / SIGNATURE).read_text())["verificationMaterial"]["publicKey"]["hint"]
    assert fingerprint(keys[1]) == hint
    with pytest.raises(PipelineError, match="not a PEM public key"):
        fingerprint(signed / "model_int8.tflite")
    assert os.environ.get(KEY_ENV) is None


def test_a_symbolic_link_is_refused_by_name_before_the_signature(signed, keys, tmp_path):
    outside = tmp_path / "outside.tflite"
    target = signed / "model_int8.tflite"
    outside.write_bytes(target.read_bytes())  # an identical copy: the hashes would still match
    target.unlink()
    target.symlink_to(outside)
    with pytest.raises(PipelineError, match=r"model_int8.tflite: a symbolic link; a release holds regular files only$"):
        verify_release(signed, [keys[1]])


def test_another_releases_signature_is_named_as_such(signed, keys, tmp_path):
    other = tmp_path / "other"
    (other / "model.mlpackage" / "Data").mkdir(parents=True)
    (other / "model_int8.tflite").write_bytes(bytes(range(255, -1, -1)) * 4)
    (other / "model.mlpackage" / "Data" / "weight.bin").write_bytes(b"\x02" * 64)
    build_manifest(other, {**LINEAGE, "model_version": "2"}, {"keras": {"accuracy": 0.86}})
    sign_folder(other, keys[0])
    (signed / SIGNATURE).write_bytes((other / SIGNATURE).read_bytes())
    with pytest.raises(PipelineError, match=r"model.sig: signature does not match this release: it signs other "
                                            r"content \(2 files and manifest.json differ\)"):
        verify_folder(signed, [keys[1]])
