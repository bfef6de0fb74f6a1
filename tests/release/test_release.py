"""Release candidates: the manifest, its verification, and publishing without overwriting."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines.core.errors import PipelineError
from pipelines.core.hashing import file_digest
from pipelines.release.folder import (
    MANIFEST,
    SCHEMA,
    build_manifest,
    publish,
    verify_release,
)

LINEAGE = {
    "data_md5": {"data/adult/adult.data.gz": "0" * 32},
    "raw_dataset_md5": "1" * 32,
    "git_commit": "a" * 40,
    "git_dirty": False,
    "params_sha256": "2" * 64,
    "mlflow_run_id": "run123",
    "model_name": "adult-income",
    "model_version": "3",
}


@pytest.fixture
def candidate(tmp_path) -> Path:
    folder = tmp_path / "candidate"
    (folder / "tflite").mkdir(parents=True)
    (folder / "model_card.md").write_text("# Model card\n")
    (folder / "tflite" / "model_int8.tflite").write_bytes(bytes(range(256)))
    build_manifest(folder, LINEAGE, {"accuracy": 0.85})
    return folder


def test_manifest_lists_every_file_with_posix_paths_and_lineage(candidate):
    manifest = json.loads((candidate / MANIFEST).read_text())
    assert manifest["schema_"] == SCHEMA
    assert manifest["files"] == {
        "model_card.md": file_digest(candidate / "model_card.md"),
        "tflite/model_int8.tflite": file_digest(candidate / "tflite" / "model_int8.tflite"),
    }
    assert manifest["lineage"] == LINEAGE
    assert manifest["metrics"] == {"accuracy": 0.85}


def test_verify_passes_on_an_untouched_candidate(candidate):
    manifest = verify_release(candidate)
    assert manifest.lineage.mlflow_run_id == "run123"
    assert set(manifest.files) == {"model_card.md", "tflite/model_int8.tflite"}


def test_rebuilding_the_manifest_does_not_hash_the_old_manifest(candidate):
    build_manifest(candidate, LINEAGE, {})
    assert MANIFEST not in json.loads((candidate / MANIFEST).read_text())["files"]
    verify_release(candidate)


def test_one_changed_byte_fails_naming_the_file(candidate):
    path = candidate / "tflite" / "model_int8.tflite"
    content = bytearray(path.read_bytes())
    content[100] ^= 1
    path.write_bytes(bytes(content))
    with pytest.raises(PipelineError, match="model_int8.tflite: sha256 differs from the manifest"):
        verify_release(candidate)


def test_deleted_file_fails(candidate):
    (candidate / "model_card.md").unlink()
    with pytest.raises(PipelineError, match="model_card.md: listed in the manifest but missing"):
        verify_release(candidate)


def test_added_file_fails(candidate):
    (candidate / "tflite" / "extra.bin").write_bytes(b"x")
    with pytest.raises(PipelineError, match="extra.bin: not listed in the manifest"):
        verify_release(candidate)


def test_corrupt_manifest_json_fails(candidate):
    path = candidate / MANIFEST
    path.write_text(path.read_text()[:-20])
    with pytest.raises(PipelineError, match="manifest.json: not valid JSON"):
        verify_release(candidate)


def test_missing_manifest_fails(candidate):
    (candidate / MANIFEST).unlink()
    with pytest.raises(PipelineError, match="no manifest.json"):
        verify_release(candidate)


def test_missing_lineage_field_fails_naming_it(candidate):
    path = candidate / MANIFEST
    manifest = json.loads(path.read_text())
    del manifest["lineage"]["git_commit"]
    path.write_text(json.dumps(manifest))
    with pytest.raises(PipelineError, match="field 'lineage.git_commit'"):
        verify_release(candidate)


def test_edited_file_list_cannot_hide_a_change(candidate):
    # rewriting a hash in the manifest is caught the same way as changing the file
    path = candidate / MANIFEST
    manifest = json.loads(path.read_text())
    manifest["files"]["model_card.md"] = "f" * 64
    path.write_text(json.dumps(manifest))
    with pytest.raises(PipelineError, match="model_card.md: sha256 differs"):
        verify_release(candidate)


def test_unknown_schema_fails(candidate):
    path = candidate / MANIFEST
    manifest = json.loads(path.read_text())
    manifest["schema_"] = "something/else"
    path.write_text(json.dumps(manifest))
    with pytest.raises(PipelineError, match="unknown schema"):
        verify_release(candidate)


def test_not_a_folder_fails(tmp_path):
    with pytest.raises(PipelineError, match="not a release folder"):
        verify_release(tmp_path / "nothing")


def test_publish_numbers_releases_from_one(candidate, tmp_path):
    releases = tmp_path / "releases"
    target = publish(candidate, releases, "adult-income")
    assert target == releases / "adult-income" / "1"
    assert (target / "tflite" / "model_int8.tflite").read_bytes() == bytes(range(256))
    verify_release(target)
    # nothing else (no temp folders) is left beside the release
    assert [p.name for p in (releases / "adult-income").iterdir()] == ["1"]


def test_publish_never_overwrites_and_takes_the_next_number(candidate, tmp_path):
    releases = tmp_path / "releases"
    first = publish(candidate, releases, "adult-income")
    before = {p.relative_to(first): p.read_bytes() for p in first.rglob("*") if p.is_file()}
    (candidate / "model_card.md").write_text("# a different model\n")
    build_manifest(candidate, LINEAGE, {"accuracy": 0.9})
    second = publish(candidate, releases, "adult-income")
    assert second.name == "2"
    assert {p.relative_to(first): p.read_bytes() for p in first.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in (releases / "adult-income").iterdir()) == ["1", "2"]


def test_publish_claims_numbers_atomically_across_processes(candidate, tmp_path):
    """Eight processes publish at once: eight releases numbered 1..8, none lost, none overwritten."""
    import multiprocessing

    releases = tmp_path / "releases"
    pool = multiprocessing.get_context("fork").Pool(8)
    try:
        targets = pool.starmap(publish, [(candidate, releases, "adult-income")] * 8)
    finally:  # close + join: every worker takes its sentinel and exits. The `with` form terminates the workers
        pool.close()  # by SIGTERM, which a handler a library installed in this process (inherited by the fork)
        pool.join()  # can swallow, leaving a worker blocked on the queue lock its killed neighbour held

    assert sorted(int(Path(t).name) for t in targets) == list(range(1, 9))
    assert sorted(p.name for p in (releases / "adult-income").iterdir()) == [str(n) for n in range(1, 9)]
    for target in targets:
        verify_release(Path(target))


def test_publish_refuses_a_tampered_candidate(candidate, tmp_path):
    (candidate / "model_card.md").write_text("tampered\n")
    with pytest.raises(PipelineError, match="sha256 differs"):
        publish(candidate, tmp_path / "releases", "adult-income")
    assert not (tmp_path / "releases" / "adult-income" / "1").exists()
