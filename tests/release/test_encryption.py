"""Tink-encrypted release bundles: verify without the key, decrypt to the manifest's hashes, refuse a wrong or
missing key writing nothing, key rotation, and the keyset sources (local file, env var, KMS-wrapped).

The release folders are built the way release_candidate builds them (stand-in model bytes, the project's own
build_manifest, encrypt_models and sign_folder, so the tests stay fast); the slow test at the end runs the whole
pipeline with `release.encryption: tink`.
"""
from __future__ import annotations

import base64
import json
import random
import stat
from pathlib import Path

import pytest
import yaml

from cli.main import main
from pipelines.core.config import load_settings
from pipelines.core.errors import PipelineError
from pipelines.core.hashing import file_digest
from pipelines.release.encryption import SUFFIX, decrypt_release, encrypt_models
from pipelines.release.folder import build_manifest, verify_release
from pipelines.release.seal import seal
from pipelines.release.signing import KEY_ENV, project_key, sign_folder
from pipelines.release_format.keyset import load_keyset, new_keyset, rotate_keyset

LINEAGE = {"data_md5": {"data.csv": "0" * 32}, "raw_dataset_md5": "1" * 32, "git_commit": "a" * 40,
           "git_dirty": False, "params_sha256": "2" * 64, "mlflow_run_id": "run1", "model_name": "adult-income",
           "model_version": "1"}
MODELS = ["model_int8.tflite", "model_float16.tflite", "model.mlpackage/Manifest.json",
          "model.mlpackage/Data/com.apple.CoreML/model.mlmodel", "model.mlpackage/Data/com.apple.CoreML/weights/weight.bin"]
