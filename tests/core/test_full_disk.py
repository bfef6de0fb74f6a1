"""A full disk under an output or the release folder: one short line naming the target, nothing half-written.
Uses a real 64 KiB tmpfs (root only; skipped with the reason elsewhere)."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from pipelines.core.errors import PipelineError
from pipelines.core.io import write_json
from pipelines.release.folder import publish


@pytest.fixture
def tiny_disk(tmp_path: Path):
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()[:100]}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_an_output_on_a_full_disk_is_one_line_and_leaves_no_temp(tiny_disk: Path):
    with pytest.raises(PipelineError) as caught:
        write_json(tiny_disk / "reports" / "big.json", {"rows": ["x" * 100] * 2000})
    assert str(caught.value) == f"{tiny_disk / 'reports' / 'big.json'}: cannot write it: the disk is full"
    assert list((tiny_disk / "reports").iterdir()) == []


def test_a_release_on_a_full_disk_is_one_line_and_nothing_is_published(tiny_disk: Path, tmp_path: Path,
                                                                          monkeypatch):
    from pipelines.release.folder import build_manifest
    from pipelines.release.signing import KEY_ENV, sign_folder, signing_key

    monkeypatch.delenv(KEY_ENV, raising=False)
    key = signing_key(tmp_path / "keys/private/release-signing.pem", tmp_path / "keys/release-signing.pub")
    staged = tmp_path / "candidate"
    staged.mkdir()
    for i in range(13):
        (staged / f"model_{i}.bin").write_bytes(bytes(range(256)) * 40)  # 10 KiB each, 130 KiB in all
    lineage = {"data_md5": {"d.csv": "0" * 32}, "raw_dataset_md5": "1" * 32, "git_commit": "a" * 40,
               "git_dirty": False, "params_sha256": "2" * 64, "mlflow_run_id": "r", "model_name": "m",
               "model_version": "1"}
    build_manifest(staged, lineage, {})
    sign_folder(staged, key)
    with pytest.raises(PipelineError) as caught:
        publish(staged, tiny_disk / "releases", "m", [tmp_path / "keys/release-signing.pub"])
    message = str(caught.value)
    assert message.startswith(f"{tiny_disk / 'releases' / 'm' / '1'}: cannot publish the release: ")
    assert "No space left on device" in message and len(message) < 300
    assert list((tiny_disk / "releases" / "m").iterdir()) == []  # no temp folder, no partial release
