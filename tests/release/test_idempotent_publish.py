"""Publishing is idempotent: a candidate whose content equals a published release's is recognised (the release
step then publishes nothing); a changed model, data version or params is new content."""
from __future__ import annotations

import shutil
from pathlib import Path

from pipelines.release.folder import build_manifest, publish, same_content


def _candidate(folder: Path, model: bytes, run: str, cost: str, data_md5: str = "a" * 32, commit: str = "c" * 40,
               dirty: bool = False) -> Path:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    (folder / "model_int8.tflite").write_bytes(model)
    (folder / "feature_spec.json").write_text('{"spec": {}}')
    (folder / "cost.json").write_text(cost)  # measured run compute: differs on every run
    (folder / "model_card.md").write_text(f"MLflow run `{run}`\n")
    lineage = {"data_md5": {"data.csv": data_md5}, "raw_dataset_md5": "b" * 32, "git_commit": commit,
               "git_dirty": dirty, "params_sha256": "d" * 64, "mlflow_run_id": run, "model_name": "m",
               "model_version": run}
    build_manifest(folder, lineage, {})
    return folder


def test_the_same_content_is_found_and_new_content_is_not(tmp_path: Path):
    releases = tmp_path / "releases"
    staged = tmp_path / "staged"
    first = publish(_candidate(staged, b"model-bytes", "1", '{"cpu_seconds": 20.1}'), releases, "m")
    assert first == releases / "m" / "1"
    again = _candidate(staged, b"model-bytes", "2", '{"cpu_seconds": 23.4}')  # retrained, byte-identical model
    assert same_content(again, releases, "m") == first
    assert same_content(_candidate(staged, b"other-model", "3", "{}"), releases, "m") is None
    assert same_content(_candidate(staged, b"model-bytes", "4", "{}", data_md5="e" * 32), releases, "m") is None
    assert same_content(_candidate(staged, b"model-bytes", "5", "{}", commit="f" * 40), releases, "m") is None
    assert same_content(_candidate(staged, b"model-bytes", "6", "{}", dirty=True), releases, "m") is None
    assert same_content(staged, tmp_path / "none-yet", "m") is None
