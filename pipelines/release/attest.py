"""Signed attestations in a release: in-toto v1 statements in DSSE envelopes, signed with the release key.

- provenance: a SLSA v1 provenance predicate (how the release was built: params, stage graph, code commit, lock
  files; from what: every source file's DVC md5, the raw dataset, the drift reference release, the SBOMs; by which
  run: orchestrator run id, MLflow run id);
- gates: the project's own predicate with every gate verdict (name, figure, limit, passed, why).

Their subjects are the release's files with their sha256, so an attestation cannot be moved to other content.
`verify_attestations` checks presence, signature (offline, the same trusted keys as model.sig) and subjects.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import platform
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipelines.core import tracing
from pipelines.core.errors import PipelineError
from pipelines.core.hashing import tree_sha256

FOLDER = "attestations"
PROVENANCE = f"{FOLDER}/provenance.intoto.dsse.json"
GATES = f"{FOLDER}/gates.intoto.dsse.json"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
SLSA_PROVENANCE = "https://slsa.dev/provenance/v1"
GATE_VERDICTS = "urn:mobile-mlops:attestation:gate-verdicts:v1"
BUILD_TYPE = "urn:mobile-mlops:build:stage-catalog:v1"
RUN_ID_ENV = tracing.RUN_ID_ENV  # the orchestrator's run id (set by the Dagster glue; absent under dvc repro)
PASSWORD_ENV = "MOBILE_MLOPS_SIGNING_KEY_PASSWORD"
KINDS = {PROVENANCE: SLSA_PROVENANCE, GATES: GATE_VERDICTS}
SKIPPED = (FOLDER + "/", "model.sig")  # what the subjects leave out: the attestations themselves, the signature


def subjects(folder: Path) -> list[dict[str, Any]]:
    """Every file of the release (manifest included) as an in-toto resource descriptor with its sha256."""
    return [{"name": name, "digest": {"sha256": digest}} for name, digest in sorted(tree_sha256(folder).items())
            if not name.startswith(SKIPPED)]


def statement(folder: Path, predicate_type: str, predicate: dict[str, Any]) -> dict[str, Any]:
    """An in-toto v1 Statement, checked by the in-toto-attestation library's own validator."""
    from google.protobuf import json_format
    from in_toto_attestation.v1.resource_descriptor import ResourceDescriptor
    from in_toto_attestation.v1.statement import Statement

    found = subjects(folder)
    built = Statement([ResourceDescriptor(name=s["name"], digest=s["digest"]).pb for s in found], predicate_type,
                      predicate)
    built.validate()
    return json_format.MessageToDict(built.pb, preserving_proto_field_name=False)


def _private_key(path: Path):
    from cryptography.hazmat.primitives import serialization

    password = os.environ.get(PASSWORD_ENV)
    try:
        return serialization.load_pem_private_key(path.read_bytes(), password.encode() if password else None)
    except (OSError, ValueError, TypeError):
        raise PipelineError(f"{path}: not a usable PEM private key for the attestations") from None


def _keyid(public_key) -> str:
    """sha256 of the PEM public key: the same fingerprint model.sig's `hint` carries."""
    from cryptography.hazmat.primitives import serialization

    pem = public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(pem).hexdigest()


def sign_statement(payload: dict[str, Any], private_key_file: Path) -> dict[str, Any]:
    """A DSSE envelope of the statement, signed (ECDSA P-256) with the release key."""
    from securesystemslib.dsse import Envelope
    from securesystemslib.signer import CryptoSigner, SSlibKey

    key = _private_key(private_key_file)
    public = SSlibKey.from_crypto(key.public_key(), keyid=_keyid(key.public_key()))
    envelope = Envelope(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode(), PAYLOAD_TYPE, {})
    envelope.sign(CryptoSigner(key, public))
    return envelope.to_dict()


def provenance_predicate(build: dict[str, Any], dependencies: list[dict[str, Any]],
                         run: dict[str, Any]) -> dict[str, Any]:
    """A SLSA v1 provenance predicate (buildDefinition + runDetails)."""
    return {"buildDefinition": {"buildType": BUILD_TYPE, "externalParameters": build["external"],
                                "internalParameters": build["internal"], "resolvedDependencies": dependencies},
            "runDetails": run}


def run_details(mlflow_run_id: str, mlflow_run_url: str, started: str) -> dict[str, Any]:
    """Who built it and in which runs: the orchestrator's run id (or the DVC stage), the MLflow run."""
    run_id = os.environ.get(RUN_ID_ENV)
    orchestrator = "dagster" if run_id else "dvc-stage"
    return {"builder": {"id": f"urn:mobile-mlops:builder:{orchestrator}",
                        "version": {"python": platform.python_version()}},
            "metadata": {"invocationId": run_id or f"stage:release_candidate@{started}", "startedOn": started,
                         "finishedOn": datetime.now(UTC).isoformat(timespec="seconds")},
            "byproducts": [{"name": "mlflow-run", "uri": mlflow_run_url,
                            "annotations": {"run_id": mlflow_run_id}}]}