READABLE = ["feature_spec.json", "model_card.md", "footprint.json"]
KEYSET_FILE = "keys/private/release-keyset.json"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder whose params encrypt releases with the local development keyset."""
    monkeypatch.delenv(KEY_ENV, raising=False)
    monkeypatch.delenv("MOBILE_MLOPS_RELEASE_KEYSET", raising=False)
    root = tmp_path / "project"
    root.mkdir()
    write_params(root, {"encryption": "tink"})
    return root


def write_params(root: Path, release: dict) -> None:
    (root / "params.yaml").write_text(yaml.safe_dump({
        "data": {"source": "data.csv", "label": "income", "positive_label": ">50K", "sensitive_features": ["sex"]},
        "release": {"model_name": "adult-income", **release}}, sort_keys=False))


def build_release(root: Path, version: str = "1") -> Path:
    """releases/adult-income/<version>/ as release_candidate assembles it: models encrypted, then manifest, signature."""
    settings = load_settings(root / "params.yaml")
    folder = root / "releases" / "adult-income" / version
    rng = random.Random(version)
    for name in MODELS + READABLE:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(rng.randbytes(3000) if name in MODELS else b'{"readable": true}\n')
    plaintext = {name: file_digest(folder / name) for name in MODELS}
    encryption = encrypt_models(folder, load_keyset(settings, create=True))
    seal(folder, settings, LINEAGE | {"model_version": version}, {}, endpoint_requirements=["numpy==2.4.6"],
         mlflow_run_url="http://mlflow/run", encryption=encryption)
    (folder.parent / f".plaintext-{version}.json").write_text(json.dumps(plaintext))  # what the test expects back
    return folder


def plaintext_of(folder: Path) -> dict[str, str]:
    return json.loads((folder.parent / f".plaintext-{folder.name}.json").read_text())


def cli(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_models_ship_as_ciphertext_reports_stay_readable_and_the_manifest_keeps_both_hashes(project):
    folder = build_release(project)
    manifest = verify_release(folder)
    assert manifest.encryption is not None
    for name in MODELS:
        entry = manifest.encryption.files[name]
        assert not (folder / name).exists() and (folder / entry.ciphertext).is_file()
        assert entry.ciphertext == name + SUFFIX and manifest.files[entry.ciphertext] == entry.ciphertext_sha256
        assert entry.sha256 == plaintext_of(folder)[name] and entry.size == 3000
        assert entry.ciphertext_size == (folder / entry.ciphertext).stat().st_size > entry.size
        assert entry.ciphertext_sha256 != entry.sha256
    assert all((folder / n).read_text() == '{"readable": true}\n' for n in READABLE)
    assert {n for n in manifest.files if not n.endswith(SUFFIX) and not n.startswith("sbom/")} == set(READABLE)
    keyset = project / KEYSET_FILE  # the development keyset: made on first use, owner-only, under git-ignored keys/private
    assert stat.S_IMODE(keyset.stat().st_mode) == 0o600
    assert manifest.encryption.key_id == json.loads(keyset.read_text())["primaryKeyId"]
    assert manifest.encryption.segment_size == 1 << 20 and manifest.encryption.derived_key_size == 32


def test_verify_needs_no_key_and_decrypt_restores_the_manifest_hashes(project, capsys, monkeypatch):
    folder = build_release(project)
    (project / KEYSET_FILE).rename(project / "keyset-elsewhere.json")  # verify never reads the keyset
    code, out, err = cli(capsys, "verify", str(folder), "--params", str(project / "params.yaml"))
    assert code == 0, err
    assert f"{len(MODELS)} model files encrypted" in out and "not decrypted" in out
    (project / "keyset-elsewhere.json").rename(project / KEYSET_FILE)
    monkeypatch.chdir(project)
    code, out, err = cli(capsys, "decrypt", str(folder), "--out", "restored")
    assert code == 0, err
    assert out.startswith(f"OK {folder}: {len(MODELS)} model files decrypted to restored")
    restored = project / "restored"
    assert {n: file_digest(restored / n) for n in MODELS} == plaintext_of(folder)
    assert all((restored / n).read_bytes() == (folder / n).read_bytes() for n in READABLE)
    assert not list(restored.rglob("*" + SUFFIX)) and not (restored / "model.sig").exists()


def test_a_tampered_ciphertext_is_refused_by_verify_naming_the_file(project, capsys):
    folder = build_release(project)
    sealed = folder / ("model_int8.tflite" + SUFFIX)
    content = bytearray(sealed.read_bytes())
    content[-20] ^= 1
    sealed.write_bytes(bytes(content))
    code, _, err = cli(capsys, "verify", str(folder), "--params", str(project / "params.yaml"))
    assert code == 1
    assert err == f"error: {sealed}: sha256 differs from the manifest\n"


def test_a_tampered_ciphertext_with_a_rewritten_manifest_fails_the_signature_and_the_decryption(project):
    folder = build_release(project)
    sealed = folder / ("model_int8.tflite" + SUFFIX)
    content = bytearray(sealed.read_bytes())
    content[-20] ^= 1
    sealed.write_bytes(bytes(content))
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"][sealed.name] = manifest["encryption"]["files"]["model_int8.tflite"]["ciphertext_sha256"] = \
        file_digest(sealed)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    settings = load_settings(project / "params.yaml")
    with pytest.raises(PipelineError, match="model_int8.tflite.tink: differs from the signed content"):
        verify_release(folder, [project / "keys" / "release-signing.pub"])
    with pytest.raises(PipelineError, match="model_int8.tflite.tink: cannot decrypt it .* altered"):
        decrypt_release(folder, project / "out", load_keyset(settings), verify_release(folder).encryption)
    assert not (project / "out").exists()


def test_swapped_ciphertexts_do_not_decrypt(project):
    """The associated data binds each ciphertext to its own path: renaming files cannot swap models."""
    folder = build_release(project)
    a, b = folder / ("model_int8.tflite" + SUFFIX), folder / ("model_float16.tflite" + SUFFIX)
    content_a, content_b = a.read_bytes(), b.read_bytes()
    a.write_bytes(content_b)
    b.write_bytes(content_a)
    manifest = json.loads((folder / "manifest.json").read_text())
    entries = manifest["encryption"]["files"]
    for name, sealed in (("model_int8.tflite", a), ("model_float16.tflite", b)):
        manifest["files"][sealed.name] = entries[name]["ciphertext_sha256"] = file_digest(sealed)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    settings = load_settings(project / "params.yaml")
    with pytest.raises(PipelineError, match="cannot decrypt it .* renamed"):
        decrypt_release(folder, project / "out", load_keyset(settings), verify_release(folder).encryption)


def test_a_wrong_key_is_one_line_and_writes_nothing(project, capsys, monkeypatch):
    folder = build_release(project)
    other = new_keyset("AES256_GCM_HKDF_1MB")
    import tink
    from tink import secret_key_access

    (project / KEYSET_FILE).write_text(tink.json_proto_keyset_format.serialize(other, secret_key_access.TOKEN))
    monkeypatch.chdir(project)
    code, out, err = cli(capsys, "decrypt", str(folder), "--out", "restored")
    assert code == 1 and out == ""
    assert len(err.splitlines()) == 1
    assert err.startswith(f"error: {folder}/") and "cannot decrypt it with the keyset from" in err and "wrong key" in err
    assert not (project / "restored").exists()
    assert not [p for p in project.iterdir() if p.name.startswith(".restored")]  # no temp folder left behind


def test_a_missing_key_is_one_line_and_writes_nothing(project, capsys, monkeypatch):
    folder = build_release(project)
    (project / KEYSET_FILE).unlink()
    monkeypatch.chdir(project)
    code, _, err = cli(capsys, "decrypt", str(folder), "--out", "restored")
    assert code == 1
    assert err == f"error: release.keyset.file: no keyset at {project / KEYSET_FILE}\n"
    assert not (project / KEYSET_FILE).exists()  # decrypting never makes a key
    write_params(project, {"encryption": "tink", "keyset": {"source": "env", "env": "RELEASE_KEYSET_TEST"}})
    monkeypatch.delenv("RELEASE_KEYSET_TEST", raising=False)
    code, _, err = cli(capsys, "decrypt", str(folder), "--out", "restored")
    assert code == 1
    assert err.startswith("error: release.keyset: $RELEASE_KEYSET_TEST is not set;") and err.count("\n") == 1
    assert not (project / "restored").exists()


def test_decrypt_refuses_an_unencrypted_release_and_a_non_empty_out(project, capsys, monkeypatch):
    folder = build_release(project)
    monkeypatch.chdir(project)
    (project / "busy").mkdir()
    (project / "busy" / "keep.txt").write_text("mine\n")
    code, _, err = cli(capsys, "decrypt", str(folder), "--out", "busy")
    assert code == 1 and err == "error: busy: already exists and is not empty; nothing was written\n"
    assert [p.name for p in (project / "busy").iterdir()] == ["keep.txt"]
    write_params(project, {})  # encryption none: today's releases
    plain = project / "releases" / "adult-income" / "2"
    (plain / "model_int8.tflite").parent.mkdir(parents=True)
    (plain / "model_int8.tflite").write_bytes(b"\x00" * 64)
    manifest = build_manifest(plain, LINEAGE, {})
    assert "encryption" not in manifest  # an unencrypted manifest is what it always was
    sign_folder(plain, project_key(load_settings(project / "params.yaml")))
    code, _, err = cli(capsys, "decrypt", str(plain), "--out", "restored")
    assert code == 1 and err == f"error: {plain}: not an encrypted release (manifest.json has no encryption record)\n"


def test_a_rotated_keyset_still_decrypts_an_old_release_and_new_releases_use_the_new_key(project, capsys, monkeypatch):
    old = build_release(project, "1")
    old_key = verify_release(old).encryption.key_id
    monkeypatch.chdir(project)
    code, out, err = cli(capsys, "keys", "rotate")
    assert code == 0, err
    keyset = json.loads((project / KEYSET_FILE).read_text())
    assert out.startswith(f"rotated the release keyset {project / KEYSET_FILE}: primary key {keyset['primaryKeyId']} "
                          f"(was {old_key})")
    assert keyset["primaryKeyId"] != old_key and len(keyset["key"]) == 2
    assert stat.S_IMODE((project / KEYSET_FILE).stat().st_mode) == 0o600
    new = build_release(project, "2")
    assert verify_release(new).encryption.key_id == keyset["primaryKeyId"]
    for folder in (old, new):
        code, _, err = cli(capsys, "decrypt", str(folder), "--out", f"restored-{folder.name}")
        assert code == 0, err
        assert {n: file_digest(project / f"restored-{folder.name}" / n) for n in MODELS} == plaintext_of(folder)


def test_env_keyset_is_read_from_the_variable_and_never_written(project, monkeypatch):
    import tink
    from tink import secret_key_access

    handle = new_keyset("AES128_GCM_HKDF_4KB")
    monkeypatch.setenv("MOBILE_MLOPS_RELEASE_KEYSET", tink.json_proto_keyset_format.serialize(handle, secret_key_access.TOKEN))
    write_params(project, {"encryption": "tink", "keyset": {"source": "env"}})
    folder = build_release(project)
    assert verify_release(folder).encryption.key_id == handle.keyset_info().primary_key_id
    assert verify_release(folder).encryption.segment_size == 4096
    assert not (project / "keys" / "private" / "release-keyset.json").exists()
    with pytest.raises(PipelineError, match=r"source env: rotate the keyset where \$MOBILE_MLOPS_RELEASE_KEYSET"):
        rotate_keyset(load_settings(project / "params.yaml"))
    monkeypatch.setenv("MOBILE_MLOPS_RELEASE_KEYSET", "{not json")
    with pytest.raises(PipelineError, match=r"^\$MOBILE_MLOPS_RELEASE_KEYSET: not a Tink JSON keyset"):
        load_keyset(load_settings(project / "params.yaml"))


def test_a_keyset_of_another_primitive_is_refused(project):
    import tink
    from tink import aead, secret_key_access

    aead.register()
    handle = tink.new_keyset_handle(aead.aead_key_templates.AES256_GCM)
    (project / KEYSET_FILE).parent.mkdir(parents=True)
    (project / KEYSET_FILE).write_text(tink.json_proto_keyset_format.serialize(handle, secret_key_access.TOKEN))
    with pytest.raises(PipelineError, match="is AesGcmKey, not an AES-GCM-HKDF streaming key"):
        load_keyset(load_settings(project / "params.yaml"))


def test_kms_wrapped_keyset_round_trip_and_rotation(project):
    """The KMS path, with Tink's own fake KMS client (fake-kms:// URIs carry their key): the keyset file is stored
    encrypted, only the KMS key unwraps it. Google Cloud and AWS KMS need tink[gcpkms] / tink[awskms] and network."""
    import tink
    from tink import aead
    from tink.testing import fake_kms

    aead.register()
    kek = tink.new_keyset_handle(aead.aead_key_templates.AES256_GCM)
    uri = "fake-kms://" + base64.urlsafe_b64encode(tink.proto_keyset_format.serialize(kek, _token())).decode().rstrip("=")
    fake_kms.register_client()
    try:
        write_params(project, {"encryption": "tink", "keyset": {"source": "kms", "kms_uri": uri,
                                                                  "file": "keys/release-keyset.wrapped.json"}})
        settings = load_settings(project / "params.yaml")
        with pytest.raises(PipelineError, match="release.keyset.file: no keyset at"):
            load_keyset(settings, create=True)  # a KMS keyset is made on purpose (`keys rotate`), never on first use
        assert rotate_keyset(settings)[0] is None
        wrapped = (project / "keys" / "release-keyset.wrapped.json").read_text()
        assert "encryptedKeyset" in wrapped and "AesGcmHkdfStreamingKey" not in wrapped.split("keysetInfo")[0]
        folder = build_release(project)
        previous, new = rotate_keyset(settings)
        assert previous == verify_release(folder).encryption.key_id != new
        restored = decrypt_release(folder, project / "out", load_keyset(settings), verify_release(folder).encryption)
        assert restored == plaintext_of(folder)
    finally:
        from tink import _kms_clients

        _kms_clients.reset_kms_clients()  # the fake client is this test's only


def test_unsupported_kms_schemes_are_one_line(project):
    write_params(project, {"encryption": "tink", "keyset": {"source": "kms", "kms_uri": "gcp-kms://projects/p/locations/l/keyRings/r/cryptoKeys/k",
                                                              "file": "wrapped.json"}})
    (project / "wrapped.json").write_text("{}")
    with pytest.raises(PipelineError, match=r"gcp-kms:// is not supported here: it needs tink\[gcpkms\]"):
        load_keyset(load_settings(project / "params.yaml"))
    write_params(project, {"encryption": "tink", "keyset": {"source": "kms", "kms_uri": "vault://x", "file": "wrapped.json"}})
    with pytest.raises(PipelineError, match="no KMS client for vault://"):
        load_keyset(load_settings(project / "params.yaml"))


def _token():
    from tink import secret_key_access

    return secret_key_access.TOKEN


def _decrypt_like_the_ios_snippet(ciphertext: bytes, key: bytes, segment_size: int, path: str) -> bytes:
    """The Swift (CryptoKit) decoder of docs/guides/encryption.md, step for step, in Python: Tink's AES-GCM-HKDF streaming format.
    Header: length byte, salt (derived key size), 7-byte nonce prefix; key = HKDF-SHA256(key, salt, info=path);
    segment i: AES-GCM, nonce = prefix || i (4 bytes, big-endian) || 1 if last else 0, 16-byte tag."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    header = ciphertext[0]
    salt, prefix = ciphertext[1:header - 7], ciphertext[header - 7:header]
    derived = AESGCM(HKDF(hashes.SHA256(), len(salt), salt, path.encode()).derive(key))
    plaintext, start, index = b"", header, 0
    while start < len(ciphertext):
        end = min(start + (segment_size - header if index == 0 else segment_size), len(ciphertext))
        nonce = prefix + index.to_bytes(4, "big") + bytes([end == len(ciphertext)])
        plaintext += derived.decrypt(nonce, ciphertext[start:end], None)
        start, index = end, index + 1
    return plaintext


