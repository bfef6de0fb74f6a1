"""Content hashes (DVC md5, manifest sha256) and atomic writes."""
from __future__ import annotations

import hashlib
import json

import pytest

from pipelines.core.hashing import dvc_md5, file_digest, tree_files, tree_sha256
from pipelines.core.io import atomic_path, read_json, write_json


def test_dvc_md5_is_the_plain_md5_of_the_bytes(tmp_path):
    content = bytes(range(256)) * 9000  # > 1 MiB: more than one read chunk
    path = tmp_path / "data.bin"
    path.write_bytes(content)
    assert dvc_md5(path) == hashlib.md5(content).hexdigest()
    assert file_digest(path) == hashlib.sha256(content).hexdigest()


def test_tree_sha256_keys_are_posix_relative_paths(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "top.txt").write_bytes(b"top")
    (tmp_path / "a" / "b" / "deep.bin").write_bytes(b"deep")
    (tmp_path / "empty_dir").mkdir()
    digests = tree_sha256(tmp_path)
    assert digests == {
        "a/b/deep.bin": hashlib.sha256(b"deep").hexdigest(),
        "top.txt": hashlib.sha256(b"top").hexdigest(),
    }
    assert [p.as_posix() for p in tree_files(tmp_path)] == ["a/b/deep.bin", "top.txt"]


def test_atomic_path_writes_a_file_on_success_and_leaves_no_temp(tmp_path):
    target = tmp_path / "out" / "report.json"
    with atomic_path(target) as tmp:
        assert tmp.parent != target.parent
        tmp.write_text("new")
        assert not target.exists()  # invisible until the body finishes
    assert target.read_text() == "new"
    assert [p.name for p in target.parent.iterdir()] == ["report.json"]


def test_atomic_path_leaves_nothing_when_the_body_raises(tmp_path):
    target = tmp_path / "model.tflite"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("conversion failed")
    assert list(tmp_path.iterdir()) == []


def test_atomic_path_keeps_the_old_file_when_the_body_raises(tmp_path):
    target = tmp_path / "metrics.json"
    target.write_text("old")
    with pytest.raises(ValueError):
        with atomic_path(target) as tmp:
            tmp.write_text("new")
            raise ValueError("boom")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_atomic_path_replaces_an_existing_directory(tmp_path):
    target = tmp_path / "models" / "trained"
    target.mkdir(parents=True)
    (target / "stale.keras").write_text("old model")
    with atomic_path(target) as tmp:
        tmp.mkdir()
        (tmp / "model.keras").write_text("new model")
    assert sorted(p.name for p in target.iterdir()) == ["model.keras"]
    assert (target / "model.keras").read_text() == "new model"
    assert [p.name for p in target.parent.iterdir()] == ["trained"]


def test_write_json_is_sorted_and_round_trips(tmp_path):
    target = tmp_path / "r.json"
    write_json(target, {"b": 1, "a": [1.5, None]})
    text = target.read_text()
    assert text.index('"a"') < text.index('"b"') and text.endswith("\n")
    assert read_json(target) == {"a": [1.5, None], "b": 1}
    assert json.loads(text) == read_json(target)
