"""DVC records in a release folder: `NAME.dvc` files standing for release files kept in the project's DVC remote.

A release branch proposed with release.dvc_files_over_bytes carries, instead of each large file, the record `dvc add`
wrote for it (md5, size, path) and DVC's .gitignore line for it; `dvc pull` brings the file back. The signature and
the manifest cover the file's bytes, so verifying needs them: each fetched file must match its record (md5 and size),
then the folder without DVC's bookkeeping is verified as any release folder is.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

from pipelines.core.errors import PipelineError
from pipelines.core.hashing import dvc_md5, tree_files

SUFFIX = ".dvc"
IGNORE = ".gitignore"  # `dvc add` writes one beside the file: `/NAME`, so git never commits the fetched bytes


@dataclass(frozen=True)
class Record:
    name: str  # the release file it stands for, POSIX path relative to the release folder
    md5: str
    size: int


def parse_record(text: str, where: Path, name: str) -> Record:
    """The one output a `.dvc` file records, which must be `name` (the record's own name without .dvc)."""
    try:
        outs = (yaml.safe_load(text) or {}).get("outs")
        out = outs[0] if isinstance(outs, list) and len(outs) == 1 else {}
        md5, size, path = out.get("md5"), out.get("size"), out.get("path")
    except (yaml.YAMLError, AttributeError) as exc:
        raise PipelineError(f"{where}: not a DVC record (YAML with one `outs` entry)") from exc
    if path != name.rsplit("/", 1)[-1] or not isinstance(md5, str) or len(md5) != 32 or not isinstance(size, int):
        raise PipelineError(f"{where}: not a DVC record of {name.rsplit('/', 1)[-1]} (outs: md5, size, path)")
    return Record(name, md5, size)


def read_records(folder: Path) -> dict[str, Record]:
    """The release files that DVC records stand for (name -> record); empty for a folder without any."""
    records = {}
    for rel in tree_files(folder):
        if rel.name.endswith(SUFFIX) and rel.name != SUFFIX:
            name = rel.as_posix().removesuffix(SUFFIX)
            records[name] = parse_record((folder / rel).read_text(), folder / rel, name)
    return records


def bookkeeping(folder: Path, records: dict[str, Record]) -> set[str]:
    """DVC's files in the folder: the records, and each .gitignore that only ignores recorded files."""
    files = {f"{name}{SUFFIX}" for name in records}
    for rel in tree_files(folder):
        if rel.name == IGNORE:
            parent = "" if rel.parent == Path(".") else f"{rel.parent.as_posix()}/"
            lines = [line.strip() for line in (folder / rel).read_text().splitlines() if line.strip()]
            if lines and all(line.startswith("/") and f"{parent}{line[1:]}" in records for line in lines):
                files.add(rel.as_posix())
    return files


def check_fetched(folder: Path, records: dict[str, Record]) -> None:
    """Each recorded file is present with the record's size and md5; else one line saying how to fetch it."""
    for name, record in sorted(records.items()):
        path = folder / name
        if not path.is_file():
            raise PipelineError(f"{path}: kept in the DVC remote ({path.name}{SUFFIX}, md5 {record.md5}); fetch it "
                                f"first: dvc pull {path}{SUFFIX}")
        if path.stat().st_size != record.size or dvc_md5(path) != record.md5:
            raise PipelineError(f"{path}: differs from its DVC record {path.name}{SUFFIX} (md5 {record.md5})")


def _link_or_copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)  # no copy of a large file when the temp folder is on the same file system
    except OSError:
        shutil.copy2(source, target)


@contextmanager
def without_records(folder: Path) -> Iterator[Path]:
    """The folder to verify: itself when it holds no DVC record, else (once every recorded file is fetched and
    matches its record) a view of it without DVC's bookkeeping, whose errors name the real folder."""
    folder = Path(folder)
    records = read_records(folder) if folder.is_dir() else {}
    if not records:
        yield folder
        return
    check_fetched(folder, records)
    skipped = bookkeeping(folder, records)
    with tempfile.TemporaryDirectory(prefix="mobile-mlops-verify-") as tmp:
        view = Path(tmp) / folder.name
        view.mkdir()
        for rel in tree_files(folder):
            if rel.as_posix() not in skipped:
                _link_or_copy(folder / rel, view / rel)
        try:
            yield view
        except PipelineError as exc:
            raise PipelineError(str(exc).replace(str(view), str(folder))) from exc