@pytest.mark.parametrize("template", ["AES256_GCM_HKDF_4KB", "AES128_GCM_HKDF_4KB", "AES256_GCM_HKDF_1MB"])
def test_the_ios_decoder_reads_tinks_ciphertext(tmp_path, template):
    from tink.proto import aes_gcm_hkdf_streaming_pb2

    from pipelines.release_format.keyset import _keyset_proto, encrypt_file, primary_parameters

    handle = new_keyset(template)
    plain = tmp_path / "model_int8.tflite"
    plain.write_bytes(random.Random(template).randbytes(3 * 4096 + 100))  # several 4 KB segments, a short last one
    encrypt_file(handle, plain, tmp_path / "sealed", b"model_int8.tflite")
    key = aes_gcm_hkdf_streaming_pb2.AesGcmHkdfStreamingKey.FromString(_keyset_proto(handle).key[0].key_data.value)
    segment = primary_parameters(handle)["segment_size"]
    sealed = (tmp_path / "sealed").read_bytes()
    assert _decrypt_like_the_ios_snippet(sealed, key.key_value, segment, "model_int8.tflite") == plain.read_bytes()
    from cryptography.exceptions import InvalidTag

    with pytest.raises(InvalidTag):  # the path is bound in: another file name does not decrypt
        _decrypt_like_the_ios_snippet(sealed, key.key_value, segment, "model_float16.tflite")


