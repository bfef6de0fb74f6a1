"""Attestations: signed in-toto statements (SLSA provenance, gate verdicts) that `verify` checks, and policies."""
from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from pipelines.core.errors import PipelineError
from pipelines.release import attest
from pipelines.release.folder import build_manifest, verify_release
from pipelines.release.policy import check, load_policy
from pipelines.release.sbom import ENDPOINT_SBOM, ENVIRONMENT_SBOM, write_sboms
from pipelines.release.signing import generate_key_pair, sign_folder, verify_folder

ROOT = Path(__file__).resolve().parents[2]
LINEAGE = {"data_md5": {"data/source.csv": "0" * 32}, "raw_dataset_md5": "1" * 32, "git_commit": "a" * 40,
           "git_dirty": False, "params_sha256": "b" * 64, "mlflow_run_id": "r1", "model_name": "m",
           "model_version": "3"}
GATES = [{"name": "max_demographic_parity_difference[sex]", "measured": 0.03, "threshold": 0.1, "passed": True,
          "detail": "sex: DPD 0.03 is within 0.1"},
         {"name": "min_accuracy", "measured": 0.85, "threshold": 0.8, "passed": True, "detail": "ok"}]


def _provenance(folder: Path, dirty: bool = False) -> dict:
    build = {"external": {"params": {"sha256": LINEAGE["params_sha256"]}},
             "internal": {"code": {"commit": LINEAGE["git_commit"], "dirty": dirty}}}
    deps = [{"name": "data/source.csv", "digest": {"md5": "0" * 32}, "annotations": {"role": "source-data"}}]
    return attest.provenance_predicate(build, deps, attest.run_details("r1", "http://mlflow/r1", "2026-12-02T00:00:00"))


@pytest.fixture
def release(tmp_path):
    """A signed release folder with both attestations and SBOMs, and the key pairs around it."""
    keys = tmp_path / "keys"
    generate_key_pair(keys / "release.pem", keys / "release.pub")
    generate_key_pair(keys / "other.pem", keys / "other.pub")
    folder = tmp_path / "release"
    folder.mkdir()
    (folder / "model.tflite").write_bytes(b"\x00model bytes")
    (folder / "feature_spec.json").write_text("{}\n")
    write_sboms(folder, "m", "3", ["numpy==2.4.6", "pandas==3.1.1"])
    build_manifest(folder, LINEAGE, {"gates": GATES})
    attest.write_attestations(folder, keys / "release.pem", _provenance(folder), attest.gates_predicate(GATES, "m", "3"))
    sign_folder(folder, keys / "release.pem")
    return folder, keys


def test_a_release_verifies_with_both_attestations(release):
    folder, keys = release
    verify_release(folder, [keys / "release.pub"])
    found = attest.verify_attestations(folder, [keys / "release.pub"])
    provenance = found[attest.PROVENANCE].statement
    assert provenance["predicateType"] == "https://slsa.dev/provenance/v1"
    assert {s["name"] for s in provenance["subject"]} >= {"manifest.json", "model.tflite", ENVIRONMENT_SBOM}
    assert found[attest.GATES].statement["predicate"]["passed"] is True
    sbom = json.loads((folder / ENDPOINT_SBOM).read_text())
    assert sbom["bomFormat"] == "CycloneDX" and {c["purl"] for c in sbom["components"]} == {
        "pkg:pypi/numpy@2.4.6", "pkg:pypi/pandas@3.1.1"}
    environment = json.loads((folder / ENVIRONMENT_SBOM).read_text())
    assert any(c["name"] == "tensorflow-cpu" for c in environment["components"])


def _rewrite(path: Path, change) -> None:
    envelope = json.loads(path.read_text())
    change(envelope)
    path.write_text(json.dumps(envelope))


