"""What a phone downloads: a model file (or a Core ML package folder) served gzip-compressed."""
from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path


def gzip_bytes(content: bytes) -> int:
    """Bytes of the content gzip-compressed at level 9 (no timestamp: the same bytes give the same count)."""
    return len(gzip.compress(content, compresslevel=9, mtime=0))


def gzip_folder_bytes(folder: Path) -> int:
    """Bytes of the folder as a gzip-compressed tar (files sorted, times and owners zeroed), as a package ships."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
            info = tarfile.TarInfo(str(path.relative_to(folder)))
            info.size, info.mtime, info.mode = path.stat().st_size, 0, 0o644
            with path.open("rb") as handle:
                tar.addfile(info, handle)
    return gzip_bytes(buffer.getvalue())