def gates_predicate(gates: list[dict[str, Any]], model_name: str, model_version: str) -> dict[str, Any]:
    """Every gate's verdict: name, figure, limit, passed and why."""
    return {"model": {"name": model_name, "version": model_version},
            "passed": all(g["passed"] for g in gates),
            "gates": [{"name": g["name"], "measured": g["measured"], "threshold": g["threshold"],
                       "passed": g["passed"], "detail": g["detail"]} for g in gates]}


def write_attestations(folder: Path, private_key_file: Path, provenance: dict[str, Any],
                       gates: dict[str, Any]) -> list[str]:
    """Sign both statements over the folder's current files and write them under attestations/."""
    envelopes = {PROVENANCE: statement(folder, SLSA_PROVENANCE, provenance),
                 GATES: statement(folder, GATE_VERDICTS, gates)}
    (folder / FOLDER).mkdir(exist_ok=True)
    for path, payload in envelopes.items():
        (folder / path).write_text(json.dumps(sign_statement(payload, private_key_file), indent=1) + "\n")
    return list(envelopes)


@dataclass(frozen=True)
class Attested:
    """A verified attestation: its path in the release, the statement and the trusted key that signed it."""

    path: str
    statement: dict[str, Any]
    key: Path


def _trusted(public_keys: list[Path]):
    from cryptography.hazmat.primitives import serialization
    from securesystemslib.signer import SSlibKey

    keys: dict[str, Any] = {}
    for path in public_keys:
        try:
            public = serialization.load_pem_public_key(path.read_bytes())
        except (OSError, ValueError):
            raise PipelineError(f"{path}: not a PEM public key") from None
        keys.setdefault(_keyid(public), (SSlibKey.from_crypto(public, keyid=_keyid(public)), path))
    return keys


def _envelope(folder: Path, path: str):
    from securesystemslib.dsse import Envelope

    file = folder / path
    if not file.is_file():
        raise PipelineError(f"{file}: missing; the release carries no {path.split('/')[-1].split('.')[0]} "
                            "attestation")
    try:
        return Envelope.from_dict(json.loads(file.read_text()))
    except (ValueError, KeyError, TypeError, AttributeError):
        raise PipelineError(f"{file}: not a DSSE envelope") from None


def verify_attestation(folder: Path, path: str, public_keys: list[Path]) -> Attested:
    """One attestation: present, signed by a trusted key, of the expected kind, and naming these exact files."""
    from securesystemslib.exceptions import VerificationError

    file, envelope, trusted = folder / path, _envelope(folder, path), _trusted(public_keys)
    if not envelope.signatures:
        raise PipelineError(f"{file}: not signed")
    keyids = list(envelope.signatures)
    known = [k for k in keyids if k in trusted]
    if not known:
        raise PipelineError(f"{file}: signed by an untrusted key {keyids[0][:16]} (trusted: "
                            f"{', '.join(str(p) for p in public_keys) or 'none'})")
    try:
        envelope.verify([trusted[k][0] for k in known], 1)
    except VerificationError:
        raise PipelineError(f"{file}: signature is not valid for its content") from None
    if envelope.payload_type != PAYLOAD_TYPE:
        raise PipelineError(f"{file}: payload type {envelope.payload_type!r}, expected {PAYLOAD_TYPE}")
    payload = json.loads(envelope.payload)
    if payload.get("_type") != STATEMENT_TYPE or payload.get("predicateType") != KINDS[path]:
        raise PipelineError(f"{file}: not an in-toto v1 statement of type {KINDS[path]}")
    signed = {s["name"]: s["digest"].get("sha256") for s in payload.get("subject", [])}
    actual = {s["name"]: s["digest"]["sha256"] for s in subjects(folder)}
    for name in sorted(set(signed) | set(actual)):
        if name not in actual:
            raise PipelineError(f"{file}: names {name}, which the release does not hold")
        if name not in signed:
            raise PipelineError(f"{file}: does not cover {name}")
        if signed[name] != actual[name]:
            raise PipelineError(f"{file}: subject {name} has sha256 {signed[name][:12]}, the file {actual[name][:12]}")
    return Attested(path, payload, trusted[known[0]][1])


def verify_attestations(folder: Path, public_keys: list[Path]) -> dict[str, Attested]:
    """Both attestations of a release, verified; raises naming the first problem."""
    return {path: verify_attestation(folder, path, public_keys) for path in KINDS}


def decoded(envelope_file: Path) -> dict[str, Any]:
    """The statement inside an envelope, unverified (for reading a release's attestations)."""
    return json.loads(base64.b64decode(json.loads(envelope_file.read_text())["payload"]))