def test_a_missing_keyset_stops_the_run_at_the_drift_check_before_training(project, monkeypatch):
    from pipelines.data.steps import data_drift

    write_params(project, {"encryption": "tink", "keyset": {"source": "env"}})
    with pytest.raises(PipelineError, match=r"^release.keyset: \$MOBILE_MLOPS_RELEASE_KEYSET is not set"):
        data_drift(load_settings(project / "params.yaml"))
    assert not (project / "data").exists() and not (project / "reports").exists()


@pytest.mark.slow
def test_the_pipeline_ships_an_encrypted_release_that_decrypts_to_working_models(small_project, capsys, monkeypatch):
    """The whole graph with release.encryption tink: the real TFLite and Core ML files ship encrypted, decrypt to
    the manifest's hashes, the decrypted TFLite model scores rows, and the next drift check reads the encrypted
    reference model with the keyset."""
    from dagster import DagsterInstance

    from assets.build import materialize_all
    from pipelines.data.features import FeatureSpec, encode_features
    from pipelines.data.steps import data_drift
    from pipelines.release_format.litert import predict_tflite

    monkeypatch.delenv(KEY_ENV, raising=False)
    params = yaml.safe_load((small_project / "params.yaml").read_text())
    params["release"]["encryption"] = "tink"
    (small_project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    settings = load_settings(small_project / "params.yaml")
    assert materialize_all(settings, instance=DagsterInstance.ephemeral()).success
    [release] = (small_project / "releases" / "adult-income").iterdir()
    manifest = verify_release(release, [small_project / "keys" / "release-signing.pub"])
    encrypted = set(manifest.encryption.files)
    assert {n for n in encrypted if n.endswith(".tflite")} and {n for n in encrypted if n.startswith("model.mlpackage/")}
    assert not list(release.rglob("*.tflite")) and not [p for p in release.rglob("*") if p.is_file()
                                                        and "mlpackage" in p.as_posix() and p.suffix != SUFFIX]
    monkeypatch.chdir(small_project)
    code, _, err = cli(capsys, "decrypt", str(release), "--out", "restored")
    assert code == 0, err
    restored = small_project / "restored"
    assert {n: file_digest(restored / n) for n in encrypted} == {n: e.sha256 for n, e in manifest.encryption.files.items()}
    import pandas as pd

    spec = FeatureSpec.model_validate(json.loads((restored / "feature_spec.json").read_text())["spec"])
    rows = pd.read_parquet(small_project / "data/prepared/validated.parquet").head(20)
    scores = predict_tflite((restored / "model_int8.tflite").read_bytes(), encode_features(rows, spec))
    assert len(scores) == 20 and ((scores >= 0) & (scores <= 1)).all()
    report = json.loads((small_project / "reports" / "drift.json").read_text())
    assert report["reference"] is None  # the first run had nothing to compare against
    data_drift(settings)  # the next run (the bare step: its gate is judged by the step wrapper): the encrypted release is the reference
    report = json.loads((small_project / "reports" / "drift.json").read_text())
    assert report["reference"] == str(release.relative_to(small_project))
    assert report["predictions"]["model"].endswith(".tflite") and report["predictions"]["psi"] < 0.1
    import tink
    from tink import secret_key_access

    keyset = small_project / KEYSET_FILE  # another key: one line, nothing written
    keyset.write_text(tink.json_proto_keyset_format.serialize(new_keyset("AES256_GCM_HKDF_1MB"), secret_key_access.TOKEN))
    code, _, err = cli(capsys, "decrypt", str(release), "--out", "again")
    assert code == 1 and "wrong key" in err and err.count("\n") == 1
    assert not (small_project / "again").exists()
