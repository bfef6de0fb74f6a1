"""Download bytes: gzip of a file and of a package folder, stable across runs and file times."""
from __future__ import annotations

import os

from pipelines.mobile.download import gzip_bytes, gzip_folder_bytes


def test_gzip_bytes_are_stable_and_reward_zeros():
    noisy = os.urandom(4096)
    assert gzip_bytes(noisy) == gzip_bytes(noisy) > 4096  # random bytes do not compress
    assert gzip_bytes(bytes(4096)) < 100


def test_folder_bytes_ignore_file_times(tmp_path):
    (tmp_path / "Data").mkdir()
    (tmp_path / "Data" / "weights.bin").write_bytes(bytes(2048))
    (tmp_path / "Manifest.json").write_text("{}")
    first = gzip_folder_bytes(tmp_path)
    os.utime(tmp_path / "Manifest.json", (0, 12345))
    assert gzip_folder_bytes(tmp_path) == first
    (tmp_path / "Data" / "weights.bin").write_bytes(os.urandom(2048))
    assert gzip_folder_bytes(tmp_path) > first + 1500