def _payload(change):
    def edit(envelope):
        statement = json.loads(base64.b64decode(envelope["payload"]))
        change(statement)
        envelope["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    return edit


@pytest.mark.parametrize(("tamper", "message"), [
    (lambda f: (f / attest.PROVENANCE).unlink(),
     "attestations/provenance.intoto.dsse.json: missing; the release carries no provenance attestation"),
    (lambda f: _rewrite(f / attest.GATES, lambda e: e.update(signatures=[])), "attestations/gates.intoto.dsse.json: not signed"),
    (lambda f: _rewrite(f / attest.GATES, _payload(lambda s: s["predicate"]["gates"][0].update(measured=0.01))),
     "attestations/gates.intoto.dsse.json: signature is not valid for its content"),
    (lambda f: (f / "model.tflite").write_bytes(b"other"),
     "attestations/provenance.intoto.dsse.json: subject model.tflite has sha256"),
    (lambda f: (f / "extra.bin").write_bytes(b"x"), "attestations/provenance.intoto.dsse.json: does not cover extra.bin"),
    (lambda f: (f / attest.GATES).write_text("not json"), "attestations/gates.intoto.dsse.json: not a DSSE envelope"),
])
def test_tampering_is_refused_with_one_line(release, tamper, message):
    folder, keys = release
    tamper(folder)
    with pytest.raises(PipelineError) as caught:
        attest.verify_attestations(folder, [keys / "release.pub"])
    assert str(caught.value).startswith(f"{folder}/{message}")


def test_an_attestation_signed_by_another_key_is_refused(release):
    folder, keys = release
    other = attest.sign_statement(attest.decoded(folder / attest.GATES), keys / "other.pem")
    (folder / attest.GATES).write_text(json.dumps(other))
    with pytest.raises(PipelineError, match=r"gates.intoto.dsse.json: signed by an untrusted key [0-9a-f]{16} "):
        attest.verify_attestations(folder, [keys / "release.pub"])
    with pytest.raises(PipelineError):  # model.sig covers the attestation files as well
        verify_folder(folder, [keys / "release.pub"])


def _policy(tmp_path, text):
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    return load_policy(path)


def test_policy_rules_hold_or_name_the_first_that_fails(release, tmp_path):
    folder, keys = release
    found = attest.verify_attestations(folder, [keys / "release.pub"])
    provenance, gates = found[attest.PROVENANCE].statement["predicate"], found[attest.GATES].statement["predicate"]
    strict = _policy(tmp_path, """rules:
  - {name: clean commit, provenance: buildDefinition.internalParameters.code.dirty, equals: false}
  - {name: known data, data_md5_in: ["00000000000000000000000000000000"]}
  - {name: parity on sex, gate: "*demographic_parity*sex*", max: 0.05}
""")
    assert check(strict, provenance, gates) == ["clean commit", "known data", "parity on sex"]
    stricter = _policy(tmp_path, 'rules:\n  - {name: parity on sex, gate: "*demographic_parity*sex*", max: 0.02}\n')
    with pytest.raises(PipelineError, match=r"^policy rule 'parity on sex' fails: "
                                            r"max_demographic_parity_difference\[sex\] measured 0.0300 > 0.02$"):
        check(stricter, provenance, gates)
    unknown = _policy(tmp_path, "rules:\n  - {name: data, data_md5_in: [ffff]}\n")
    with pytest.raises(PipelineError, match="fails: data/source.csv has md5 0{32}, not in the list"):
        check(unknown, provenance, gates)


@pytest.mark.parametrize(("text", "message"), [
    ("rules: [", "policy.yaml: not valid YAML at line 1"),
    ("rules:\n  - {name: x}\n", "policy.yaml: rules.0: Value error, each rule needs exactly one of gate, provenance, "
                               "data_md5_in"),
    ("rulez: []\n", "policy.yaml: rules: Field required"),
])
def test_a_policy_that_does_not_parse_is_one_line(tmp_path, text, message):
    with pytest.raises(PipelineError) as caught:
        _policy(tmp_path, text)
    assert str(caught.value) == f"{tmp_path}/{message}"


def test_the_sample_policy_parses_and_selects_the_sex_grouping_alone():
    policy = load_policy(ROOT / "deploy" / "release-policy.yaml")
    gates = {"gates": [{"name": "max_demographic_parity_difference[keras/sex]", "measured": 0.02, "passed": True},
                       {"name": "max_demographic_parity_difference[keras/sex:race]", "measured": 0.2, "passed": True}]}
    provenance = {"buildDefinition": {"internalParameters": {"code": {"dirty": False}}}}
    assert check(policy, provenance, gates) == [rule.name for rule in policy.rules]
